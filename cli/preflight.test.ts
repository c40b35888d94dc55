import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeConfig } from "../configs/index.ts";
import { makeEnvironment } from "../envs/index.ts";
import { curationProblem } from "./preflight.ts";

const curation = (fields: Record<string, unknown>) =>
  Either.getOrThrow(decodeConfig({ experiment: "preflight", curation: fields })).curation;

describe("curationProblem: what the curation settings need of the environment", () => {
  const noKnowledge = {
    kind: "jsonl",
    description: "",
    modalities: ["text" as const],
    train: [],
    eval: [],
    suites: [],
  };

  it("refuses balancing or enforced checks without a knowledge base, naming the field", () => {
    expect(curationProblem(noKnowledge, curation({ strategy: "balanced" }))).toMatch(
      /^curation\.strategy: balanced balances over the environment's knowledge base .*env\.kind jsonl has none$/,
    );
    expect(curationProblem(noKnowledge, curation({ checks: "enforce" }))).toMatch(/^curation\.checks: enforce/);
    // the default (report) skips the checks where there is nothing to check against
    expect(curationProblem(noKnowledge, curation({}))).toBeUndefined();
  });

  it("refuses enforced checks that leave no training prompt", async () => {
    const env = await makeEnvironment({ kind: "factworld", size: "tiny" });
    expect(curationProblem(env, curation({ strategy: "balanced", checks: "enforce" }))).toBeUndefined();
    expect(curationProblem(env, curation({ checks: "enforce", minFacts: 50 }))).toMatch(
      /^curation\.checks: enforce rejects every one of the \d+ training prompts/,
    );
  });
});
