import { describe, expect, it } from "vitest";
import { generatePrompts, isAnswerableAndUnambiguous, popularityLog, SUITES } from "./prompts.ts";
import { generateWorld, popularityBucket } from "./world.ts";

describe("generatePrompts", () => {
  const world = generateWorld({ size: "default" });
  const prompts = generatePrompts(world);

  it("builds all six suites, each prompt with its focus and unique id", () => {
    for (const suite of SUITES) expect(prompts.filter((p) => p.suite === suite).length).toBeGreaterThan(10);
    expect(new Set(prompts.map((p) => p.id)).size).toBe(prompts.length);
    for (const p of prompts) {
      expect(p.text).toContain(p.focus.entity);
      expect(world.entities[p.focus.entityId]!.name).toBe(p.focus.entity);
      expect(p.focus.aspects.length).toBeGreaterThan(0);
    }
  });

  it("keeps train and eval disjoint by entity, with about evalFraction of entities in eval", () => {
    const entitiesOf = (split: string) =>
      new Set(prompts.filter((p) => p.split === split).map((p) => p.focus.entityId));
    const [train, evaluation] = [entitiesOf("train"), entitiesOf("eval")];
    expect([...evaluation].filter((id) => train.has(id))).toEqual([]);
    const share = evaluation.size / (train.size + evaluation.size);
    expect(share).toBeGreaterThan(0.12);
    expect(share).toBeLessThan(0.28);
  });

  it("makes FACTORY-like prompts only for tail entities, verified answerable and unambiguous", () => {
    const factory = prompts.filter((p) => p.suite === "factory");
    for (const p of factory) {
      expect(popularityBucket(world.entities[p.focus.entityId]!)).toBe("tail");
      expect(p.focus.aspects.length).toBe(2);
      expect(isAnswerableAndUnambiguous(world, p.focus)).toBe(true);
    }
    const twin = world.entities.find((e) => e.confusableWith !== null)!;
    expect(isAnswerableAndUnambiguous(world, { entityId: twin.id, entity: twin.name, aspects: ["occupation"] })).toBe(
      false,
    );
  });

  it("makes FactBench-Hard-like prompts only for entities with a look-alike", () => {
    for (const p of prompts.filter((q) => q.suite === "factbench-hard"))
      expect(world.entities[p.focus.entityId]!.confusableWith).not.toBeNull();
  });

  it("is deterministic and refuses a bad evalFraction", () => {
    expect(generatePrompts(world)).toEqual(prompts);
    expect(() => generatePrompts(world, { evalFraction: 1.5 })).toThrow(/evalFraction/);
  });
});

describe("popularityLog (a prompt log: popular entities asked more)", () => {
  const world = generateWorld({ size: "tiny" });
  const prompts = generatePrompts(world).filter((p) => p.split === "train");

  it("repeats each prompt 1 + round(scale · popularity) times; the first copy keeps its id", () => {
    expect(popularityLog(world, prompts, 0)).toEqual(prompts);
    const log = popularityLog(world, prompts, 100);
    for (const p of prompts) {
      const copies = log.filter((q) => q.id === p.id || q.id.startsWith(`${p.id}#`));
      expect(copies).toHaveLength(1 + Math.round(100 * world.entities[p.focus.entityId]!.popularity));
      expect(copies[0]).toBe(p);
      expect(copies.every((q) => q.text === p.text)).toBe(true);
    }
    expect(new Set(log.map((p) => p.id)).size).toBe(log.length);
    expect(() => popularityLog(world, prompts, -1)).toThrow(/scale/);
  });
});
