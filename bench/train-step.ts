// Issue 8's training step in factrl's learner code path (DensePolicy.answerLogProbs → grpoLoss →
// Adam) on each tfjs path, against PyTorch on the CPU (bench/train-step.torch.py), interleaved
// step by step in one run so machine load hits every column alike. Also: KV-cache sampling
// tokens/s on the plain and native-GEMM wasm paths, and a tf.profile of one native step.
//
//   node bin/run-ts.mjs bench/train-step.ts [--rounds 5] [--plain-rounds 2] [--no-torch] [--no-sample]
//
// Model: 2 layers, d = 128, 4 heads, dFF = 512, vocab 512, RoPE (0.52 M parameters); batch 64 rows
// of 32 prompt + 64 answer tokens = 96 tokens; the output layer runs on the 64 answer positions.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import * as tf from "@tensorflow/tfjs";
import { grpoLoss } from "../learner/grpo.ts";
import { initBackend } from "../models/backend.ts";
import { type DenseConfig, DensePolicy } from "../models/dense.ts";
import { mulberry32 } from "../models/random.ts";
import { median } from "./lib/stats.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROUNDS = option("--rounds", 5);
const PLAIN_ROUNDS = option("--plain-rounds", 2);
const WITH_TORCH = !args.includes("--no-torch");
const WITH_SAMPLING = !args.includes("--no-sample");

const B = 64;
const PROMPT = 32;
const ANSWER = 64;
const T = PROMPT + ANSWER;
const NEW_TOKENS = 96;
const config: DenseConfig = {
  backbone: "dense",
  vocabSize: 512,
  maxSeqLen: PROMPT + NEW_TOKENS,
  specialTokens: { pad: 0, bos: 1, eos: 2, thinkOpen: 3, thinkClose: 4 },
  initSeed: 1,
  dModel: 128,
  nLayers: 2,
  nHeads: 4,
  dFF: 512,
  positions: "rope",
};

/** FLOPs of one training step: 3× the forward (backward ≈ 2× forward), multiply-add = 2. */
function stepFlops(): number {
  const { dModel: d, dFF, nLayers, vocabSize: V } = config;
  const tokens = B * T;
  const perLayer = 2 * tokens * (4 * d * d + 2 * d * dFF) + 2 * 2 * B * T * T * d;
  return 3 * (nLayers * perLayer + 2 * B * ANSWER * d * V);
}

const silent = { info: () => {} };

/** Wall time, and CPU time of the process: on a shared machine the latter is the steadier one. */
type StepTime = { wallMs: number; cpuMs: number };

// ── PyTorch, driven over stdin/stdout ────────────────────────────────────────────────────────────

const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

function ensureTorch(): boolean {
  const hasTorch = () => spawnSync(PYTHON, ["-c", "import torch"], { stdio: "ignore" }).status === 0;
  if (hasTorch()) return true;
  const packages = ["python3-torch", "libopenblas0-pthread"];
  if (process.getuid?.() !== 0 || spawnSync("apt-get", ["--version"], { stdio: "ignore" }).status !== 0) {
    console.log(`PyTorch missing and cannot install it here: run apt-get install -y ${packages.join(" ")}`);
    return false;
  }
  console.log(`PyTorch missing: installing ${packages.join(" ")} with apt-get (large; takes minutes)…`);
  const install = spawnSync("apt-get", ["install", "-y", "-qq", ...packages], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return install.status === 0 && hasTorch();
}

class TorchTwin {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  constructor() {
    const script = new URL("./train-step.torch.py", import.meta.url).pathname;
    this.child = spawn(PYTHON, [
      script,
      "--vocab",
      "512",
      "--batch",
      `${B}`,
      "--prompt",
      `${PROMPT}`,
      "--answer",
      `${ANSWER}`,
    ]);
    this.child.stderr.pipe(process.stderr);
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async ask(command?: string): Promise<Record<string, unknown>> {
    if (command !== undefined) this.child.stdin.write(`${command}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error("the PyTorch twin exited");
    return JSON.parse(next.value) as Record<string, unknown>;
  }
  async step(threads: number): Promise<StepTime> {
    await this.ask(`threads ${threads}`);
    const reply = await this.ask("step");
    return { wallMs: reply.stepMs as number, cpuMs: reply.cpuMs as number };
  }
  close() {
    this.child.stdin.end();
  }
}

// ── tfjs: the learner path ───────────────────────────────────────────────────────────────────────

type TfPath = { name: string; native: boolean; threads: number };

async function activate(path: TfPath, measure = false) {
  return initBackend({
    backend: "wasm",
    threads: path.threads,
    measure,
    logger: silent,
    ...(path.native ? {} : { loadNativeGemm: () => ({ loaded: false as const, reason: "benchmark: plain wasm" }) }),
  });
}

await initBackend({ backend: "wasm", logger: silent, measure: false });
const policy = new DensePolicy(config);
const random = mulberry32(7);
const token = () => 5 + Math.floor(random() * (config.vocabSize - 5));
const prompts = Array.from({ length: B }, () => Int32Array.from({ length: PROMPT }, token));
const answers = Array.from({ length: B }, () => Int32Array.from({ length: ANSWER }, token));
const behaviourLogProbs = tf.fill([B, ANSWER], -Math.log(config.vocabSize)) as tf.Tensor2D;
const advantages = tf.randomNormal([B], 0, 1, "float32", 3) as tf.Tensor1D;
const optimizer = tf.train.adam(1e-3);
const lossOptions = { epsLow: 0.2, epsHigh: 0.28, klBeta: 0, aggregation: "token-mean" } as const;

function trainStep(): StepTime {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const loss = optimizer.minimize(
    () => {
      const { logProbs, mask } = policy.answerLogProbs({ prompts, answers });
      return grpoLoss({ logProbs, behaviourLogProbs, advantages, mask }, lossOptions).loss;
    },
    true,
    policy.trainableVariables as tf.Variable[],
  );
  loss?.dataSync();
  loss?.dispose();
  const cpu = process.cpuUsage(cpuStart);
  return { wallMs: performance.now() - start, cpuMs: (cpu.user + cpu.system) / 1000 };
}

const paths: TfPath[] = [
  { name: "tfjs wasm, its own matMul kernels", native: false, threads: 1 },
  { name: "tfjs wasm + native GEMM, 1 thread", native: true, threads: 1 },
  { name: "tfjs wasm + native GEMM, 2 threads", native: true, threads: 2 },
];
const torchThreads = [1, 2];
const times = new Map<string, StepTime[]>();
const record = (name: string, t: StepTime) => times.set(name, [...(times.get(name) ?? []), t]);
const torch = WITH_TORCH && ensureTorch() ? new TorchTwin() : undefined;
const torchInfo = torch ? await torch.ask() : undefined;
const torchName = (threads: number) => `PyTorch ${torchInfo?.torch} CPU, ${threads} thread${threads > 1 ? "s" : ""}`;

console.log(
  `params: factrl ${policy.parameterCount()}, PyTorch ${torchInfo?.params ?? "—"}; step FLOPs ${(stepFlops() / 1e9).toFixed(2)} G`,
);
// Warm-up (kernel set-up, allocator, Adam slots), then interleaved rounds.
for (const path of paths.slice(1)) {
  await activate(path);
  trainStep();
}
for (const threads of torchThreads) await torch?.step(threads);
for (let round = 0; round < ROUNDS; round++) {
  for (const path of paths) {
    if (!path.native && round >= PLAIN_ROUNDS) continue;
    await activate(path);
    record(path.name, trainStep());
  }
  for (const threads of torchThreads) {
    if (torch) record(torchName(threads), await torch.step(threads));
  }
  process.stdout.write(`round ${round + 1}/${ROUNDS} done\n`);
}
torch?.close();

// matMul peak of each path, measured in the same run (2-D 512³, best of a few).
const peaks = new Map<string, number>();
for (const path of paths) {
  peaks.set(path.name, (await activate(path, true)).matMulGflops);
}

const medianOf = (name: string, key: keyof StepTime) => median((times.get(name) ?? []).map((t) => t[key]));
console.log(
  "\n| path | step wall (median) | step CPU (median) | steps | GFLOP/s (wall) | matMul peak GFLOP/s | PyTorch ÷ this, wall | PyTorch ÷ this, CPU (1 thread) |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const [name, ts] of times) {
  const threads = name.includes("2 threads") ? 2 : 1;
  const wall = medianOf(name, "wallMs");
  const cpu = medianOf(name, "cpuMs");
  const isTorch = name.startsWith("PyTorch");
  const torchWall = medianOf(torchName(threads), "wallMs");
  const torchCpu = medianOf(torchName(1), "cpuMs");
  const peak = peaks.get(name);
  const ratio = (x: number) => (isTorch || Number.isNaN(x) ? "—" : `${x.toFixed(2)}×`);
  console.log(
    `| ${name} | ${(wall / 1000).toFixed(3)} s | ${threads === 1 ? `${(cpu / 1000).toFixed(3)} s` : "—"} | ${ts.length} | ` +
      `${(stepFlops() / (wall / 1000) / 1e9).toFixed(1)} | ${peak === undefined ? "—" : peak.toFixed(1)} | ` +
      `${ratio(torchWall / wall)} | ${threads === 1 ? ratio(torchCpu / cpu) : "—"} |`,
  );
}

// ── where a native step's time goes ─────────────────────────────────────────────────────────────

await activate(paths[1] as TfPath);
const profile = await tf.profile(() => {
  trainStep();
});
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of profile.kernels) {
  const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  entry.ms += typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
  entry.calls += 1;
  byKernel.set(k.name, entry);
}
const total = [...byKernel.values()].reduce((s, e) => s + e.ms, 0);
console.log(`\ntf.profile of one step (wasm + native GEMM, 1 thread): kernels ${total.toFixed(0)} ms in total`);
console.log("| kernel | ms | share | calls |\n|---|---|---|---|");
for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) {
  console.log(`| ${name} | ${e.ms.toFixed(0)} | ${((100 * e.ms) / total).toFixed(1)} % | ${e.calls} |`);
}

// ── KV-cache sampling ───────────────────────────────────────────────────────────────────────────

if (WITH_SAMPLING) {
  console.log(`\nKV-cache sampling, batch ${B}, ${PROMPT}-token prompts, ${NEW_TOKENS} new tokens (no stop token)`);
  console.log("| path | tokens/s | prefill ms | decode ms |\n|---|---|---|---|");
  for (const path of paths.slice(0, 2)) {
    await activate(path);
    const options = { maxNewTokens: NEW_TOKENS, seed: 11, stopTokens: [] };
    await policy.sample(prompts.slice(0, 4), { ...options, maxNewTokens: 4 }); // warm-up
    const { timings } = await policy.sample(prompts, options);
    console.log(
      `| ${path.name} | ${((timings.generatedTokens / timings.totalMs) * 1000).toFixed(0)} | ${timings.prefillMs.toFixed(0)} | ${timings.decodeMs.toFixed(0)} |`,
    );
  }
}
