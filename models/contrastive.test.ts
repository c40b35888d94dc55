import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "./backend.ts";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
import { type ContrastiveConfig, ContrastiveEncoder, clipLoss, normalizedEmbeddings } from "./contrastive.ts";
import { createOptimizer } from "./optimizer.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

const lossOf = (images: number[][], texts: number[][], logScale: number) =>
  tf.tidy(() => clipLoss(tf.tensor2d(images), tf.tensor2d(texts), tf.scalar(logScale))).dataSync()[0]!;

describe("clipLoss (CLIP's symmetric InfoNCE)", () => {
  it("matches a worked example: logits = s·u·vᵀ, the mean of both directions' cross-entropy", () => {
    // u = [[1,0],[0,1]], v = [[1,0],[0.6,0.8]] (the second given ×5: rows are normalised), s = 2:
    // logits [[2, 1.2], [0, 1.6]]; image→text: (ln(1+e^-0.8) + ln(1+e^-1.6)) / 2 = 0.277501,
    // text→image: (ln(1+e^-2) + ln(1+e^-0.4)) / 2 = 0.319972; loss = 0.298736.
    expect(
      lossOf(
        [
          [1, 0],
          [0, 1],
        ],
        [
          [1, 0],
          [3, 4],
        ],
        Math.log(2),
      ),
    ).toBeCloseTo(0.2987362, 5);
  });

  it("caps the logit scale at 100 (so the temperature cannot collapse)", () => {
    // Both texts embed alike: image→text is ln 2 per row; text→image's second column costs ≈ s.
    // s = 100 → (ln 2 + (ln(1+e^-100) + ln(1+e^100)) / 2) / 2 ≈ 25.173; uncapped (s = 1000) it would be ≈ 250.
    const capped = lossOf(
      [
        [1, 0],
        [0, 1],
      ],
      [
        [1, 0],
        [1, 0],
      ],
      Math.log(1000),
    );
    expect(capped).toBeCloseTo((Math.log(2) + 50) / 2, 3);
  });

  it("is lower when the pairs match than when they are swapped", () => {
    const matched = lossOf(
      [
        [1, 0],
        [0, 1],
      ],
      [
        [1, 0],
        [0, 1],
      ],
      Math.log(10),
    );
    const swapped = lossOf(
      [
        [1, 0],
        [0, 1],
      ],
      [
        [0, 1],
        [1, 0],
      ],
      Math.log(10),
    );
    expect(matched).toBeLessThan(0.01);
    expect(swapped).toBeGreaterThan(9);
  });
});

const CONFIG: ContrastiveConfig = {
  backbone: "contrastive",
  imageVocab: 8,
  imageTokens: 4,
  words: ["red", "blue", "hat", "scarf"],
  embedding: 8,
  hidden: 16,
  shared: 8,
  initialTemperature: 0.07,
  initSeed: 3,
};

describe("ContrastiveEncoder", () => {
  const dir = mkdtempSync(join(tmpdir(), "contrastive-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("learns to pair four pictures with their captions, and reloads from a checkpoint exactly", async () => {
    const encoder = new ContrastiveEncoder(CONFIG);
    const images = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 1, 1, 2, 2, 7, 6, 5, 4]);
    const texts = ["red hat", "blue hat", "red scarf", "blue scarf"];
    const optimizer = createOptimizer({ learningRate: 1e-2, warmupSteps: 0, totalSteps: 60, clipNorm: 0 });
    const first = encoder.loss(images, texts).dataSync()[0]!;
    for (let step = 0; step < 60; step++) tf.dispose(optimizer.minimize(() => encoder.loss(images, texts), true) ?? []);
    const last = encoder.loss(images, texts).dataSync()[0]!;
    expect(last).toBeLessThan(first / 4);

    await saveCheckpoint(dir, { policy: encoder, step: 60 });
    const fresh = new ContrastiveEncoder({ ...CONFIG, initSeed: 99 });
    const loaded = await loadCheckpoint(dir, { policy: fresh });
    expect(loaded.step).toBe(60);
    expect(loaded.manifest.config).toMatchObject({ backbone: "contrastive", words: CONFIG.words });
    const a = await normalizedEmbeddings(() => encoder.embedTexts(texts));
    const b = await normalizedEmbeddings(() => fresh.embedTexts(texts));
    expect(Array.from(b)).toEqual(Array.from(a));
    encoder.dispose();
    fresh.dispose();
    optimizer.dispose();
  });

  it("refuses image tokens outside the codebook, naming the picture", () => {
    const encoder = new ContrastiveEncoder(CONFIG);
    expect(() => encoder.embedImages(Int32Array.from([0, 1, 2, 3, 0, 9, 0, 0]))).toThrow(/picture 1 has token 9/);
    expect(() => encoder.embedImages(Int32Array.from([0, 1, 2]))).toThrow(/not a multiple of 4/);
    encoder.dispose();
  });

  it("refuses an empty vocabulary", () => {
    expect(() => new ContrastiveEncoder({ ...CONFIG, words: [] })).toThrow(/^words:/);
  });
});
