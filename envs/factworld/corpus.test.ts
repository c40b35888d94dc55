import { describe, expect, it } from "vitest";
import { ClaimVerifier, extractClaims } from "./answers.ts";
import { BOILERPLATE_LINES, generateCorpus, LOW_QUALITY_KINDS } from "./corpus.ts";
import { createTokenizer } from "./tokenizer.ts";
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

  it("adds low-quality lines only when asked, each kind, in the language's own words", () => {
    const plain = generateCorpus(world, { documents: 400 });
    expect(generateCorpus(world, { documents: 400, lowQualityRate: 0 })).toEqual(plain);
    for (const d of plain) expect(d.lines.join(" ")).toBe(d.text);
    const mixed = generateCorpus(world, { documents: 400, lowQualityRate: 0.2 });
    // the same documents, entity by entity; garbled ones untouched
    expect(mixed.map((d) => d.entityId)).toEqual(plain.map((d) => d.entityId));
    expect(mixed.filter((d) => d.noisy)).toEqual(plain.filter((d) => d.noisy));
    const added = mixed.flatMap((d) => (d.lowQuality ?? []).map((l) => ({ ...l, text: d.lines[l.line]!, doc: d })));
    expect(new Set(added.map((a) => a.kind))).toEqual(new Set(LOW_QUALITY_KINDS));
    for (const a of added) {
      expect(a.doc.lines.join(" ")).toBe(a.doc.text);
      if (a.kind === "boilerplate") expect(BOILERPLATE_LINES).toContain(a.text);
      if (a.kind === "repeated") expect(a.doc.lines[a.line - 1]).toBe(a.text);
      if (a.kind === "truncated") expect(a.text.endsWith(".")).toBe(false);
    }
    const tokenizer = createTokenizer(world);
    const unk = tokenizer.specialTokens.unk;
    expect(mixed.some((d) => tokenizer.encode(d.text).includes(unk))).toBe(false);
    // a wrong fact is a well-formed sentence the knowledge base contradicts
    const verifier = new ClaimVerifier(world);
    const wrong = added.filter((a) => a.kind === "wrong-fact");
    expect(wrong.length).toBeGreaterThan(0);
    for (const a of wrong) {
      const claims = verifier.verify(extractClaims(a.text, 0));
      expect(claims.length).toBeGreaterThan(0);
      expect(claims.every((c) => c.verdict !== "supported")).toBe(true);
    }
  });

  it("rejects bad options with a clear error", () => {
    expect(() => generateCorpus(world, { lowQualityRate: -0.1 })).toThrow(/lowQualityRate/);
    expect(() => generateCorpus(world, { noiseRate: 2 })).toThrow(/noiseRate/);
    expect(() => generateCorpus(world, { minSentences: 3, maxSentences: 2 })).toThrow(/minSentences/);
  });
});
