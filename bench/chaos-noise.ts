/**
 * Chaos: how far apart undisturbed runs of configs/chaos.yaml end — the noise a chaos run's final
 * evaluation is judged against (test/chaos.test.ts). Runs the experiment once per seed of `--seeds`
 * and `--repeats` more times with the first seed, two at a time (as the chaos test runs its chaos and
 * undisturbed runs side by side), each with its own embedded nats-server; prints each run's final
 * evaluation, the spread across seeds and across repeats, and the bound the test uses.
 * Run: node bin/run-ts.mjs bench/chaos-noise.ts [--seeds 1,2,3,4,5,6] [--repeats 2]
 * Figures: docs/results.md, "Chaos: the noise of an undisturbed run".
 */
import { mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { meanAndStd, noiseBound, runEvaluations } from "../test/chaos.ts";
import { startCli } from "../test/cli-helpers.ts";

const { values: args } = parseArgs({
  options: { seeds: { type: "string", default: "1,2,3,4,5,6" }, repeats: { type: "string", default: "2" } },
});
const seeds = args.seeds.split(",").map(Number);
const runs = [
  ...seeds.map((seed) => ({ seed, label: `seed${seed}` })),
  ...Array.from({ length: Number(args.repeats) }, (_, i) => ({ seed: seeds[0]!, label: `seed${seeds[0]}-r${i + 2}` })),
];
const REPO = resolve(import.meta.dirname, "..");
const outDir = await mkdtemp(join(tmpdir(), "factrl-chaos-noise-"));

const runOne = async ({ seed, label }: { seed: number; label: string }) => {
  const experiment = `chaos-noise-${label}`;
  const started = Date.now();
  const run = startCli(
    [
      "run",
      "configs/chaos.yaml",
      ...[`seed=${seed}`, `experiment=${experiment}`, `output.dir=${outDir}`].flatMap((s) => ["--set", s]),
    ],
    REPO,
  );
  const { code } = await run.exited;
  if (code !== 0) throw new Error(`${experiment} exited ${code}:\n${run.output().slice(-3000)}`);
  return { seed, label, seconds: (Date.now() - started) / 1000, ...runEvaluations(join(outDir, experiment)) };
};

const results: Awaited<ReturnType<typeof runOne>>[] = [];
for (let at = 0; at < runs.length; at += 2) results.push(...(await Promise.all(runs.slice(at, at + 2).map(runOne))));

const fmt = (v: number | null) => (v === null ? "–" : v.toFixed(3));
console.log(
  `load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}\n`,
);
console.log("| run | seconds | final version | reward | hallucination | detail | relevance win |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
const initial = results[0]!.initial.overall;
console.log(
  `| initial policy | | 0 | ${fmt(initial.reward)} | ${fmt(initial.hallucinationRate)} | ${fmt(initial.detail)} | |`,
);
for (const r of results) {
  const o = r.final.overall;
  console.log(
    `| ${r.label} | ${r.seconds.toFixed(0)} | ${r.final.version} | ${fmt(o.reward)} | ${fmt(o.hallucinationRate)} | ${fmt(o.detail)} | ${fmt(o.relevanceWinRate)} |`,
  );
}
const rewards = (labels: (label: string) => boolean) =>
  results.filter((r) => labels(r.label)).map((r) => r.final.overall.reward);
const acrossSeeds = meanAndStd(rewards((label) => !label.includes("-r")));
const repeats = meanAndStd(rewards((label) => label.startsWith(`seed${seeds[0]}`)));
console.log(`\nfinal reward across ${seeds.length} seeds: mean ${fmt(acrossSeeds.mean)}, std ${fmt(acrossSeeds.std)}`);
console.log(`final reward across ${1 + Number(args.repeats)} runs of seed ${seeds[0]}: std ${fmt(repeats.std)}`);
console.log(`learning: mean final − initial reward ${fmt(acrossSeeds.mean - initial.reward)}`);
console.log(`bound (3·√2·std across seeds): ${fmt(noiseBound(acrossSeeds.std))}`);
await rm(outDir, { recursive: true, force: true });
