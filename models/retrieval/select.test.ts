import { describe, expect, it } from "vitest";
import { countCosine, recallAtK, selectDiverse, topScores } from "./select.ts";
import { dropQueryWords, retrievalWords } from "./words.ts";

describe("retrieval rules", () => {
  it("selectDiverse keeps relevance order and skips a candidate more than 0.9 similar to a kept one", () => {
    // Documents 0 and 1 are near-duplicates (0.95), 2 is distinct from both, 3 is 0.9 from 0 (kept: not above).
    const sim = new Map([
      ["0,1", 0.95],
      ["0,2", 0.1],
      ["1,2", 0.1],
      ["0,3", 0.9],
      ["2,3", 0.2],
    ]);
    const similarity = (a: number, b: number) => sim.get(`${Math.min(a, b)},${Math.max(a, b)}`) ?? 0;
    const candidates = [0, 1, 2, 3].map((index) => ({ index, score: 10 - index }));
    expect(selectDiverse(candidates, 3, similarity, 0.9).map((c) => c.index)).toEqual([0, 2, 3]);
    expect(selectDiverse(candidates, 2, similarity, 0.9).map((c) => c.index)).toEqual([0, 2]);
    // With the rule off (max similarity 1), plain top-k.
    expect(selectDiverse(candidates, 2, similarity, 1).map((c) => c.index)).toEqual([0, 1]);
  });

  it("topScores returns the n best, best first, ties by lower index", () => {
    expect(topScores([0.1, 0.9, 0.5, 0.9, -1], 3)).toEqual([
      { index: 1, score: 0.9 },
      { index: 3, score: 0.9 },
      { index: 2, score: 0.5 },
    ]);
    expect(topScores([3, 1], 5).map((s) => s.index)).toEqual([0, 1]);
  });

  it("countCosine of count vectors: a worked example", () => {
    const a = new Map([
      ["x", 1],
      ["y", 2],
    ]);
    const b = new Map([
      ["y", 2],
      ["z", 1],
    ]);
    // dot 4, |a|² 5, |b|² 5 → 0.8
    expect(countCosine(a, b)).toBeCloseTo(0.8, 12);
    expect(countCosine(a, new Map())).toBe(0);
  });

  it("recallAtK counts the supporting documents found out of min(k, |supporting|)", () => {
    expect(recallAtK([4, 7, 1, 9], new Set([7, 9, 11]), 2)).toEqual({ recall: 0.5, hit: true });
    expect(recallAtK([4, 7, 1, 9], new Set([7, 9, 11]), 4)).toEqual({ recall: 2 / 3, hit: true });
    expect(recallAtK([4, 7], new Set([7]), 2)).toEqual({ recall: 1, hit: true });
    expect(recallAtK([4, 1], new Set([7]), 2)).toEqual({ recall: 0, hit: false });
    expect(() => recallAtK([1], new Set(), 1)).toThrow(/no supporting/);
  });

  it("retrievalWords lower-cases and splits on punctuation", () => {
    expect(retrievalWords("Tell me about Ana Bel's works .")).toEqual(["tell", "me", "about", "ana", "bel's", "works"]);
  });

  it("query dropout drops about 20 % of the words, seeded, and never empties a query", () => {
    const words = Array.from({ length: 2000 }, (_, i) => `w${i}`);
    const kept = dropQueryWords(words, 0.2, 7);
    expect(kept.length / words.length).toBeGreaterThan(0.76);
    expect(kept.length / words.length).toBeLessThan(0.84);
    expect(dropQueryWords(words, 0.2, 7)).toEqual(kept);
    expect(dropQueryWords(words, 0.2, 8)).not.toEqual(kept);
    expect(dropQueryWords(["only"], 0.99, 1)).toEqual(["only"]);
    expect(dropQueryWords(["a", "b"], 0, 1)).toEqual(["a", "b"]);
    expect(() => dropQueryWords(["a"], 1, 1)).toThrow(/\[0, 1\)/);
  });
});
