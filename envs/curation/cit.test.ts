import { describe, expect, it } from "vitest";
import { generateWorld, popularityBucket } from "../factworld/world.ts";
import { citTargetNames, ensembleEmbedding, entityNamesIn, fillTemplates, maxSimilarities } from "./cit.ts";

const v = (...xs: number[]) => Float32Array.from(xs);

describe("CiT's comparison", () => {
  it("ensembleEmbedding: the unit vector along the templates' mean", () => {
    // mean of (1,0) and (0,1) is (0.5,0.5); normalised (1/√2, 1/√2).
    const e = ensembleEmbedding([v(1, 0), v(0, 1)]);
    expect(e[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(e[1]).toBeCloseTo(Math.SQRT1_2, 6);
    // Opposite templates cancel: a zero vector, not NaN.
    expect(Array.from(ensembleEmbedding([v(1, 0), v(-1, 0)]))).toEqual([0, 0]);
    expect(() => ensembleEmbedding([])).toThrow(/vectors: no template/);
    expect(() => ensembleEmbedding([v(1, 0), v(1, 0, 0)])).toThrow(/vectors\[1\] has 3 dimensions/);
  });

  it("maxSimilarities: each item's highest dot product with any entry", () => {
    const entries = [v(1, 0), v(0.6, 0.8)];
    // (0,1)·(1,0)=0, ·(0.6,0.8)=0.8 → 0.8;  (−1,0): −1 and −0.6 → −0.6;  (0.8,0.6): 0.8 and 0.96 → 0.96.
    const sims = maxSimilarities([v(0, 1), v(-1, 0), v(0.8, 0.6)], entries);
    expect(sims[0]).toBeCloseTo(0.8, 6);
    expect(sims[1]).toBeCloseTo(-0.6, 6);
    expect(sims[2]).toBeCloseTo(0.96, 6);
    expect(() => maxSimilarities([v(1, 0)], [])).toThrow(/entries: the metadata list is empty/);
    expect(() => maxSimilarities([v(1, 0, 0)], entries)).toThrow(/items\[0\] has 3 dimensions/);
  });

  it("entityNamesIn and fillTemplates: the tail's names through the templates", () => {
    const world = generateWorld({ size: "tiny" });
    const tail = entityNamesIn(world, "tail");
    expect(tail.length).toBe(world.entities.filter((e) => popularityBucket(e) === "tail").length);
    expect(tail.length).toBeGreaterThan(0);
    expect(tail).not.toContain(entityNamesIn(world, "head")[0]);
    expect(fillTemplates(["{}", "Tell me about {} ."], "Jogu Bofolo")).toEqual([
      "Jogu Bofolo",
      "Tell me about Jogu Bofolo .",
    ]);
  });

  it("citTargetNames: a bucket needs a knowledge base with entities in it; listed names need at least one", () => {
    const world = generateWorld({ size: "tiny" });
    expect(citTargetNames("tail", world, "factworld")).toEqual(entityNamesIn(world, "tail"));
    expect(citTargetNames({ entities: ["Ada", "Bo"] }, undefined, "jsonl")).toEqual(["Ada", "Bo"]);
    expect(() => citTargetNames("tail", undefined, "jsonl")).toThrow(
      /^curation\.cit\.target: tail .* env\.kind jsonl has none/,
    );
    expect(() => citTargetNames({ entities: [] }, world, "factworld")).toThrow(
      /^curation\.cit\.target\.entities: the metadata list is empty/,
    );
    const headless = { ...world, entities: world.entities.filter((e) => popularityBucket(e) !== "head") };
    expect(() => citTargetNames("head", headless, "factworld")).toThrow(/no head entities: the metadata is empty/);
  });
});
