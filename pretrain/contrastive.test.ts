import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateWorld, rawPicturePool } from "../envs/index.ts";
import { ContrastiveEncoder, initBackend, trainVqCodebook } from "../models/index.ts";
import { citCurate, metadataEmbeddings, PoolPictureError, poolImageTokens, trainContrastive } from "./contrastive.ts";
import { contrastiveStudy } from "./contrastive-study.ts";
import { decodePretrainConfig } from "./pretrain-config.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

const world = generateWorld({ size: "tiny" });
const dir = mkdtempSync(join(tmpdir(), "contrastive-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const encoder = () =>
  new ContrastiveEncoder({
    backbone: "contrastive",
    imageVocab: 8,
    imageTokens: 64,
    words: ["a", "picture", "of", "red", "hair"],
    embedding: 4,
    hidden: 8,
    shared: 4,
    initialTemperature: 0.07,
    initSeed: 1,
  });

describe("bad input to the pool's curation", () => {
  it("a pool picture the codebook cannot encode: an error naming the pair", () => {
    // A codebook for 16×16 pictures cannot tokenize the pool's 32×32 renders.
    const small = Array.from({ length: 4 }, (_, i) => ({
      width: 16,
      height: 16,
      pixels: Uint8Array.from({ length: 16 * 16 * 3 }, (_, k) => (k * (i + 7)) % 256),
    }));
    const codebook = trainVqCodebook(small, { codebookSize: 4, iterations: 2 });
    const pool = rawPicturePool(world, 5, 1);
    expect(() => poolImageTokens(codebook, pool[3]!)).toThrow(PoolPictureError);
    expect(() => poolImageTokens(codebook, pool[3]!)).toThrow(/^pool pair pool:3: picture is 32×32/);
  });

  it("empty metadata, a threshold outside [−1, 1], a minRatio outside (0, 1]: errors naming the argument", async () => {
    const e = encoder();
    await expect(metadataEmbeddings(e, [])).rejects.toThrow(/^metadata: the metadata list is empty/);
    await expect(metadataEmbeddings(e, [{ entry: "red", prompts: [] }])).rejects.toThrow(/^metadata: entry "red"/);
    const metadata = await metadataEmbeddings(e, [{ entry: "red", prompts: ["red hair"] }]);
    await expect(citCurate(e, new Float32Array(0), ["red hair"], 0.5, 0.5)).rejects.toThrow(/^metadata:/);
    await expect(citCurate(e, metadata, ["red hair"], 1.5, 0.5)).rejects.toThrow(/^threshold: 1.5/);
    await expect(citCurate(e, metadata, ["red hair"], -1.01, 0.5)).rejects.toThrow(/^threshold/);
    await expect(citCurate(e, metadata, ["red hair"], 0.5, 0)).rejects.toThrow(/^minRatio: 0/);
    await expect(citCurate(e, metadata, ["red hair"], 0.5, 1.2)).rejects.toThrow(/^minRatio/);
    e.dispose();
  });

  it("the config refuses the same, naming the field", () => {
    const bad = (contrastive: unknown) => () => decodePretrainConfig({ contrastive }, "test.yaml");
    expect(bad({ cit: { threshold: 1.5 } })).toThrow(/contrastive.*cit.*threshold[\s\S]*\[-1, 1\]/);
    expect(bad({ cit: { minRatio: 0 } })).toThrow(/contrastive.*cit.*minRatio[\s\S]*\(0, 1\]/);
    expect(() => decodePretrainConfig({ contrastive: {}, vision: {} }, "test.yaml")).toThrow(/contrastive/);
  });
});

describe("CiT's curation", () => {
  it("keeps what citSelect keeps of the texts' highest similarity to the metadata", async () => {
    const e = encoder();
    const metadata = await metadataEmbeddings(e, [
      { entry: "red", prompts: ["red hair", "a picture of red"] },
      { entry: "hair", prompts: ["hair"] },
    ]);
    // The same text as a metadata prompt's is at similarity ≈ 1 to the ensemble of one prompt ("hair").
    const texts = ["hair", "", "zzz unknown", "hair hair"];
    const kept = await citCurate(e, metadata, texts, 0.999, 0.25);
    // Empty and unknown texts embed as zero (similarity 0); "hair" and "hair hair" are the same bag.
    expect(kept).toEqual([0, 3]);
    // Nothing passes a threshold of 1: the top ⌊0.5 × 4⌋ = 2 by similarity instead.
    expect(await citCurate(e, metadata, texts, 1, 0.5)).toEqual([0, 3]);
    e.dispose();
  });
});

const runConfig = (output: string, contrastive: Record<string, unknown>) =>
  decodePretrainConfig(
    {
      world: "tiny",
      output,
      contrastive: {
        poolPairs: 400,
        steps: 4,
        batch: 16,
        evalEvery: 2,
        checkpointEvery: 2,
        encoder: { codebookSize: 16, hidden: 16, shared: 8, embedding: 4 },
        cit: { curate: 2, slice: 100, threshold: 0.9, minRatio: 0.2 },
        ...contrastive,
      },
    },
    "test",
  );

describe("training the encoder", () => {
  it("trains on each data choice at equal steps; MetaCLIP's and the random subset are the same size", async () => {
    const { reports, table } = await contrastiveStudy(runConfig(join(dir, "study"), { targetAccuracy: 0 }), [
      "raw",
      "random",
      "metaclip",
      "cit",
    ]);
    const [raw, random, metaclip, cit] = reports;
    expect(raw!.pool.trainingPairs).toBe(400);
    expect(metaclip!.pool.trainingPairs).toBe(metaclip!.pool.curated);
    expect(metaclip!.pool.curated).toBeLessThan(400 - metaclip!.pool.unmatched + 1);
    expect(random!.pool.trainingPairs).toBe(metaclip!.pool.curated);
    // Balancing moves pairs from the head to the tail.
    expect(metaclip!.pool.buckets.tail).toBeGreaterThan(raw!.pool.buckets.tail);
    expect(metaclip!.pool.buckets.head).toBeLessThan(raw!.pool.buckets.head);
    for (const r of reports) expect(r.pool.buckets.head + r.pool.buckets.torso + r.pool.buckets.tail).toBeCloseTo(1, 9);
    // CiT curated at steps 0 and 2, 100 pairs each: half the pool scanned.
    expect(cit!.pool.curations!.map((c) => c.step)).toEqual([0, 2]);
    expect(cit!.pool.scannedShare).toBe(0.5);
    for (const c of cit!.pool.curations!) expect(c.kept).toBeGreaterThanOrEqual(20);
    for (const r of reports) {
      expect(r.evaluations.map((e) => e.step)).toEqual([2, 4]);
      expect(r.final.pictures).toBe(2 * world.entities.length);
      expect(r.final.entity.all).toBeGreaterThanOrEqual(0);
      expect(r.target?.step).toBe(2);
    }
    expect(table.split("\n")).toHaveLength(6);
    expect(table).toContain("(c) MetaCLIP-curated");
  }, 180_000); // seconds on a quiet box; the limit leaves room for a loaded one

  it("resumes from its checkpoint", async () => {
    const output = join(dir, "resume");
    await trainContrastive(runConfig(output, { data: "raw", steps: 2 }));
    const resumed = await trainContrastive(runConfig(output, { data: "raw", steps: 4 }));
    expect(resumed.evaluations.map((e) => e.step)).toEqual([4]);
  }, 180_000); // seconds on a quiet box; the limit leaves room for a loaded one

  it("learns: zero-shot accuracy well above chance after a short run on the tiny world", async () => {
    const report = await trainContrastive(
      runConfig(join(dir, "learns"), {
        data: "raw",
        poolPairs: 1000,
        steps: 80,
        batch: 32,
        evalEvery: 0,
        checkpointEvery: 0,
        encoder: { codebookSize: 32 },
      }),
    );
    // Chance: 1 in 31 entities; about 1 in 4.6 attribute values. Measured here: 0.50 and 0.45.
    expect(report.final.entity.all).toBeGreaterThan(8 / world.entities.length);
    expect(report.final.attribute.all).toBeGreaterThan(0.3);
  }, 180_000); // seconds on a quiet box; the limit leaves room for a loaded one
});
