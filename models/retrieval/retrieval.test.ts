import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type Environment, factWorld } from "../../envs/index.ts";
import { buildRetrievalIndex, evaluateRecall, openRetriever, RetrievalIndexError, trainingPairs } from "./index.ts";

const tiny = factWorld({ size: "tiny", promptSeed: 1, evalFraction: 0.2 });
const dir = await mkdtemp(join(tmpdir(), "factrl-retrieval-"));
afterAll(() => rm(dir, { recursive: true, force: true }));
const SMALL_ENCODER = { dim: 32, steps: 60, batchSize: 16, learningRate: 0.02, temperature: 0.05, seed: 3 };

describe("retrieval indexes over FactWorld (tiny world)", () => {
  it("BM25: built, reopened, finds documents about the prompt's entity; top-1 recall well above chance", async () => {
    await buildRetrievalIndex(tiny, "bm25", join(dir, "bm25"));
    const retriever = await openRetriever(join(dir, "bm25"), tiny);
    const prompt = tiny.eval[0]!;
    const found = retriever.retrieve(prompt.text, { k: 3 });
    expect(found).toHaveLength(3);
    expect(found[0]!.text).toContain(prompt.focus!.entity);
    expect(found[0]!.score).toBeGreaterThanOrEqual(found[2]!.score);
    const report = evaluateRecall(retriever, tiny, [1, 5]);
    expect(report.prompts).toBe(tiny.eval.length);
    // 31 entities: a random document is about the prompt's entity ≈ 3 % of the time.
    expect(report.atK[0]!.hit).toBeGreaterThan(0.4);
    expect(report.atK[1]!.hit).toBeGreaterThanOrEqual(report.atK[0]!.hit);
  });

  it("dense: the bi-encoder's InfoNCE loss falls, and its index retrieves the entity's documents", async () => {
    expect(trainingPairs(tiny, tiny.documents!()).length).toBeGreaterThan(100);
    const manifest = await buildRetrievalIndex(tiny, "dense", join(dir, "dense"), SMALL_ENCODER);
    expect(manifest.biEncoder!.lastLoss).toBeLessThan(manifest.biEncoder!.firstLoss * 0.7);
    const retriever = await openRetriever(join(dir, "dense"), tiny);
    expect(evaluateRecall(retriever, tiny, [5]).atK[0]!.hit).toBeGreaterThan(0.4);
    const found = retriever.retrieveIndexes(tiny.eval[1]!.text, { k: 5 });
    expect(found.map((s) => s.score)).toEqual([...found.map((s) => s.score)].sort((a, b) => b - a));
  }, 60_000);

  it("query dropout applies only when retrieving for training, and is seeded", async () => {
    const retriever = await openRetriever(join(dir, "bm25"), tiny);
    const query = tiny.eval[2]!.text;
    const plain = retriever.retrieve(query, { k: 5 });
    expect(retriever.retrieve(query, { k: 5 })).toEqual(plain);
    const dropped = [1, 2, 3, 4, 5, 6].map((seed) => retriever.retrieve(query, { k: 5, forTraining: true, seed }));
    expect(dropped.some((docs) => JSON.stringify(docs) !== JSON.stringify(plain))).toBe(true);
    expect(retriever.retrieve(query, { k: 5, forTraining: true, seed: 4 })).toEqual(dropped[3]);
  });

  it("refuses an index built for another world, another tokenizer, or of another kind, saying so", async () => {
    const other = factWorld({ size: "tiny", seed: 8, promptSeed: 1, evalFraction: 0.2 });
    await expect(openRetriever(join(dir, "bm25"), other)).rejects.toThrow(/built for another world/);
    const otherVocabulary: Environment = { ...tiny, vocabulary: [...tiny.vocabulary!, "zzextra"] };
    await expect(openRetriever(join(dir, "dense"), otherVocabulary)).rejects.toThrow(RetrievalIndexError);
    await expect(openRetriever(join(dir, "dense"), otherVocabulary)).rejects.toThrow(/tokenizer/);
    await expect(openRetriever(join(dir, "bm25"), tiny, undefined, "dense")).rejects.toThrow(/is a bm25 index/);
    await expect(openRetriever(join(dir, "missing"), tiny)).rejects.toThrow(/factrl retriever build/);
  });
});
