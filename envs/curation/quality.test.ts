import { describe, expect, it } from "vitest";
import { generateCorpus } from "../factworld/corpus.ts";
import { generateWorld } from "../factworld/world.ts";
import {
  bigramModel,
  documentScore,
  filterWeights,
  LINE_FILTERS,
  type LineFilter,
  lineScores,
  perplexity,
  pruneLowest,
} from "./quality.ts";

const passes = (name: string, line: string, earlier: string[] = []) =>
  LINE_FILTERS.find((f) => f.name === name)!.passes(line, earlier);

describe("the line filters", () => {
  it("each judges one surface property of a line", () => {
    expect(passes("terminal-punctuation", "Jogu Fefi was a carpenter .")).toBe(true);
    expect(passes("terminal-punctuation", "Jogu Fefi was")).toBe(false);
    expect(passes("unique-in-document", "A b c .", ["A b c ."])).toBe(false);
    expect(passes("unique-in-document", "A b c .", ["A b d ."])).toBe(true);
    expect(passes("at-least-4-words", "Govu is .")).toBe(false);
    expect(passes("no-boilerplate-opener", "Tell me about the works .")).toBe(false);
    expect(passes("no-boilerplate-opener", "Govu is a bank .")).toBe(true);
    // 6 words, 3 distinct: 0.5 < 0.6
    expect(passes("few-repeated-words", "Govu Govu Govu bank bank is")).toBe(false);
  });
});

describe("the reference model and the weights", () => {
  // a b c . seen twice; vocabulary {a, b, c, .} + unknown = 5; k = 1
  const model = bigramModel(["a b c .", "a b c ."], 1);

  it("gives add-k bigram log-probabilities and their perplexity", () => {
    // p(a|<s>) = (2+1)/(2+5) = 3/7, p(b|a) = 3/7, p(x|b) = 1/7
    const lp = model.logProbs("a b x");
    expect(lp.map(Math.exp)).toEqual([3 / 7, 3 / 7, 1 / 7].map((p) => expect.closeTo(p, 12)));
    expect(perplexity(model, ["a b x"])).toBeCloseTo(Math.exp(-(Math.log(3 / 7) * 2 + Math.log(1 / 7)) / 3), 12);
    expect(perplexity(model, [])).toBe(1);
    expect(() => bigramModel([], 0)).toThrow(/^k: 0/);
  });

  it("weights a filter by how much keeping its passing lines lowers perplexity, never below 0", () => {
    const endsWithDot: LineFilter = { name: "dot", passes: (line) => line.endsWith(".") };
    const always: LineFilter = { name: "all", passes: () => true };
    const docs = [["a b c .", "x y"]];
    const base = perplexity(model, docs[0]!);
    const weights = filterWeights(docs, model, [endsWithDot, always]);
    expect(weights[0]).toBeCloseTo((base - perplexity(model, ["a b c ."])) / base, 12);
    expect(weights[1]).toBe(0);
  });
});

describe("scores and pruning", () => {
  const dot: LineFilter = { name: "dot", passes: (line) => line.endsWith(".") };
  const long: LineFilter = { name: "long", passes: (line) => line.split(" ").length >= 4 };

  it("scores a line by the weighted share of filters it passes, a document by its words", () => {
    // weights 3 and 1: "a b c ." passes both (1), "a b" neither (0), "a b c d" only long (1/4)
    expect(lineScores(["a b c .", "a b", "a b c d"], [3, 1], [dot, long])).toEqual([1, 0, 0.25]);
    // words 4, 2, 4: (4·1 + 2·0 + 4·0.25) / 10 = 0.5
    expect(documentScore(["a b c .", "a b", "a b c d"], [3, 1], [dot, long])).toBeCloseTo(0.5, 12);
    expect(lineScores(["a b"], [0, 0], [dot, long])).toEqual([1]);
    expect(() => lineScores(["a"], [1], [dot, long])).toThrow(/^weights: 1 weights for 2 filters/);
    expect(() => lineScores(["a"], [1, -1], [dot, long])).toThrow(/^weights: weights\[1\] is -1/);
  });

  it("prunes the round(q · n) lowest scores, the earlier first among equals, and keeps the rest in order", () => {
    expect(pruneLowest([0.9, 0.2, 0.5, 0.2, 1], 0.4)).toEqual([0, 2, 4]);
    expect(pruneLowest([0.5, 0.5, 0.5], 0.34)).toEqual([1, 2]);
    expect(pruneLowest([0.3], 0)).toEqual([0]);
    expect(() => pruneLowest([0.3], 1.5)).toThrow(/^q: 1.5/);
    expect(() => pruneLowest([Number.NaN], 0.5)).toThrow(/^scores: scores\[0\] is NaN/);
  });

  it("finds FactWorld's low-quality lines: what it prunes first holds them", () => {
    const world = generateWorld({ size: "tiny" });
    const docs = generateCorpus(world, { lowQualityRate: 0.15, documents: 600 });
    const model = bigramModel(
      generateCorpus(world, { seed: 99, documents: 300, noiseRate: 0 }).flatMap((d) => d.lines),
    );
    const weights = filterWeights(
      docs.map((d) => d.lines),
      model,
    );
    const kept = new Set(
      pruneLowest(
        docs.map((d) => documentScore(d.lines, weights)),
        0.2,
      ),
    );
    const pruned = docs.filter((d) => !kept.has(d.id));
    const bad = (d: (typeof docs)[number]) => d.noisy || (d.lowQuality?.length ?? 0) > 0;
    expect(pruned.filter(bad).length / pruned.length).toBeGreaterThan(0.9);
    const badShare = docs.filter(bad).length / docs.length;
    expect(badShare).toBeLessThan(0.6);
  });
});
