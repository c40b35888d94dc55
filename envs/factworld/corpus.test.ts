import { describe, expect, it } from "vitest";
import { generateCorpus } from "./corpus.ts";
import { generateWorld, popularityBucket } from "./world.ts";

describe("generateCorpus", () => {
  const world = generateWorld({ size: "default" });

  it("mentions entities in proportion to popularity (head far more than tail)", () => {
    const docs = generateCorpus(world, { documents: 20_000, noiseRate: 0 });
    const perBucket = { head: 0, torso: 0, tail: 0 };
    for (const d of docs) perBucket[popularityBucket(world.entities[d.entityId]!)]++;
    const headShare = world.entities
      .filter((e) => popularityBucket(e) === "head")
      .reduce((a, e) => a + e.popularity, 0);
    expect(perBucket.head / docs.length).toBeCloseTo(headShare, 1);
    // Per entity, the average head entity gets > 20× the documents of the average tail entity.
    expect(perBucket.head / 40 / (perBucket.tail / 240)).toBeGreaterThan(20);
  });

  it("writes only true facts about the document's entity when not garbled, with varied templates", () => {
    const docs = generateCorpus(world, { documents: 500, noiseRate: 0 });
    const sentences = new Set<string>();
    for (const d of docs) {
      const entity = world.entities[d.entityId]!;
      expect(d.text.startsWith(entity.name)).toBe(true);
      for (const s of d.text.split(" . ")) sentences.add(s.replace(entity.name, "{S}").replace(/\d{4}/, "{Y}"));
      for (const f of entity.facts) expect(typeof f.object).toBe("string");
    }
    expect(sentences.size).toBeGreaterThan(100);
  });

  it("garbles about noiseRate of documents and marks them", () => {
    const docs = generateCorpus(world, { documents: 4000, noiseRate: 0.1 });
    const noisy = docs.filter((d) => d.noisy).length / docs.length;
    expect(noisy).toBeGreaterThan(0.08);
    expect(noisy).toBeLessThan(0.12);
    expect(generateCorpus(world, { documents: 300, noiseRate: 0 }).some((d) => d.noisy)).toBe(false);
  });

  it("rejects bad options with a clear error", () => {
    expect(() => generateCorpus(world, { noiseRate: 2 })).toThrow(/noiseRate/);
    expect(() => generateCorpus(world, { minSentences: 3, maxSentences: 2 })).toThrow(/minSentences/);
  });
});
