/**
 * GRPO micro-batches (learner.microBatchAnswers): what splitting one learner update into
 * gradient-accumulated micro-batches buys in memory and costs in time, on the quick-start policies.
 *   - BLT (models/checkpoints/quickstart-blt): 8 groups × 8 answers of `--blt-bytes` answer bytes
 *     (default 640, the quick start's byte budget; ≈ 700 bytes a row with the prompt) — the whole
 *     batch in one pass is expected to exhaust wasm's 4 GB heap;
 *   - dense (models/checkpoints/quickstart): 8 × 8 answers of `--dense-tokens` tokens (default 128).
 * Every case runs in its own process (a wasm out-of-memory abort leaves the backend unusable, and a
 * fresh heap makes its high-water mark the case's own), on the same batch from the same weights,
 * with the quick start's learner settings and backend: update 1 warms up (Adam makes its moments),
 * updates 2…N are timed; one more, under tf.profile, gives the peak of live tensor bytes.
 * Answers are FactWorld reference answers for the prompts, repeated to the length (every answer at
 * the budget: the memory bound); behaviour log-probs are a constant −1 (the cost does not depend on them).
 * Run: node bin/run-ts.mjs bench/grpo-micro-batch.ts [--backbones blt,dense] [--micro 0,8,16] [--updates 2]
 * Figures: BENCHMARKS.md, "## GRPO micro-batches".
 */
import { spawnSync } from "node:child_process";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { promptGroupAt } from "../actors/curator.ts";
import { loadConfig } from "../configs/index.ts";
import { factWorld, type Prompt, renderReference, tokenizerFromWords } from "../envs/index.ts";
import { type GrpoBatch, grpoUpdate } from "../learner/grpo-step.ts";
import { grpoSettingsFor } from "../learner/learner.ts";
import { createOptimizer, initBackend, loadCheckpoint, mulberry32, textFormatFor } from "../models/index.ts";
import { median } from "./lib/stats.ts";

const REPO = resolve(import.meta.dirname, "..");
const GROUPS = 8;
const { values: args } = parseArgs({
  options: {
    backbones: { type: "string", default: "blt,dense" },
    micro: { type: "string", default: "0,8,16" },
    updates: { type: "string", default: "2" },
    "blt-bytes": { type: "string", default: "640" },
    "dense-tokens": { type: "string", default: "128" },
    case: { type: "string" },
  },
});

interface CaseResult {
  readonly backbone: string;
  readonly microBatchAnswers: number;
  readonly answers: number;
  readonly rowTokens: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly warmupMs?: number;
  readonly updateMs?: readonly number[];
  readonly firstLoss?: number;
  readonly firstGradNorm?: number;
  readonly heapBytes?: number;
  readonly peakTensorBytes?: number;
}

/** The quick-start config for a backbone, with its `backbones:` block applied. */
const quickstartConfig = (backbone: string) =>
  Effect.runSync(loadConfig(resolve(REPO, "configs/quickstart.yaml"), { set: [`model.backbone=${backbone}`] }));

/** 8 groups × G answers of exactly `answerLength` tokens, group after group, as the learner lays them out. */
function learnerBatch(backbone: string, answerLength: number): GrpoBatch {
  const config = quickstartConfig(backbone);
  if (config.env.kind !== "factworld") throw new Error("bench/grpo-micro-batch.ts runs on FactWorld");
  const env = factWorld(config.env);
  const world = env.knowledge!;
  const format = textFormatFor(backbone, tokenizerFromWords(env.vocabulary!));
  const random = mulberry32(11);
  const prompts: Int32Array[] = [];
  const answers: Int32Array[] = [];
  for (let g = 0; g < GROUPS; g++) {
    const group = promptGroupAt(env, config, g);
    const prompt = env.train.find((p) => p.id === group.promptId) as Prompt;
    const promptTokens = format.promptTokens(group.prompt);
    const reference = format.answerTokens(renderReference(world, prompt));
    const long = Int32Array.from({ length: answerLength }, (_, i) => reference[i % reference.length]!);
    for (let i = 0; i < config.rollout.groupSize; i++) {
      prompts.push(promptTokens);
      answers.push(long);
    }
  }
  return {
    prompts,
    answers,
    behaviourLogProbs: answers.map((a) => new Float32Array(a.length).fill(-1)),
    rewards: answers.map(() => random()),
    groupSize: config.rollout.groupSize,
  };
}

/** The wasm module's linear memory: it grows and never shrinks, so its size is the heap's high-water mark. */
function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength;
}

async function runCase(backbone: string, microBatchAnswers: number, updates: number): Promise<CaseResult> {
  const config = quickstartConfig(backbone);
  const answerLength = Number(backbone === "blt" ? args["blt-bytes"] : args["dense-tokens"]);
  const batch = learnerBatch(backbone, answerLength);
  const rowTokens =
    batch.prompts.reduce((n, p, i) => n + p.length + batch.answers[i]!.length, 0) / batch.prompts.length;
  const base = { backbone, microBatchAnswers, answers: batch.answers.length, rowTokens };
  await initBackend({ backend: config.model.backend, threads: config.model.threads, measure: false });
  const { policy } = await loadCheckpoint(resolve(REPO, config.model.init!));
  const L = config.learner;
  const optimizer = createOptimizer({ learningRate: L.lr, warmupSteps: 0, totalSteps: L.totalSteps, clipNorm: 1 });
  const settings = { ...grpoSettingsFor(config), microBatchAnswers };
  const timed = async () => {
    const started = performance.now();
    const stats = await grpoUpdate(policy, optimizer, undefined, batch, settings);
    return { ms: performance.now() - started, stats };
  };
  try {
    const warmup = await timed();
    const updateMs: number[] = [];
    for (let i = 1; i < updates; i++) updateMs.push((await timed()).ms);
    const profile = await tf.profile(async () => {
      await grpoUpdate(policy, optimizer, undefined, batch, settings);
    });
    return {
      ...base,
      ok: true,
      warmupMs: warmup.ms,
      updateMs,
      firstLoss: warmup.stats.loss,
      firstGradNorm: warmup.stats.gradNorm,
      heapBytes: wasmHeapBytes() ?? Number.NaN,
      peakTensorBytes: profile.peakBytes,
    };
  } catch (error) {
    return { ...base, ok: false, error: String(error).slice(0, 200), heapBytes: wasmHeapBytes() ?? Number.NaN };
  }
}

const MB = 2 ** 20;
const fmt = (x: number | undefined, digits = 0) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(digits));

if (args.case) {
  const [backbone, micro] = args.case.split(":");
  const result = await runCase(backbone!, Number(micro), Math.max(2, Number(args.updates)));
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  const results: CaseResult[] = [];
  const load = loadavg()[0]!;
  for (const backbone of args.backbones.split(",")) {
    for (const micro of args.micro.split(",").map(Number)) {
      const started = performance.now();
      // One process per case: a wasm abort cannot take the others down, and each heap starts empty.
      const child = spawnSync(
        process.execPath,
        [
          resolve(REPO, "bin/run-ts.mjs"),
          import.meta.filename,
          "--case",
          `${backbone}:${micro}`,
          "--updates",
          args.updates,
          "--blt-bytes",
          args["blt-bytes"],
          "--dense-tokens",
          args["dense-tokens"],
        ],
        { encoding: "utf8", maxBuffer: 64 * MB },
      );
      const line = child.stdout.split("\n").find((l) => l.startsWith("RESULT "));
      const result: CaseResult = line
        ? JSON.parse(line.slice("RESULT ".length))
        : {
            backbone,
            microBatchAnswers: micro,
            answers: GROUPS * 8,
            rowTokens: Number.NaN,
            ok: false,
            error: `process ended (${child.signal ?? `exit ${child.status}`}): ${child.stderr.trim().split("\n").slice(-3).join(" | ").slice(0, 300)}`,
          };
      results.push(result);
      console.error(`${backbone} micro ${micro}: ${((performance.now() - started) / 1000).toFixed(0)} s`, result);
    }
  }
  console.log(`\nload average at start ${load.toFixed(1)}, now ${loadavg()[0]!.toFixed(1)}\n`);
  console.log(
    "| backbone | answers per pass | rows × tokens | update (median of timed) | vs whole | wasm heap high-water | peak live tensors | loss, grad norm (update 1) |",
  );
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const whole = results.find((w) => w.backbone === r.backbone && w.microBatchAnswers === 0 && w.ok);
    const ms = r.updateMs ? median(r.updateMs) : undefined;
    const wholeMs = whole?.updateMs ? median(whole.updateMs) : undefined;
    const pass = r.microBatchAnswers === 0 ? `${r.answers} (whole batch)` : `${r.microBatchAnswers}`;
    const shape = `${r.answers} × ${fmt(r.rowTokens)}`;
    if (!r.ok) {
      console.log(
        `| ${r.backbone} | ${pass} | ${shape} | failed: ${r.error} | | ${fmt((r.heapBytes ?? Number.NaN) / MB)} MB | | |`,
      );
      continue;
    }
    console.log(
      `| ${r.backbone} | ${pass} | ${shape} | ${fmt((ms ?? 0) / 1000, 2)} s | ${ms && wholeMs ? `${(ms / wholeMs).toFixed(2)}×` : "–"} | ${fmt(r.heapBytes! / MB)} MB | ${fmt(r.peakTensorBytes! / MB)} MB | ${r.firstLoss?.toFixed(6)}, ${r.firstGradNorm?.toFixed(5)} |`,
    );
  }
}
