/**
 * Built-in reward throughput (issue 4): answers scored per second on one core by the pipeline with
 * format + precision + detail + relevance, on distinct FactWorld answers (reference answers with
 * dropped sentences, wrong values, off-topic padding, abstentions, malformed ones), in batches of 64.
 * Compared within this run with the bare analysis (parse + extract + verify + judge, no pipeline).
 * Run: node bin/run-ts.mjs bench/rewards.ts [--quick]
 */

import { createRng } from "../envs/factworld/random.ts";
import {
  analyzeAnswer,
  ClaimVerifier,
  extractClaims,
  generatePrompts,
  generateWorld,
  judgeRelevance,
  type Prompt,
  referenceSentences,
} from "../envs/index.ts";
import { createRewardPipeline, type RewardItem } from "../rewards/index.ts";
import { median } from "./lib/stats.ts";

const quick = process.argv.includes("--quick");
const ANSWERS = quick ? 4_000 : 40_000;
const BATCH = 64;

const world = generateWorld({ size: "default" });
const prompts = generatePrompts(world);
const rng = createRng(42);

function makeAnswer(prompt: Prompt): string {
  const own = referenceSentences(world, prompt.focus).filter(() => rng.chance(0.85));
  const sentences = own.map((s) =>
    rng.chance(0.2) ? s.replace(/\b(1[89]\d\d)\b/, (y) => String(Number(y) + rng.int(1, 9))) : s,
  );
  if (rng.chance(0.3)) {
    const other = rng.pick(world.entities);
    sentences.push(
      ...referenceSentences(world, { entityId: other.id, entity: other.name, aspects: [other.facts[0]!.relation] }),
    );
  }
  if (rng.chance(0.1)) sentences.push(`${prompt.focus.entity} is well known .`);
  const roll = rng.next();
  if (roll < 0.03) return "<think> I do not know . </think>";
  const body = `<think> The question is about ${prompt.focus.entity} . </think> ${sentences.join(" ")}`;
  return roll < 0.06 ? body.replace("</think>", "") : body;
}

// Distinct answers, so the per-answer analysis cache never helps across items.
const seen = new Set<string>();
const items: RewardItem[] = [];
while (items.length < ANSWERS) {
  const prompt = rng.pick(prompts);
  const answer = makeAnswer(prompt);
  const key = `${prompt.id}|${answer}`;
  if (seen.has(key)) continue;
  seen.add(key);
  items.push({ prompt: { id: prompt.id, text: prompt.text, focus: prompt.focus }, answer });
}

const pipeline = await createRewardPipeline(
  {
    modules: [
      { name: "format", weight: 1 },
      { name: "precision", weight: 1 },
      { name: "detail", weight: 0.1 },
      { name: "relevance", weight: 0.1 },
    ],
    timeoutMs: 30_000,
    retries: 0,
  },
  { world, prompts },
);

/** Answers per second of wall time and per second of this process's CPU time (the box is shared: CPU time is the fairer figure). */
interface Rate {
  wall: number;
  cpu: number;
}
async function measure(list: readonly RewardItem[], run: () => Promise<void> | void): Promise<Rate> {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  await run();
  const used = process.cpuUsage(cpu);
  return {
    wall: list.length / ((performance.now() - wall) / 1000),
    cpu: list.length / ((used.user + used.system) / 1e6),
  };
}

const timePipeline = (list: readonly RewardItem[]) =>
  measure(list, async () => {
    for (let i = 0; i < list.length; i += BATCH) await pipeline.score(list.slice(i, i + BATCH));
  });

const timeBare = (list: readonly RewardItem[]) => measure(list, () => bare(list));

function bare(list: readonly RewardItem[]): void {
  const verifier = new ClaimVerifier(world);
  const refs = new Map<string, ReturnType<typeof extractClaims>>();
  let checksum = 0;
  for (const item of list) {
    const a = analyzeAnswer(verifier, item.answer);
    const focus = item.prompt.focus!;
    let ref = refs.get(item.prompt.id);
    if (!ref) {
      const entity = world.byName.get(focus.entity)!;
      ref = extractClaims(referenceSentences(world, { ...focus, entityId: entity.id } as Prompt["focus"]).join(" "));
      refs.set(item.prompt.id, ref);
    }
    checksum += a.supported + judgeRelevance(focus, a.claims, ref).value;
  }
  if (checksum < 0) console.log(checksum);
}

// Warm up the JIT and the reference caches on a separate slice, then measure.
const warm = items.slice(0, Math.min(2_000, items.length / 4));
await timePipeline(warm);
await timeBare(warm);
const measured = items.slice(warm.length);
const runs = 3;
const pipelineRates: Rate[] = [];
const bareRates: Rate[] = [];
for (let r = 0; r < runs; r++) {
  bareRates.push(await timeBare(measured));
  // A fresh pipeline each run would re-warm caches; the answer cache cannot help: every answer is distinct.
  pipelineRates.push(await timePipeline(measured));
}
const p = median(pipelineRates.map((r) => r.cpu));
const b = median(bareRates.map((r) => r.cpu));
const pWall = median(pipelineRates.map((r) => r.wall));
const bWall = median(bareRates.map((r) => r.wall));
const claims = measured.reduce((n, i) => n + (i.answer.match(/ \. /g)?.length ?? 0), 0) / measured.length;
console.log(
  `answers: ${measured.length} distinct (≈${claims.toFixed(1)} sentences each), batch ${BATCH}, ${runs} runs (median)`,
);
const fmt = (x: number) => Math.round(x).toLocaleString("en");
console.log(`pipeline (format+precision+detail+relevance): ${fmt(p)} answers/CPU-s (${fmt(pWall)} answers/s wall)`);
console.log(`bare analysis + judge (no pipeline):         ${fmt(b)} answers/CPU-s (${fmt(bWall)} answers/s wall)`);
console.log(
  `pipeline / bare: ${(p / b).toFixed(2)}; goal ≥ 20,000 answers/s on one core: ${p >= 20_000 ? "met" : "NOT met"}`,
);
