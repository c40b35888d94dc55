import { describe, expect, it } from "vitest";
import { factWorld, selectSuites } from "../envs/index.ts";
import { evaluationSample } from "./environment.ts";
import { evaluationModules } from "./evaluator.ts";

const factworld = factWorld({ size: "tiny", promptSeed: 1, evalFraction: 0.2 });

describe("evaluationModules", () => {
  it("adds the measured built-ins an experiment does not train with, at weight 0", () => {
    const precisionOnly = [
      { name: "format", weight: 1, options: {} },
      { name: "precision", weight: 1, options: {} },
    ];
    expect(evaluationModules(precisionOnly, factworld)).toEqual([
      ...precisionOnly,
      { name: "relevance", weight: 0, options: {} },
    ]);
  });

  it("leaves a config that already has them unchanged", () => {
    const full = [
      { name: "format", weight: 1, options: {} },
      { name: "precision", weight: 1, options: {} },
      { name: "detail", weight: 0.1, options: {} },
      { name: "relevance", weight: 0.5, options: {} },
    ];
    expect(evaluationModules(full, factworld)).toEqual(full);
  });

  it("adds nothing for an environment without a knowledge base (the built-ins could not score it)", () => {
    const own = [{ name: "exact", weight: 1, options: {} }];
    expect(evaluationModules(own, {})).toEqual(own);
  });
});

describe("the suites evaluated (evaluation.suites)", () => {
  it("are every suite by default, else the named ones in the environment's order, and only theirs are sampled", () => {
    expect(selectSuites(factworld)).toEqual(factworld.suites);
    const named = selectSuites(factworld, ["fava", "bio"]);
    expect(named).toEqual(["bio", "fava"]);
    const sample = evaluationSample(factworld.eval, 5, 1234, named);
    expect(new Set(sample.map((p) => p.suite))).toEqual(new Set(["bio", "fava"]));
    // The same prompts an evaluation of every suite picks for these two: results stay comparable.
    const all = evaluationSample(factworld.eval, 5, 1234, factworld.suites);
    expect(sample).toEqual(all.filter((p) => named.includes(p.suite)));
  });

  it("refuse a name the environment has no suite of, naming it and the suites it has", () => {
    expect(() => selectSuites(factworld, ["bio", "factworld"])).toThrow(
      'environment factworld: no suite "factworld" (its suites: bio, longfact, factory, fava, alpacafact, factbench-hard)',
    );
  });
});
