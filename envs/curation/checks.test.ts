import { describe, expect, it } from "vitest";
import { generatePrompts, isAnswerableAndUnambiguous } from "../factworld/prompts.ts";
import { generateWorld } from "../factworld/world.ts";
import { checkPrompt, checkPrompts } from "./checks.ts";

// The tiny world (seed 7): Jogu Bofolo (musician, born 1929 in Povajo, no employer, no look-alike);
// Jogu Fefi (carpenter) and his look-alike Jogu Feze (weaver); Jijipo, a town in the west (2 facts).
const world = generateWorld({ size: "tiny" });
const check = (text: string, minFacts = 2) => checkPrompt(world, text, { minFacts });

describe("checkPrompt (FACTORY's checks, the knowledge base as verifier)", () => {
  it("passes a fact-seeking, unambiguous, answerable prompt, with the kinds it asks", () => {
    expect(check("Tell me about Jogu Bofolo .")).toEqual({
      ok: true,
      entity: "Jogu Bofolo",
      aspects: ["birth_year", "birthplace", "occupation"],
      facts: 3,
    });
    expect(check("What are the occupation and the place of birth of Jogu Bofolo ?")).toEqual({
      ok: true,
      entity: "Jogu Bofolo",
      aspects: ["birthplace", "occupation"],
      facts: 2,
    });
  });

  it("is not fact-seeking without a request, or when it asks for fiction or opinion", () => {
    expect(check("Jogu Bofolo .")).toMatchObject({ ok: false, reason: "not-fact-seeking" });
    expect(check("Write a poem about Jogu Bofolo .")).toMatchObject({
      ok: false,
      reason: "not-fact-seeking",
      detail: 'asks for fiction or opinion ("write a poem")',
    });
    expect(check("What do you think of Jogu Bofolo ?")).toMatchObject({ reason: "not-fact-seeking" });
    expect(check("What is the favourite song of Jogu Bofolo ?")).toMatchObject({ reason: "not-fact-seeking" });
    // "poem" as an answer, not a request for one, is fine
    expect(check("Describe the work Sijuro .")).toMatchObject({ ok: true, entity: "Sijuro" });
  });

  it("asks about no entity of the knowledge base", () => {
    expect(check("Tell me about Zuzu Mimi .")).toEqual({
      ok: false,
      reason: "unknown-entity",
      detail: "names no entity of the knowledge base",
    });
  });

  it("is ambiguous when it names unrelated entities, or a look-alike it does not tell apart", () => {
    expect(check("Tell me about Jogu Bofolo and Gupu Dive .")).toMatchObject({
      reason: "ambiguous",
      detail: "names Jogu Bofolo, Gupu Dive, which no fact links: which one is asked about?",
    });
    // a linked entity (his birthplace) is context, not a second subject
    expect(check("Tell me about Jogu Bofolo , born in Povajo .")).toMatchObject({ ok: true, entity: "Jogu Bofolo" });
    expect(check("Tell me a bio of Jogu Fefi .")).toMatchObject({
      reason: "ambiguous",
      detail: "Jogu Fefi has a look-alike (Jogu Feze) and the prompt says nothing that tells them apart",
    });
    // the carpenter, not the weaver: resolved
    expect(check("Tell me a bio of Jogu Fefi , the carpenter .")).toMatchObject({ ok: true, entity: "Jogu Fefi" });
  });

  it("is unanswerable when a kind asked by name is unknown, or there are fewer than minFacts facts", () => {
    expect(check("What is the employer of Jogu Bofolo ?")).toEqual({
      ok: false,
      reason: "unanswerable",
      detail: "the knowledge base has no employer of Jogu Bofolo",
    });
    expect(check("Describe the place Jijipo .", 2)).toMatchObject({ ok: true, facts: 2 });
    expect(check("Describe the place Jijipo .", 3)).toEqual({
      ok: false,
      reason: "unanswerable",
      detail: "Jijipo has 2 facts of the asked kinds, fewer than 3",
    });
    expect(check("What is the occupation of Jogu Bofolo ?", 2)).toMatchObject({ reason: "unanswerable" });
  });

  it("names a bad minFacts", () => {
    expect(() => check("Tell me about Jogu Bofolo .", 0)).toThrow(/^minFacts: 0/);
    expect(() => check("Tell me about Jogu Bofolo .", 1.5)).toThrow(/^minFacts: 1.5/);
  });
});

describe("checkPrompts over FactWorld's generated suites", () => {
  const prompts = generatePrompts(world);

  it("reads from the text alone what the generator asked: the entity and its aspects", () => {
    for (const p of prompts.filter((q) => world.entities[q.focus.entityId]!.confusableWith === null)) {
      const result = checkPrompt(world, p.text, { minFacts: 1 });
      expect(result, p.text).toMatchObject({ ok: true, entity: p.focus.entity });
      if (result.ok) expect(new Set(result.aspects), p.text).toEqual(new Set(p.focus.aspects));
    }
  });

  it("passes every FACTORY prompt (verified answerable and unambiguous when generated)", () => {
    const factory = prompts.filter((p) => p.suite === "factory");
    expect(factory.length).toBeGreaterThan(0);
    expect(factory.every((p) => isAnswerableAndUnambiguous(world, p.focus))).toBe(true);
    expect(checkPrompts(world, factory, { minFacts: 2 }).rejected).toEqual([]);
  });

  it("counts rejections by reason and keeps the passing prompts in order", () => {
    const report = checkPrompts(world, prompts, { minFacts: 2 });
    expect(report.passed.length + report.rejected.length).toBe(prompts.length);
    expect(Object.values(report.counts).reduce((a, b) => a + b, 0)).toBe(report.rejected.length);
    // every factbench-hard prompt is about an entity with a look-alike, and says nothing to tell them apart
    const hard = prompts.filter((p) => p.suite === "factbench-hard").length;
    expect(report.rejected.filter((r) => r.prompt.suite === "factbench-hard").length).toBe(hard);
    expect(report.counts["not-fact-seeking"]).toBe(0);
    expect(report.passed).toEqual(prompts.filter((p) => report.passed.includes(p)));
  });
});
