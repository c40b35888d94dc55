/**
 * CiT in the RL loop: what `curation.strategy: cit` selects with a policy's embeddings — per
 * template set, the quantiles of each popularity bucket's highest similarity to the target's names,
 * the tail's share of the top 20 / 40 / 60 % by similarity, and (for the config's own templates and
 * threshold) the suites of the prompts a first selection keeps. Quality figures, not speed.
 * Run: node bin/run-ts.mjs bench/cit-selection.ts [--init models/checkpoints/quickstart] [--target tail]
 * Figures: docs/curation.md, "`cit`".
 */
import { parseArgs } from "node:util";
import { Either } from "effect";
import { curateByPolicy, promptGroupAt } from "../actors/index.ts";
import { decodeConfig } from "../configs/index.ts";
import { citTargetNames, ensembleEmbedding, fillTemplates, makeEnvironment, maxSimilarities } from "../envs/index.ts";
import { embedTexts, initBackend, loadCheckpoint, textFormatOfRecord } from "../models/index.ts";

const { values: args } = parseArgs({
  options: {
    init: { type: "string", default: "models/checkpoints/quickstart" },
    target: { type: "string", default: "tail" },
  },
});
await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
const config = Either.getOrThrow(
  decodeConfig({ experiment: "cit-selection", curation: { strategy: "cit", cit: { target: args.target } } }),
);
const env = await makeEnvironment(config.env);
const { policy, tokenizer } = await loadCheckpoint(args.init);
const format = textFormatOfRecord(policy.config.backbone, tokenizer, args.init);
const names = citTargetNames(config.curation.cit.target, env.knowledge, env.kind);
const prompts = embedTexts(
  policy,
  format,
  env.train.map((p) => p.text),
);
const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

console.log(`${env.train.length} training prompts, ${names.length} ${args.target} names, policy ${args.init}`);
for (const templates of [config.curation.cit.templates, ["{}"], ["Tell me about {} ."]]) {
  const entries = names.map((n) => ensembleEmbedding(embedTexts(policy, format, fillTemplates(templates, n))));
  const sims = maxSimilarities(prompts, entries);
  console.log(`\ntemplates ${JSON.stringify(templates)}`);
  for (const bucket of ["head", "torso", "tail"]) {
    const xs = sims.filter((_, i) => env.train[i]!.bucket === bucket).sort((a, b) => a - b);
    const q = (f: number) => xs[Math.floor(f * (xs.length - 1))]!.toFixed(3);
    console.log(
      `  ${bucket.padEnd(5)} ${String(xs.length).padStart(4)} prompts: q10 ${q(0.1)}  median ${q(0.5)}  q90 ${q(0.9)}`,
    );
  }
  const order = sims.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
  for (const share of [0.2, 0.4, 0.6]) {
    const top = order.slice(0, Math.floor(share * order.length));
    const tail = top.filter(([, i]) => env.train[i]!.bucket === "tail").length / top.length;
    console.log(`  top ${pct(share)} by similarity: ${pct(tail)} tail`);
  }
}

const round = curateByPolicy(env, config.curation, policy, format, 0);
const kept = new Set(Array.from({ length: 20 * env.train.length }, (_, n) => promptGroupAt(env, config, n).promptId));
const bySuite = (ids: (id: string) => boolean) => {
  const counts = new Map<string, number>();
  for (const p of env.train) if (ids(p.id)) counts.set(p.suite, (counts.get(p.suite) ?? 0) + 1);
  return [...counts].map(([suite, n]) => `${suite} ${n}`).join(", ");
};
console.log(
  `\nfirst selection (threshold ${config.curation.cit.threshold}, minRatio ${config.curation.cit.minRatio}): ` +
    `kept ${round.kept} (${pct(round.keptShare)}; ${pct(round.keptTailShare)} tail; ${kept.size} seen handed out)`,
);
console.log(`  pool: ${bySuite(() => true)}`);
console.log(`  kept: ${bySuite((id) => kept.has(id))}`);
