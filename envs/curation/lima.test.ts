import { describe, expect, it } from "vitest";
import { limaSelect, type SftCandidate, wordJaccard } from "./lima.ts";

describe("wordJaccard", () => {
  it("is |A ∩ B| / |A ∪ B| over the word sets", () => {
    expect(wordJaccard("a b c", "b c d")).toBeCloseTo(2 / 4, 12);
    expect(wordJaccard("a a b", "b a")).toBe(1);
    expect(wordJaccard("", "")).toBe(1);
    expect(wordJaccard("a", "")).toBe(0);
  });
});

describe("limaSelect (quality filtered first, then diversity)", () => {
  const c = (entity: string, suite: string, facts: string[], answer = facts.join(" ")): SftCandidate => ({
    entity,
    suite,
    facts,
    answer,
  });
  const candidates = [
    c("X", "bio", ["occupation:poet", "birth_year:1900"]), // 0
    c("X", "longfact", ["occupation:poet", "birth_year:1900"]), // 1: the same answer as 0
    c("Y", "bio", ["occupation:poet"]), // 2
    c("Z", "factory", ["region:north", "place_kind:town", "founded_year:1800"]), // 3
    c("X", "fava", ["birth_year:1900"]), // 4
  ];

  it("drops near-duplicate answers about the same entity, then takes what adds the most first", () => {
    const picked = limaSelect(candidates, 5, 1);
    // one of 0/1 survives; Z's three new facts, entity and suite relations come first (gain 3+1+3+½)
    expect(picked[0]).toBe(3);
    expect(picked).toHaveLength(4);
    expect(picked.filter((i) => i === 0 || i === 1)).toHaveLength(1);
    expect(new Set(picked)).toEqual(new Set([3, 2, 4, picked.find((i) => i <= 1)!]));
    expect(limaSelect(candidates, 2, 1)).toEqual(picked.slice(0, 2));
  });

  it("is a function of the seed and names bad arguments", () => {
    expect(limaSelect(candidates, 5, 7)).toEqual(limaSelect(candidates, 5, 7));
    expect(limaSelect(candidates, 0, 1)).toEqual([]);
    expect(() => limaSelect(candidates, -1, 1)).toThrow(/^count: -1/);
    expect(() => limaSelect(candidates, 1, 1, 0)).toThrow(/^duplicate: 0/);
  });
});
