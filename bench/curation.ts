/**
 * Curation: what the curator's strategies hand out, what the prompt checks reject, and what they cost.
 *   - per strategy (uniform, balanced at several tail shares), the popularity buckets of the first
 *     `--groups` prompt groups (the quick start's 300 steps × 8 groups = 2,400), on the default
 *     world's training pool and on a head-heavy "prompt log" made from it (each prompt asked
 *     1 + round(2000 · popularity) times: real prompt sets ask about popular entities more);
 *   - the time to rebuild a balanced curator's state at that cursor (a restart replays from 0);
 *   - the FACTORY-style checks of the training pool, rejections by reason;
 *   - MetaCLIP balancing of the pretraining corpus: documents kept and their buckets per tail share.
 * Run: node bin/run-ts.mjs bench/curation.ts [--groups 2400]
 * Figures: BENCHMARKS.md, "## Curation".
 */
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Either } from "effect";
import { promptGroupAt } from "../actors/curator.ts";
import { poolChecks } from "../actors/prompt-choice.ts";
import { decodeConfig } from "../configs/index.ts";
import {
  balancePool,
  CHECK_REASONS,
  type Environment,
  generateCorpus,
  makeEnvironment,
  popularityBucket,
  worldMetadata,
} from "../envs/index.ts";

const { values } = parseArgs({ options: { groups: { type: "string", default: "2400" } } });
const groups = Number(values.groups);
const BUCKETS = ["head", "torso", "tail"] as const;
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

const configOf = (curation: Record<string, unknown>) =>
  Either.getOrThrow(decodeConfig({ experiment: "bench-curation", curation: { checks: "off", ...curation } }));

const env = await makeEnvironment(configOf({}).env);
const world = env.knowledge!;
const popularity = new Map(world.entities.map((e) => [e.name, e.popularity]));
const promptLog: Environment = {
  ...env,
  train: env.train.flatMap((p) =>
    Array.from({ length: 1 + Math.round(2000 * popularity.get(p.focus!.entity)!) }, (_, k) => ({
      ...p,
      id: `${p.id}#${k}`,
    })),
  ),
};

console.log(`load average ${loadavg()[0]!.toFixed(1)}; ${groups} groups per row\n`);
console.log("| pool | strategy | head | torso | tail | distinct entities | first build (ms) |");
console.log("|---|---|---:|---:|---:|---:|---:|");
for (const [name, source] of [
  [`training split (${env.train.length} prompts)`, env],
  [`prompt log (${promptLog.train.length} prompts)`, promptLog],
] as const) {
  const poolShare = BUCKETS.map((b) => source.train.filter((p) => p.bucket === b).length / source.train.length);
  console.log(`| ${name} | (the pool itself) | ${poolShare.map(pct).join(" | ")} | | |`);
  for (const curation of [
    { strategy: "uniform" },
    ...[0.1, 0.3, 0.5].map((tailShare) => ({ strategy: "balanced", tailShare })),
  ]) {
    const config = configOf(curation);
    // A fresh object: the chooser is made (and a balanced stream replayed) from nothing, as after a restart.
    const fresh = { ...source };
    const started = performance.now();
    promptGroupAt(fresh, config, groups - 1);
    const buildMs = performance.now() - started;
    const handed = Array.from({ length: groups }, (_, n) => promptGroupAt(fresh, config, n));
    const share = BUCKETS.map((b) => handed.filter((g) => g.meta.bucket === b).length / groups);
    const entities = new Set(handed.map((g) => g.focus)).size;
    const label = "tailShare" in curation ? `balanced, tailShare ${curation.tailShare}` : "uniform";
    console.log(`| ${name} | ${label} | ${share.map(pct).join(" | ")} | ${entities} | ${buildMs.toFixed(0)} |`);
  }
}

const checked = poolChecks(env, configOf({ checks: "report" }).curation)!;
console.log(
  `\nchecks of the ${env.train.length} training prompts (minFacts 2): ${checked.passed.length} pass; ` +
    CHECK_REASONS.map((r) => `${r} ${checked.counts[r]}`).join(", "),
);

const corpus = generateCorpus(world);
const bucketsOf = (docs: readonly { entityId: number }[]) =>
  BUCKETS.map((b) => docs.filter((d) => popularityBucket(world.entities[d.entityId]!) === b).length / docs.length);
console.log("\n| corpus | documents | head | torso | tail | noisy kept | time (s) |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
console.log(
  `| as generated | ${corpus.length} | ${bucketsOf(corpus).map(pct).join(" | ")} | ${corpus.filter((d) => d.noisy).length} | |`,
);
for (const tailShare of [0.1, 0.3, 0.5]) {
  const started = performance.now();
  const { kept, threshold } = balancePool(
    corpus.map((d) => d.text),
    worldMetadata(world),
    { seed: 1, tailShare },
  );
  const docs = kept.map((i) => corpus[i]!);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `| balanced, tailShare ${tailShare} (t ${threshold}) | ${docs.length} | ${bucketsOf(docs).map(pct).join(" | ")} | ${docs.filter((d) => d.noisy).length} | ${seconds.toFixed(1)} |`,
  );
}
