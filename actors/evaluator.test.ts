import { describe, expect, it } from "vitest";
import { factWorld } from "../envs/index.ts";
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
