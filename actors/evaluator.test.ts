import { describe, expect, it } from "vitest";
import { factWorld, selectSuites, valuesOf } from "../envs/index.ts";
import { evaluationSample } from "./environment.ts";
import { claimLines } from "./evaluation.ts";
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

describe("claimLines (factrl eval's VeriScore-style JSONL)", () => {
  it("lists each claim with its verdict, and none for a malformed answer", () => {
    const world = factworld.knowledge!;
    const person = world.entities.find((e) => e.type === "person" && valuesOf(e, "birthplace").length > 0)!;
    const [birthplace] = valuesOf(person, "birthplace");
    const wrongPlace = world.entities.find((e) => e.type === "place" && e.name !== birthplace)!.name;
    const prompt = { ...factworld.eval[0]!, id: "p1", text: `Tell me about ${person.name} .` };
    const lines = claimLines(
      world,
      [prompt],
      [
        {
          promptId: "p1",
          answer: `<think> x </think> ${person.name} was born in ${birthplace}. ${person.name} was born in ${wrongPlace} .`,
        },
        { promptId: "p1", answer: `${person.name} was born in ${birthplace} .` },
      ],
    ).map((line) => JSON.parse(line));
    expect(lines[0]).toMatchObject({
      prompt_id: "p1",
      question: `Tell me about ${person.name} .`,
      well_formed: true,
      claim_list: [`${person.name} birthplace ${birthplace}`, `${person.name} birthplace ${wrongPlace}`],
      claim_verification_result: [
        { claim: `${person.name} birthplace ${birthplace}`, verification_result: "supported" },
        { claim: `${person.name} birthplace ${wrongPlace}`, verification_result: "contradicted" },
      ],
    });
    expect(lines[1]).toMatchObject({ well_formed: false, claim_list: [], claim_verification_result: [] });
  });
});
