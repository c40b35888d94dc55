import { describe, expect, it } from "vitest";
import { contrastiveScores, DecodingParameterError, guidedLogits } from "./decoding.ts";

describe("guidedLogits (classifier-free guidance)", () => {
  it("computes uncond + scale·(cond − uncond) per token: a worked example", () => {
    // uncond 1 everywhere, cond − uncond = [1, −1, −2]: 1.5 times that, added back.
    expect(guidedLogits([2, 0, -1], Float32Array.from([1, 1, 1]), 1.5)).toEqual([2.5, -0.5, -2]);
  });

  it("scale 1 gives cond exactly, scale 0 gives uncond", () => {
    const cond = [0.1, 0.7, -3.3];
    const uncond = [0.2, -0.4, 1e-9];
    expect(guidedLogits(cond, uncond, 1)).toEqual(cond);
    expect(guidedLogits(cond, uncond, 0)).toEqual(uncond);
  });

  it("refuses a non-finite scale and rows of different lengths", () => {
    for (const scale of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      expect(() => guidedLogits([1], [1], scale)).toThrow(/scale must be finite/);
    expect(() => guidedLogits([1, 2], [1], 2)).toThrow(DecodingParameterError);
    expect(() => guidedLogits([], [], 2)).toThrow(/empty/);
  });
});

describe("contrastiveScores (CD-K)", () => {
  const expert = [0.5, 0.3, 0.15, 0.05];
  const amateur = [0.6, 0.1, 0.1, 0.2];

  it("k = 1: the classic head keeps tokens with p ≥ α·max, scored log pE − log pA", () => {
    // α·max = 0.5·0.5 = 0.25: tokens 0 and 1 are plausible.
    const scores = contrastiveScores(expert, amateur, { alpha: 0.5, k: 1 });
    expect(scores[0]).toBeCloseTo(Math.log(0.5 / 0.6), 12);
    expect(scores[1]).toBeCloseTo(Math.log(3), 12);
    expect(scores.slice(2)).toEqual([Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY]);
    // The contrast prefers token 1, which the expert likes far more than the amateur.
    expect(scores.indexOf(Math.max(...scores))).toBe(1);
  });

  it("k = 2: the threshold is α times the 2nd largest (0.5·0.3 = 0.15), so token 2 (p = 0.15) joins", () => {
    const scores = contrastiveScores(expert, amateur, { alpha: 0.5, k: 2 });
    expect(scores[2]).toBeCloseTo(Math.log(1.5), 12);
    expect(scores[3]).toBe(Number.NEGATIVE_INFINITY);
  });

  it("a confident expert collapses k = 1 to greedy; k = 2 keeps the head open", () => {
    const confident = [0.9, 0.06, 0.03, 0.01];
    const flat = [0.25, 0.25, 0.25, 0.25];
    const k1 = contrastiveScores(confident, flat, { alpha: 0.1, k: 1 });
    expect(k1.filter(Number.isFinite)).toHaveLength(1);
    // α·0.06 = 0.006: every token clears it.
    const k2 = contrastiveScores(confident, flat, { alpha: 0.1, k: 2 });
    expect(k2.filter(Number.isFinite)).toHaveLength(4);
    expect(k2[3]).toBeCloseTo(Math.log(0.01 / 0.25), 12);
  });

  it("α = 1, k = 1 keeps exactly the expert's argmax (ties included)", () => {
    const scores = contrastiveScores([0.4, 0.4, 0.2], [0.5, 0.25, 0.25], { alpha: 1, k: 1 });
    expect(scores.map(Number.isFinite)).toEqual([true, true, false]);
  });

  it("refuses α outside (0, 1], k < 1, k above the vocabulary, a fractional k and mismatched rows", () => {
    for (const alpha of [0, -0.1, 1.01, Number.NaN])
      expect(() => contrastiveScores(expert, amateur, { alpha, k: 1 })).toThrow(/alpha must be in \(0, 1\]/);
    for (const k of [0, -1, 5, 1.5])
      expect(() => contrastiveScores(expert, amateur, { alpha: 0.5, k })).toThrow(
        /k must be an integer from 1 to the vocabulary size 4/,
      );
    expect(() => contrastiveScores(expert, [0.5, 0.5], { alpha: 0.5, k: 1 })).toThrow(DecodingParameterError);
  });
});
