/**
 * A Hugging Face model of SmolLM-135M's shape (random weights) on this machine (issue 21): import time
 * and memory, KV-cached sampling tokens/s, and a training step's time.
 *
 * Shape: LlamaForCausalLM, hidden 576, 30 layers, 9 heads / 3 KV heads, intermediate 1536, vocabulary
 * 49,152, tied embeddings (134.5 M parameters). The directory is written first by factrl's own export
 * (F32 safetensors), with the tiny Llama fixture's tokenizer (ids are all the benchmark needs).
 *
 *   node bin/run-ts.mjs bench/hf-model.ts                      # export, import, sampling
 *   node bin/run-ts.mjs bench/hf-model.ts --train [--layers N]  # training steps, in a process of their own
 *   node bin/run-ts.mjs bench/hf-model.ts --quick               # 4 layers, seconds
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../models/backend.ts";
import { type DenseConfig, DensePolicy } from "../models/dense.ts";
import { exportHuggingFaceModel, importHuggingFaceModel } from "../models/huggingface.ts";
import { createOptimizer, type HuggingFaceTokenizerRecord, mulberry32 } from "../models/index.ts";
import { readSafetensorsDir } from "../models/safetensors.ts";
import { trainStep } from "../pretrain/index.ts";
import { median } from "./lib/stats.ts";

const quick = process.argv.includes("--quick");
const train = process.argv.includes("--train");
/** Layers of the model whose training step is timed (`--train --layers N`; default all 30). */
const layersArgument = process.argv.indexOf("--layers");
const LAYERS = layersArgument > 0 ? Number(process.argv[layersArgument + 1]) : quick ? 4 : 30;
const REPO = resolve(import.meta.dirname, "..");
const FIXTURE = join(REPO, "models/fixtures/hf/tiny-llama");

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
/** The wasm backend's heap (it grows, never shrinks; 4 GiB at most): what runs out first. */
const wasmHeap = () =>
  (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.buffer.byteLength ?? Number.NaN;
const time = async <T>(run: () => Promise<T> | T): Promise<{ ms: number; value: T }> => {
  const start = performance.now();
  const value = await run();
  return { ms: performance.now() - start, value };
};

const backend = await initBackend();
console.log(`backend: ${backend.path} (${backend.device})`);

const fixtureTokenizer: HuggingFaceTokenizerRecord = {
  kind: "huggingface",
  eos: 257,
  tokenizer: JSON.parse(await readFile(join(FIXTURE, "tokenizer.json"), "utf8")),
  config: JSON.parse(await readFile(join(FIXTURE, "tokenizer_config.json"), "utf8")),
};
const eos = fixtureTokenizer.tokenizer.added_tokens as { id: number; content: string }[];
const SMOLLM_135M: DenseConfig = {
  backbone: "dense",
  vocabSize: 49152,
  maxSeqLen: 2048,
  specialTokens: {
    pad: eos[1]!.id,
    bos: eos[0]!.id,
    eos: eos[1]!.id,
    thinkOpen: eos[1]!.id,
    thinkClose: eos[1]!.id,
  },
  initSeed: 1,
  dModel: 576,
  nLayers: LAYERS,
  nHeads: 9,
  nKvHeads: 3,
  dFF: 1536,
  positions: "rope",
  ropeBase: 10000,
  mlp: "swiglu",
  tieEmbeddings: true,
  normEps: 1e-5,
};

const random = mulberry32(3);
const prompts = (batch: number, length: number) =>
  Array.from({ length: batch }, () => Int32Array.from({ length }, () => 100 + Math.floor(random() * 1000)));

async function loadAndSample() {
  const dir = await mkdtemp(join(tmpdir(), "factrl-hf-bench-"));
  try {
    const made = new DensePolicy(SMOLLM_135M);
    const written = await time(() =>
      exportHuggingFaceModel(made, { ...fixtureTokenizer, eos: SMOLLM_135M.specialTokens.eos }, dir),
    );
    console.log(
      `shape: ${(made.parameterCount() / 1e6).toFixed(1)} M parameters; export-hf wrote it in ${written.ms.toFixed(0)} ms`,
    );
    made.dispose();
    const readOnly = await time(() => readSafetensorsDir(dir));
    console.log(`read model.safetensors (F32) alone: ${readOnly.ms.toFixed(0)} ms`);
    readOnly.value.clear();

    const loaded = await time(() => importHuggingFaceModel(dir));
    const { policy } = loaded.value;
    console.log(
      `import (config, safetensors, tokenizer, weights into tfjs): ${loaded.ms.toFixed(0)} ms; tensors ${gib(tf.memory().numBytes)}; wasm heap ${gib(wasmHeap())}; RSS ${gib(process.memoryUsage().rss)}`,
    );
    for (const batch of [1, 8]) {
      const newTokens = quick ? 16 : 32;
      const rows = prompts(batch, 32);
      await policy.sample(rows, { maxNewTokens: 2, seed: 1, stopTokens: [] }); // warm-up
      const sampled = await policy.sample(rows, { maxNewTokens: newTokens, seed: 1, stopTokens: [] });
      const t = sampled.timings;
      console.log(
        `sampling batch ${batch}, 32-token prompts, ${newTokens} new tokens: prefill ${t.prefillMs.toFixed(0)} ms, decode ${t.decodeMs.toFixed(0)} ms → ${((t.generatedTokens / t.decodeMs) * 1000).toFixed(1)} tokens/s decoding`,
      );
    }
    policy.dispose();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Training steps (LM loss, Adam, clipping: the learner's optimiser path) on random weights of the shape. */
async function trainSteps() {
  const policy = new DensePolicy(SMOLLM_135M);
  const optimizer = createOptimizer({ learningRate: 1e-4, warmupSteps: 1, totalSteps: 100, clipNorm: 1 });
  console.log(`training: ${LAYERS} layers, ${(policy.parameterCount() / 1e6).toFixed(1)} M parameters`);
  for (const [batch, length] of quick
    ? [[2, 32]]
    : [
        [1, 64],
        [1, 128],
        [4, 128],
      ]) {
    const step = () => {
      const rows = prompts(batch!, length! + 1);
      return trainStep(
        policy,
        optimizer,
        { prompts: rows.map((r) => r.subarray(0, 1)), answers: rows.map((r) => r.subarray(1)) },
        1e-4,
        1,
      );
    };
    const warm = await time(step); // Adam's moments are made here
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) runs.push((await time(step)).ms);
    console.log(
      `training step, batch ${batch} × ${length} tokens: first ${warm.ms.toFixed(0)} ms, then median ${median(runs).toFixed(0)} ms (${((batch! * length!) / (median(runs) / 1000)).toFixed(0)} tokens/s); tensors ${gib(tf.memory().numBytes)}, wasm heap ${gib(wasmHeap())}, RSS ${gib(process.memoryUsage().rss)}`,
    );
  }
  policy.dispose();
}

await (train ? trainSteps() : loadAndSample());
