import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../models/index.ts";
import { evalWindows, tokenStream, windowBatches } from "./pretrain.ts";
import { DEFAULT_PRETRAIN, type PretrainSettings, pretrain } from "./pretrain-factworld.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

const tinyRun: PretrainSettings = {
  ...DEFAULT_PRETRAIN,
  world: "tiny",
  model: { backbone: "dense", dModel: 32, nLayers: 1, nHeads: 2, dFF: 64, maxSeqLen: 64, positions: "rope" },
  seqLen: 32,
  batchSize: 16,
  learningRate: 5e-3,
  warmupSteps: 5,
  totalSteps: 40,
  evalEvery: 20,
  checkpointEvery: 20,
};

describe("pretraining data", () => {
  it("streams documents between <bos> and <eos>, and windows depend only on (seed, step)", () => {
    const stream = tokenStream([Int32Array.of(7, 8), Int32Array.of(9)], 1, 2);
    expect([...stream]).toEqual([1, 7, 8, 2, 1, 9, 2]);
    const long = Int32Array.from({ length: 500 }, (_, i) => i);
    const a = windowBatches(long, 4, 10, 3);
    const b = windowBatches(long, 4, 10, 3);
    expect(a(5).prompts.map((p) => p[0])).toEqual(b(5).prompts.map((p) => p[0]));
    expect(a(5).prompts.map((p) => p[0])).not.toEqual(a(6).prompts.map((p) => p[0]));
    const batch = a(0);
    batch.prompts.forEach((p, i) => {
      expect(batch.answers[i]!.length).toBe(10);
      expect(batch.answers[i]![0]).toBe(p[0]! + 1); // the answer continues the prompt token
    });
    expect(evalWindows(long, 4, 10, 100).length).toBe(Math.floor(500 / 11 / 4));
    expect(() => windowBatches(Int32Array.of(1, 2), 1, 10, 0)).toThrow(/cannot fill a window of 11/);
  });
});

describe("pretraining on FactWorld (tiny)", () => {
  const out = mkdtempSync(join(tmpdir(), "factrl-pretrain-"));

  it("drops the loss clearly in a few seconds, with eval losses and checkpoints on schedule", async () => {
    const run = await pretrain(tinyRun, out);
    const evals = run.history.filter((h) => h.evalLoss !== undefined).map((h) => h.step);
    const checkpoints = run.history.filter((h) => h.checkpoint !== undefined).map((h) => h.step);
    expect(evals).toEqual([20, 40]);
    expect(checkpoints).toEqual([20, 40]);
    expect(run.firstLoss).toBeGreaterThan(Math.log(run.tokenizer.vocabSize) - 1); // starts near uniform
    expect(run.finalEvalLoss).toBeLessThan(run.firstLoss * 0.6);
    run.policy.dispose();
  });

  it("resumes from the checkpoint's step, weights and optimiser state", async () => {
    const resumed = await pretrain({ ...tinyRun, totalSteps: 50 }, out);
    expect(resumed.resumedFrom).toBe(40);
    expect(resumed.history.map((h) => h.step)).toEqual([41, 42, 43, 44, 45, 46, 47, 48, 49, 50]);
    // A resumed model already knows the corpus: its first loss is far below a fresh model's.
    expect(resumed.firstLoss).toBeLessThan(Math.log(resumed.tokenizer.vocabSize) * 0.7);
    resumed.policy.dispose();
  });
});
