import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeConfig } from "../configs/index.ts";
import { makeEnvironment } from "../envs/index.ts";
import { KNOWLEDGE_BASE_MODULES } from "../rewards/index.ts";
import { curationProblem, knowledgeRewardProblems } from "./preflight.ts";

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

  it("refuses CiT's tail / head target without a knowledge base, naming the field; listed names need none", () => {
    expect(curationProblem(noKnowledge, curation({ strategy: "cit", cit: { target: "tail" } }))).toMatch(
      /^curation\.cit\.target: tail selects for the knowledge base's tail entities; env\.kind jsonl has none/,
    );
    expect(
      curationProblem(noKnowledge, curation({ strategy: "cit", cit: { target: { entities: ["Ada Lovelace"] } } })),
    ).toBeUndefined();
  });

  it("refuses enforced checks that leave no training prompt", async () => {
    const env = await makeEnvironment({ kind: "factworld", size: "tiny" });
    expect(curationProblem(env, curation({ strategy: "balanced", checks: "enforce" }))).toBeUndefined();
    expect(curationProblem(env, curation({ checks: "enforce", minFacts: 50 }))).toMatch(
      /^curation\.checks: enforce rejects every one of the \d+ training prompts/,
    );
  });
});

describe("knowledgeRewardProblems: the built-ins that need a knowledge base", () => {
  const modules = (list: unknown[]) =>
    Either.getOrThrow(decodeConfig({ experiment: "preflight", rewards: { modules: list } })).rewards.modules;
  const jsonl = { kind: "jsonl", description: "", modalities: ["text" as const], train: [], eval: [], suites: [] };
  const config = modules([
    { name: "format", weight: 1 },
    { name: "precision", weight: 1 },
    { http: { url: "http://127.0.0.1:9/v1", model: "judge" }, weight: 1 },
    { name: "relevance", weight: 0.5 },
  ]);

  it("refuses precision, detail and relevance without one, naming each field; format and http: judges pass", () => {
    expect(knowledgeRewardProblems(jsonl, config, KNOWLEDGE_BASE_MODULES)).toEqual([
      expect.stringMatching(
        /^rewards\.modules\[1\]: precision verifies claims against the environment's knowledge base .*env\.kind jsonl has none — judge with an http: module/,
      ),
      expect.stringMatching(/^rewards\.modules\[3\]: relevance verifies claims/),
    ]);
  });

  it("accepts them with a knowledge base, or when the environment brings its own module of that name", async () => {
    expect(
      knowledgeRewardProblems(
        await makeEnvironment({ kind: "factworld", size: "tiny" }),
        config,
        KNOWLEDGE_BASE_MODULES,
      ),
    ).toEqual([]);
    const own = { ...jsonl, rewardModules: { precision: () => ({}) as never, relevance: () => ({}) as never } };
    expect(knowledgeRewardProblems(own, config, KNOWLEDGE_BASE_MODULES)).toEqual([]);
  });
});
