import { describe, expect, it } from "vitest";
import {
  abstentionRate,
  answerPrecisions,
  answerResultOf,
  hallucinationRate,
  macroAverageStandardError,
  meanEstimate,
  meanSupported,
  relevanceWinRate,
  summarize,
  summarizeBy,
} from "./metrics.ts";

const results = [
  { malformed: false, claims: 4, supported: 3, relevance: 1, length: 20 },
  { malformed: false, claims: 2, supported: 1, relevance: 0.5, length: 10 },
  { malformed: false, claims: 0, supported: 0, relevance: 0, length: 3 },
  { malformed: true, claims: 0, supported: 0, length: 7 },
];

describe("metrics", () => {
  it("worked example", () => {
    // precisions over answers with claims: 0.75 and 0.5 → mean 0.625 → hallucination 0.375.
    expect(hallucinationRate(results)).toBeCloseTo(0.375, 12);
    expect(meanSupported(results)).toBeCloseTo(4 / 3, 12);
    expect(relevanceWinRate(results)).toBeCloseTo(0.5, 12);
    expect(abstentionRate(results)).toBeCloseTo(1 / 3, 12);
    expect(summarize(results)).toMatchObject({ answers: 4, malformedRate: 0.25, meanLength: 10 });
  });

  it("summarizes per group", () => {
    const byBucket = summarizeBy(
      results.map((r, i) => ({ ...r, bucket: i < 2 ? "head" : "tail" })),
      (r) => r.bucket,
    );
    expect([...byBucket.keys()]).toEqual(["head", "tail"]);
    expect(byBucket.get("head")!.hallucinationRate).toBeCloseTo(0.375, 12);
    expect(byBucket.get("tail")).toMatchObject({ answers: 2, hallucinationRate: null, abstentionRate: 1 });
  });

  it("says null when there is nothing to average", () => {
    expect(summarize([])).toMatchObject({ hallucinationRate: null, detail: null, relevanceWinRate: null });
    expect(hallucinationRate([results[2]!])).toBeNull();
  });

  it("reads the built-ins' composed components", () => {
    const score = {
      reward: 1,
      malformed: false,
      failures: [],
      components: { precision: 0.5, "precision.claims": 4, "precision.supported": 2, relevance: 0.5 },
    };
    expect(answerResultOf(score, 12)).toEqual({
      malformed: false,
      claims: 4,
      supported: 2,
      relevance: 0.5,
      length: 12,
    });
  });

  it("standard errors: of a mean, and of a mean over groups (worked example)", () => {
    // The precisions hallucination averages: 3/4 and 1/2 (no claim and malformed answers left out).
    expect(answerPrecisions(results)).toEqual([0.75, 0.5]);
    // [0, 1]: mean ½, s² = ½ (n − 1), se = √(½ / 2) = ½. One value: error 0.
    expect(meanEstimate([0, 1])).toEqual({ mean: 0.5, se: 0.5, n: 2 });
    expect(meanEstimate([0.3])).toEqual({ mean: 0.3, se: 0, n: 1 });
    expect(meanEstimate([])).toBeNull();
    // Groups [0, 1] (se ½) and [1, 1, 1] (se 0): √(¼ + 0) / 2 = ¼.
    expect(
      macroAverageStandardError([
        [0, 1],
        [1, 1, 1],
      ]),
    ).toBeCloseTo(0.25, 12);
    // Four groups of the same spread: the macro average's error halves against one group's.
    expect(
      macroAverageStandardError([
        [0, 1],
        [0, 1],
        [0, 1],
        [0, 1],
      ]),
    ).toBeCloseTo(0.25, 12);
    expect(macroAverageStandardError([[0, 1], []])).toBeNull();
    expect(macroAverageStandardError([])).toBeNull();
  });
});
