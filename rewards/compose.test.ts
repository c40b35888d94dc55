import { describe, expect, it } from "vitest";
import { composeReward } from "./compose.ts";
import type { ItemResult } from "./module.ts";

const ok = (components: Record<string, number>): ItemResult => ({ ok: true, components });
const terms = [
  { name: "format", weight: 1 },
  { name: "precision", weight: 1 },
  { name: "detail", weight: 0.1 },
  { name: "relevance", weight: 0.5 },
];

describe("composeReward", () => {
  it("worked example: r = P + λ·D + μ·R for a well-formed answer", () => {
    const score = composeReward(terms, [
      ok({ format: 0, malformed: 0 }),
      ok({ precision: 0.75, supported: 3 }),
      ok({ detail: Math.log(4) }),
      ok({ relevance: 1 }),
    ]);
    expect(score.reward).toBeCloseTo(0.75 + 0.1 * Math.log(4) + 0.5, 12);
    expect(score.malformed).toBe(false);
    expect(score.components).toEqual({
      format: 0,
      "format.malformed": 0,
      precision: 0.75,
      "precision.supported": 3,
      detail: Math.log(4),
      relevance: 1,
    });
  });

  it("a malformed answer gets the format penalty (−1) whatever the other terms say", () => {
    const score = composeReward(terms, [
      ok({ format: -1, malformed: 1 }),
      ok({ precision: 1 }),
      ok({ detail: 2 }),
      ok({ relevance: 1 }),
    ]);
    expect(score).toMatchObject({ reward: -1, malformed: true });
  });

  it("a failed term contributes nothing and is listed", () => {
    const failure = { module: "relevance", kind: "timeout", message: "no answer within 10 ms" } as const;
    const score = composeReward(terms, [
      ok({ format: 0, malformed: 0 }),
      ok({ precision: 0.5 }),
      ok({ detail: 1 }),
      { ok: false, failure },
    ]);
    expect(score.reward).toBeCloseTo(0.6, 12);
    expect(score.failures).toEqual([failure]);
  });

  it("ablations are config changes: precision only", () => {
    expect(composeReward([{ name: "precision", weight: 1 }], [ok({ precision: 0.25 })]).reward).toBe(0.25);
  });
});
