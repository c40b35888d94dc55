/**
 * Curation: what the curator's strategies hand out, what the prompt checks reject, and what they cost.
 *   - per strategy (uniform, balanced at several tail shares), the popularity buckets of the first
 *     `--groups` prompt groups (the quick start's 300 steps × 8 groups = 2,400), on the default
 *     world's training pool and on a head-heavy "prompt log" made from it (each prompt asked
 *     1 + round(2000 · popularity) times: real prompt sets ask about popular entities more);
 *   - the time to rebuild a balanced curator's state at that cursor (a restart replays from 0);
 *   - the FACTORY-style checks of the training pool, rejections by reason;
 *   - MetaCLIP balancing of the pretraining corpus: documents kept and their buckets per tail share;
 *   - text-quality pruning of a corpus with low-quality lines (lowQualityRate 0.15): the filters'
 *     weights, and what pruning 20 % and 40 % removes, by kind of flaw;
 *   - the SFT set's coverage (entities, facts, repeated answers) by selection, at 250 and 1,000.
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
  bigramModel,
  CHECK_REASONS,
  createTokenizer,
  documentScore,
  type Environment,
  filterWeights,
  generateCorpus,
  LINE_FILTERS,
  LOW_QUALITY_KINDS,
  makeEnvironment,
  popularityBucket,
  pruneLowest,
  worldMetadata,
} from "../envs/index.ts";
import { curateSftExamples, type SftSelection } from "../pretrain/sft.ts";

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

const flawed = generateCorpus(world, { lowQualityRate: 0.15 });
const started = performance.now();
const reference = generateCorpus(world, { seed: 7920, documents: 4000, noiseRate: 0 });
const weights = filterWeights(
  flawed.map((d) => d.lines),
  bigramModel(reference.flatMap((d) => d.lines)),
);
const scores = flawed.map((d) => documentScore(d.lines, weights));
console.log(
  `\ntext-quality pruning (lowQualityRate 0.15, ${flawed.length} documents; scored in ${((performance.now() - started) / 1000).toFixed(1)} s); ` +
    `filter weights: ${LINE_FILTERS.map((f, i) => `${f.name} ${weights[i]!.toFixed(3)}`).join(", ")}`,
);
const isFlawed = (d: (typeof flawed)[number]) => d.noisy || (d.lowQuality?.length ?? 0) > 0;
const kinds = [...LOW_QUALITY_KINDS, "garbled"] as const;
const docsWith = (kind: (typeof kinds)[number]) =>
  flawed.filter((d) => (kind === "garbled" ? d.noisy : (d.lowQuality ?? []).some((l) => l.kind === kind)));
console.log(`| pruned | flawed among pruned | ${kinds.map((k) => `documents with ${k} pruned`).join(" | ")} |`);
console.log(`|---|---:|${kinds.map(() => "---:").join("|")}|`);
console.log(
  `| (corpus) | ${pct(flawed.filter(isFlawed).length / flawed.length)} | ${kinds.map((k) => docsWith(k).length).join(" | ")} |`,
);
for (const q of [0.2, 0.4]) {
  const kept = new Set(pruneLowest(scores, q));
  const pruned = flawed.filter((d) => !kept.has(d.id));
  const cells = kinds.map((k) => {
    const all = docsWith(k);
    return pct(all.filter((d) => !kept.has(d.id)).length / all.length);
  });
  console.log(`| ${pct(q)} | ${pct(pruned.filter(isFlawed).length / pruned.length)} | ${cells.join(" | ")} |`);
}

const tokenizer = createTokenizer(world);
console.log("\n| SFT selection | examples | entities | facts | repeated answers | head / torso / tail |");
console.log("|---|---:|---:|---:|---:|---|");
for (const count of [250, 1000])
  for (const selection of ["round-robin", "lima", "random"] as SftSelection[]) {
    const { examples, report } = curateSftExamples(world, tokenizer, { count, maxSeqLen: 256, seed: 1, selection });
    const facts = new Set(
      examples.flatMap((e) =>
        world.entities[e.prompt.focus.entityId]!.facts.filter((f) => e.prompt.focus.aspects.includes(f.relation)).map(
          (f) => `${f.subject}:${f.relation}:${f.object}`,
        ),
      ),
    );
    const b = report.byBucket;
    console.log(
      `| ${selection}, ${count} asked | ${examples.length} | ${new Set(examples.map((e) => e.prompt.focus.entityId)).size} | ${facts.size} | ${examples.length - new Set(examples.map((e) => e.answerText)).size} | ${b.head ?? 0} / ${b.torso ?? 0} / ${b.tail ?? 0} |`,
    );
  }
