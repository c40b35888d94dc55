import { describe, expect, it } from "vitest";
import { extractClaims } from "./answers.ts";
import { judgeRelevance } from "./judge.ts";
import { generatePrompts } from "./prompts.ts";
import { referenceSentences } from "./reference.ts";
import { generateWorld } from "./world.ts";

const world = generateWorld({ size: "tiny" });
const prompts = generatePrompts(world);

describe("judgeRelevance", () => {
  const prompt = prompts.find((p) => p.suite === "bio" && p.focus.aspects.length >= 3)!;
  const reference = referenceSentences(world, prompt.focus).join(" ");
  const other = world.entities.find((e) => e.id !== prompt.focus.entityId && e.type === "place")!;
  const otherFacts = referenceSentences(world, {
    entityId: other.id,
    entity: other.name,
    aspects: ["place_kind", "region"],
  });

  it("ties an answer identical to the reference", () => {
    const verdict = judgeRelevance(prompt.focus, extractClaims(reference), extractClaims(reference));
    expect(verdict).toMatchObject({ outcome: "tie", value: 0.5 });
  });

  it("worked example: one missing aspect out of n loses, with the reason", () => {
    const partial = referenceSentences(world, { ...prompt.focus, aspects: prompt.focus.aspects.slice(1) }).join(" ");
    const verdict = judgeRelevance(prompt.focus, extractClaims(partial), extractClaims(reference));
    expect(verdict.outcome).toBe("loss");
    const n = prompt.focus.aspects.length;
    expect(verdict.answer.score).toBeCloseTo((n - 1) / n, 9);
    expect(verdict.reasons[0]).toBe(`answer covers ${n - 1}/${n} asked aspects (missing: ${prompt.focus.aspects[0]})`);
  });

  it("adding true facts about an unrelated entity loses to the reference", () => {
    const padded = `${reference} ${otherFacts.join(" ")}`;
    const verdict = judgeRelevance(prompt.focus, extractClaims(padded), extractClaims(reference));
    expect(verdict.outcome).toBe("loss");
    expect(verdict.answer.offEntity).toBe(2);
    expect(verdict.reasons.some((r) => r.includes("2 of") && r.includes("other entities"))).toBe(true);
  });

  it("the reference answer covering more beats a partial reference; an empty answer loses", () => {
    const partial = referenceSentences(world, { ...prompt.focus, aspects: prompt.focus.aspects.slice(0, 1) }).join(" ");
    expect(judgeRelevance(prompt.focus, extractClaims(reference), extractClaims(partial)).outcome).toBe("win");
    expect(judgeRelevance(prompt.focus, [], extractClaims(reference)).outcome).toBe("loss");
  });

  it("counts a work's creator claim as the person's works (inverse relations)", () => {
    const creator = prompts.find((p) => p.suite === "bio" && p.focus.aspects.includes("created"))!;
    const works = world.entities.filter((e) =>
      e.facts.some((f) => f.relation === "creator" && f.object === creator.focus.entity),
    );
    const sentence = `${works[0]!.name} was created by ${creator.focus.entity} .`;
    const verdict = judgeRelevance({ entity: creator.focus.entity, aspects: ["created"] }, extractClaims(sentence), []);
    expect(verdict.answer.covered).toEqual(["created"]);
    expect(verdict.outcome).toBe("win");
  });
});
