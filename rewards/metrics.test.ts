import { describe, expect, it } from "vitest";
import {
  abstentionRate,
  answerResultOf,
  hallucinationRate,
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
});
