import { describe, expect, it } from "vitest";
import { createRng } from "../factworld/random.ts";
import {
  balanceProbabilities,
  CurationArgumentError,
  citSelect,
  keepProbability,
  substringMatches,
  tailShare,
  thresholdForTailShare,
} from "./balance.ts";

describe("substringMatches (MetaCLIP's substr_matching)", () => {
  const entries = ["red", "Jogu Fefi", "hat", "x.y", "Quell"];

  it("matches whole entries between spaces, with punctuation split off and the ends padded", () => {
    expect(substringMatches("Jogu Fefi wears a red hat.", entries)).toEqual([0, 1, 2]);
    expect(substringMatches("Quell", entries)).toEqual([4]);
    expect(substringMatches("born in Quell,in 1907", entries)).toEqual([4]);
    expect(substringMatches("a\tred\nhat\r", entries)).toEqual([0, 2]);
  });

  it("does not match inside words, across case, or an entry whose punctuation was spaced out", () => {
    expect(substringMatches("reddish hats", entries)).toEqual([]);
    expect(substringMatches("RED Hat", entries)).toEqual([]);
    expect(substringMatches("see x.y here", entries)).toEqual([]); // x.y becomes "x . y"
    expect(substringMatches("JoguFefi", entries)).toEqual([]);
  });

  it("refuses an empty metadata list", () => {
    expect(() => substringMatches("text", [])).toThrow(CurationArgumentError);
    expect(() => substringMatches("text", [])).toThrow(/entries/);
  });
});

describe("balancing", () => {
  it("keeps an entry's items with min(1, t / count); entries under t always", () => {
    expect(balanceProbabilities([1, 10, 100, 0], 20)).toEqual([1, 1, 0.2, 1]);
    expect(balanceProbabilities([20], 20)).toEqual([1]);
  });

  it("keeps an item when any of its entries does: 1 − Π(1 − p)", () => {
    expect(keepProbability([0.5, 0.5])).toBeCloseTo(0.75, 12);
    expect(keepProbability([0.2, 1])).toBe(1);
    expect(keepProbability([])).toBe(0);
  });

  it("measures the tail's share of matches and picks t for a target share", () => {
    const counts = [1, 2, 3, 4, 90];
    expect(tailShare(counts, 4)).toBeCloseTo(6 / 100, 12);
    expect(tailShare(counts, 5)).toBeCloseTo(10 / 100, 12);
    // running shares: .01 .03 .06 .10 1.0 → closest to .05 is .06 (count 3)
    expect(thresholdForTailShare(counts, 0.05)).toBe(3);
    // running shares .125 .25 .5 1 (exact in binary): .375 is as close to .25 as to .5 — the first wins
    expect(thresholdForTailShare([4, 1, 2, 1], 0.375)).toBe(1);
    expect(thresholdForTailShare(counts, 1)).toBe(90);
  });

  it("samples items at the rate keepProbability says (Monte Carlo)", () => {
    const counts = [400, 50, 5];
    const p = balanceProbabilities(counts, 40);
    const rng = createRng(3);
    const cases: { entries: number[]; expected: number }[] = [
      { entries: [0], expected: keepProbability([p[0]!]) },
      { entries: [0, 1], expected: keepProbability([p[0]!, p[1]!]) },
      { entries: [2], expected: 1 },
    ];
    for (const { entries, expected } of cases) {
      let kept = 0;
      const trials = 40_000;
      for (let i = 0; i < trials; i++) if (entries.some((e) => rng.next() < p[e]!)) kept += 1;
      expect(Math.abs(kept / trials - expected)).toBeLessThan(0.01);
    }
  });

  it("names the argument that is wrong", () => {
    expect(() => balanceProbabilities([1, -2], 3)).toThrow(/counts: counts\[1\] is -2/);
    expect(() => balanceProbabilities([1, Number.NaN], 3)).toThrow(/counts\[1\] is NaN/);
    expect(() => balanceProbabilities([1], 0)).toThrow(/^t: 0/);
    expect(() => tailShare([], 3)).toThrow(/counts: the metadata list is empty/);
    expect(() => thresholdForTailShare([1, 2], 1.5)).toThrow(/^p: 1.5/);
    expect(() => thresholdForTailShare([1, 2], -0.1)).toThrow(/^p: -0.1/);
    expect(() => keepProbability([0.5, 2])).toThrow(/entryProbabilities\[1\] is 2/);
  });
});

describe("citSelect (CiT)", () => {
  it("keeps the items strictly above the threshold, in index order", () => {
    expect(citSelect([0.1, 0.5, 0.3, 0.9], 0.3, 0.25)).toEqual([1, 3]);
  });

  it("falls back to the top ⌊minRatio · n⌋ by similarity when too few pass, returned by index", () => {
    // only index 3 passes (1 < 0.5 · 4): the top 2 are 3 (0.9) and 1 (0.5)
    expect(citSelect([0.1, 0.5, 0.3, 0.9], 0.6, 0.5)).toEqual([1, 3]);
    // ties go to the lower index
    expect(citSelect([0.2, 0.2, 0.2], 0.5, 0.5)).toEqual([0]);
  });

  it("refuses a threshold outside [−1, 1], a minRatio outside (0, 1] and non-finite similarities", () => {
    expect(() => citSelect([0.1], 1.5, 0.5)).toThrow(/^threshold/);
    expect(() => citSelect([0.1], 0.5, 0)).toThrow(/^minRatio/);
    expect(() => citSelect([0.1], 0.5, 1.2)).toThrow(/^minRatio/);
    expect(() => citSelect([0.1, Number.NaN], 0.5, 0.5)).toThrow(/maxSimilarities\[1\]/);
  });
});
