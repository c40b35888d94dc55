import { describe, expect, it } from "vitest";
import { evaluationModules } from "./evaluator.ts";

describe("evaluationModules", () => {
  it("adds the measured built-ins an experiment does not train with, at weight 0", () => {
    const precisionOnly = [
      { name: "format", weight: 1, options: {} },
      { name: "precision", weight: 1, options: {} },
    ];
    expect(evaluationModules(precisionOnly)).toEqual([...precisionOnly, { name: "relevance", weight: 0, options: {} }]);
  });

  it("leaves a config that already has them unchanged", () => {
    const full = [
      { name: "format", weight: 1, options: {} },
      { name: "precision", weight: 1, options: {} },
      { name: "detail", weight: 0.1, options: {} },
      { name: "relevance", weight: 0.5, options: {} },
    ];
    expect(evaluationModules(full)).toEqual(full);
  });
});
