/**
 * Models benchmarks (issue 5), ratios measured within one run:
 *  1. sampling with the KV cache vs full recompute (batch 64, 96 new tokens);
 *  2. a training step's achieved FLOP/s vs the same backend's 2-D matMul peak, and where the time
 *     goes (tf.profile, grouped by kernel);
 *  3. wasm vs cpu backend on the same (smaller) training step.
 *
 *   node bin/run-ts.mjs bench/models.ts            # full
 *   node bin/run-ts.mjs bench/models.ts --quick    # smaller sizes, seconds
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend, measureMatMulGflops } from "../models/backend.ts";
import { type DenseConfig, DensePolicy } from "../models/dense.ts";
import { createOptimizer, logSoftmax, sampleToken } from "../models/index.ts";
import { mulberry32 } from "../models/random.ts";
import { trainStep, windowBatches } from "../pretrain/index.ts";
import { median } from "./lib/stats.ts";

const quick = process.argv.includes("--quick");
const silent = { info: () => {} };

/** The default model of `factrl pretrain` on the default FactWorld (768 words). */
const MODEL: DenseConfig = {
  backbone: "dense",
  vocabSize: 768,
  maxSeqLen: 256,
  specialTokens: { pad: 0, bos: 1, eos: 2, thinkOpen: 4, thinkClose: 5 },
  initSeed: 1,
  dModel: 128,
  nLayers: 2,
  nHeads: 4,
  dFF: 512,
  positions: "rope",
};

function prompts(batch: number, length: number): Int32Array[] {
  const random = mulberry32(5);
  return Array.from({ length: batch }, () =>
    Int32Array.from({ length }, (_, i) => (i === 0 ? 1 : 7 + Math.floor(random() * 700))),
  );
}

/** The baseline: every new token re-runs the whole sequence (no cache). Same sampling rule. */
async function sampleByRecompute(policy: DensePolicy, rows: Int32Array[], newTokens: number, seed: number) {
  const B = rows.length;
  const V = policy.config.vocabSize;
  const sequences = rows.map((r) => [...r]);
  const randoms = rows.map((_, b) => mulberry32(seed + b));
  const scratch = new Float64Array(V);
  for (let step = 0; step < newTokens; step++) {
    const length = sequences[0]!.length;
    const tokens = Int32Array.from(sequences.flat());
    const last = tf.tidy(() =>
      policy
        .forward({ tokens, batchSize: B, length, promptLengths: new Int32Array(B).fill(length) })
        .slice([0, length - 1, 0], [B, 1, V]),
    );
    const logits = (await last.data()) as Float32Array;
    last.dispose();
    for (let b = 0; b < B; b++) {
      const row = logSoftmax(logits.subarray(b * V, (b + 1) * V), 1, scratch);
      sequences[b]!.push(sampleToken(row, 1, randoms[b]!));
    }
  }
}

async function samplingBenchmark() {
  const policy = new DensePolicy(MODEL);
  const batch = quick ? 16 : 64;
  const newTokens = quick ? 32 : 96;
  const rows = prompts(batch, 16);
  const options = { maxNewTokens: newTokens, seed: 1, stopTokens: [] };
  await policy.sample(rows.slice(0, 2), { ...options, maxNewTokens: 4 }); // warm-up
  const cachedRuns: number[] = [];
  for (let i = 0; i < 2; i++) {
    const start = performance.now();
    await policy.sample(rows, options);
    cachedRuns.push(performance.now() - start);
  }
  const start = performance.now();
  await sampleByRecompute(policy, rows, newTokens, 1);
  const recomputeMs = performance.now() - start;
  const cachedMs = median(cachedRuns);
  policy.dispose();
  return {
    batch,
    newTokens,
    cachedMs,
    recomputeMs,
    speedup: recomputeMs / cachedMs,
    tokensPerSecond: (batch * newTokens) / (cachedMs / 1000),
  };
}

interface StepFigures {
  readonly batch: number;
  readonly seqLen: number;
  readonly stepMs: number;
  readonly gflops: number;
}

function trainingStepBenchmark(batch: number, seqLen: number, steps: number): StepFigures {
  const policy = new DensePolicy(MODEL);
  const stream = Int32Array.from({ length: 50_000 }, (_, i) => 7 + ((i * 7919) % 700));
  const batches = windowBatches(stream, batch, seqLen, 1);
  const optimizer = createOptimizer({ learningRate: 1e-3, warmupSteps: 1, totalSteps: 100, clipNorm: 1 });
  trainStep(policy, optimizer, batches(0), 1e-3, 1); // warm-up (kernel setup, Adam state)
  const times: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const start = performance.now();
    trainStep(policy, optimizer, batches(s), 1e-3, 1);
    times.push(performance.now() - start);
  }
  const stepMs = median(times);
  // Executed FLOPs: forward ≈ flopsPerToken(T) per token (attention is computed over all T keys,
  // masked), backward ≈ 2× forward.
  const flops = 3 * policy.flopsPerToken(seqLen) * batch * seqLen;
  policy.dispose();
  optimizer.dispose();
  return { batch, seqLen, stepMs, gflops: flops / (stepMs / 1000) / 1e9 };
}

async function profileStep(batch: number, seqLen: number) {
  const policy = new DensePolicy(MODEL);
  const stream = Int32Array.from({ length: 50_000 }, (_, i) => 7 + ((i * 7919) % 700));
  const batches = windowBatches(stream, batch, seqLen, 1);
  const optimizer = createOptimizer({ learningRate: 1e-3, warmupSteps: 1, totalSteps: 100, clipNorm: 1 });
  trainStep(policy, optimizer, batches(0), 1e-3, 1);
  const start = performance.now();
  const info = await tf.profile(() => {
    trainStep(policy, optimizer, batches(1), 1e-3, 1);
  });
  const wallMs = performance.now() - start;
  const byKernel = new Map<string, number>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
  }
  const kernelMs = [...byKernel.values()].reduce((a, b) => a + b, 0);
  policy.dispose();
  optimizer.dispose();
  return {
    wallMs,
    kernelMs,
    top: [...byKernel]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([name, ms]) => ({ name, ms, share: ms / kernelMs })),
  };
}

const fmt = (x: number, digits = 1) => x.toFixed(digits);

const info = await initBackend({ backend: "wasm", logger: silent });
console.log(`backend: ${info.path} — ${info.device}`);
const peak = measureMatMulGflops(512, 0.5);
console.log(`matMul peak (512×512×512, best of runs): ${fmt(peak)} GFLOP/s`);

const sampling = await samplingBenchmark();
console.log(
  `sampling, batch ${sampling.batch}, ${sampling.newTokens} new tokens after 16-token prompts: KV cache ${fmt(sampling.cachedMs, 0)} ms (${fmt(sampling.tokensPerSecond, 0)} tok/s), full recompute ${fmt(sampling.recomputeMs, 0)} ms → ${fmt(sampling.speedup)}×`,
);

const big = trainingStepBenchmark(quick ? 16 : 32, 128, quick ? 2 : 5);
console.log(
  `training step, batch ${big.batch} × ${big.seqLen} tokens: ${fmt(big.stepMs, 0)} ms, ${fmt(big.gflops)} GFLOP/s = ${fmt((100 * big.gflops) / peak)} % of the matMul peak`,
);
const profile = await profileStep(quick ? 16 : 32, 128);
console.log(
  `profile of one step: wall ${fmt(profile.wallMs, 0)} ms, kernels ${fmt(profile.kernelMs, 0)} ms; top kernels:`,
);
for (const k of profile.top)
  console.log(`  ${k.name.padEnd(22)} ${fmt(k.ms, 1).padStart(8)} ms  ${fmt(100 * k.share)} %`);

const small = { batch: 8, seqLen: 64 };
const wasmSmall = trainingStepBenchmark(small.batch, small.seqLen, 3);
await initBackend({ backend: "cpu", logger: silent, measure: false });
const cpuSmall = trainingStepBenchmark(small.batch, small.seqLen, quick ? 1 : 2);
console.log(
  `same step on both backends, batch ${small.batch} × ${small.seqLen}: wasm ${fmt(wasmSmall.stepMs, 0)} ms vs cpu ${fmt(cpuSmall.stepMs, 0)} ms → wasm ${fmt(cpuSmall.stepMs / wasmSmall.stepMs)}× faster`,
);
