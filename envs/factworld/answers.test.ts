import { describe, expect, it } from "vitest";
import { analyzeAnswer, ClaimVerifier, extractClaims, parseAnswer } from "./answers.ts";
import { generateCorpus } from "./corpus.ts";
import { TEMPLATES } from "./grammar.ts";
import { generatePrompts } from "./prompts.ts";
import { renderReference } from "./reference.ts";
import { relationInfo } from "./schema.ts";
import { generateWorld, valuesOf } from "./world.ts";

const world = generateWorld({ size: "tiny" });
const verifier = new ClaimVerifier(world);
const person = world.entities.find((e) => e.type === "person" && valuesOf(e, "birthplace").length > 0)!;
const [birthplace] = valuesOf(person, "birthplace");
const [year] = valuesOf(person, "birth_year");

describe("parseAnswer", () => {
  it("splits reasoning from the answer part", () => {
    const parsed = parseAnswer(`<think> The question is about X . </think> ${person.name} is well known .`);
    expect(parsed).toMatchObject({
      ok: true,
      reasoning: "The question is about X .",
      answer: ` ${person.name} is well known .`,
    });
  });

  it.each([
    ["no think", "X was a poet ."],
    ["no close", "<think> hmm X was a poet ."],
    ["text before think", "well <think> a </think> b ."],
    ["think twice", "<think> a <think> b </think> c ."],
    ["special token in answer", "<think> a </think> b </think> c ."],
    ["unk in answer", "<think> a </think> <unk> was a poet ."],
  ])("rejects a malformed answer (%s)", (_, text) => {
    expect(parseAnswer(text).ok).toBe(false);
  });

  it("accepts an empty answer part (an abstention)", () => {
    expect(parseAnswer("<think> I do not know . </think>")).toMatchObject({ ok: true, answer: "" });
  });
});

describe("claim extraction", () => {
  it("worked example: one compound sentence gives two atomic claims with the sentence's span", () => {
    const answer = `Little is known . ${person.name} was born in ${birthplace} in ${year} . trailing words`;
    const claims = extractClaims(answer);
    expect(claims.map(({ relation, object }) => [relation, object])).toEqual([
      ["birthplace", birthplace],
      ["birth_year", year],
    ]);
    const [start, end] = claims[0]!.span;
    expect(answer.slice(start, end)).toBe(`${person.name} was born in ${birthplace} in ${year} .`);
  });

  it("reads a stop attached to the last word as a tokenizer's text writes it (France.)", () => {
    const spaced = `${person.name} was born in ${birthplace} . ${person.name} was born in ${year} .`;
    const attached = `${person.name} was born in ${birthplace}. ${person.name} was born in ${year}.`;
    const claims = extractClaims(attached);
    expect(claims.map(({ relation, object }) => [relation, object])).toEqual(
      extractClaims(spaced).map(({ relation, object }) => [relation, object]),
    );
    expect(claims).toHaveLength(2);
    expect(attached.slice(...claims[0]!.span)).toBe(`${person.name} was born in ${birthplace}.`);
  });

  it("yields no claim for sentences with no verifiable claim", () => {
    expect(
      extractClaims(`Little is known about ${person.name} . ${person.name} is well known . I am not sure .`),
    ).toEqual([]);
    expect(extractClaims(`${person.name} was born in the Kessa of 1800 .`)).toEqual([]);
  });

  it("reads every template, and every corpus sentence is a claim the knowledge base supports", () => {
    const docs = generateCorpus(world, { documents: 400, noiseRate: 0 });
    const used = new Set<string>();
    for (const doc of docs) {
      const sentences = doc.text.split(" . ");
      const claims = verifier.verify(extractClaims(doc.text));
      expect(claims.length).toBeGreaterThanOrEqual(sentences.length);
      expect(claims.every((c) => c.verdict === "supported")).toBe(true);
      for (const s of sentences) used.add(s);
    }
    // Every template appears in the corpus (so the parser reads what the model learns to write).
    const shapes = new Set(
      [...used].map((s) => TEMPLATES.find((t) => extractClaims(`${s} .`).length === t.relations.length)),
    );
    expect(shapes.size).toBeGreaterThan(1);
  });
});

describe("verification", () => {
  it("an answer made only of knowledge-base facts has only supported claims (P = 1)", () => {
    for (const prompt of generatePrompts(world)) {
      const analysis = analyzeAnswer(verifier, renderReference(world, prompt));
      expect(analysis.format.ok).toBe(true);
      expect(analysis.supported).toBeGreaterThan(0);
      expect(analysis.contradicted + analysis.unverifiable).toBe(0);
    }
  });

  it("changing one attribute value makes exactly that claim contradicted", () => {
    const prompt = generatePrompts(world).find((p) => p.suite === "bio" && p.focus.entityId === person.id)!;
    const reference = renderReference(world, prompt);
    const otherYear = String(Number(year) + 1);
    const changed = reference.replace(`was born in ${year} .`, `was born in ${otherYear} .`);
    expect(changed).not.toBe(reference);
    const before = analyzeAnswer(verifier, reference);
    const after = analyzeAnswer(verifier, changed);
    const contradicted = after.claims.filter((c) => c.verdict === "contradicted");
    expect(contradicted.map((c) => [c.relation, c.object])).toEqual([["birth_year", otherYear]]);
    expect(after.supported).toBe(before.supported - 1);
  });

  it("labels unknown subjects and missing relations unverifiable, wrong set members contradicted", () => {
    expect(verifier.verdict({ subject: "Zzz Qqq", relation: "occupation", object: "poet" })).toBe("unverifiable");
    const place = world.entities.find((e) => e.type === "place")!;
    expect(verifier.verdict({ subject: place.name, relation: "occupation", object: "poet" })).toBe("unverifiable");
    const work = world.entities.find((e) => e.type === "work")!;
    const [creator] = valuesOf(work, "creator");
    const someoneElse = world.entities.find((e) => e.type === "person" && e.name !== creator)!;
    expect(verifier.verdict({ subject: creator!, relation: "created", object: work.name })).toBe("supported");
    expect(verifier.verdict({ subject: someoneElse.name, relation: "created", object: work.name })).toBe(
      "contradicted",
    );
    expect(verifier.verdict({ subject: someoneElse.name, relation: "created", object: "Nothing" })).toBe(
      "unverifiable",
    );
    expect(relationInfo("created").many).toBe(true);
  });

  it("counts a fact stated from both sides once", () => {
    const work = world.entities.find((e) => e.type === "work" && valuesOf(e, "creator").length > 0)!;
    const [creator] = valuesOf(work, "creator");
    const both = `<think> </think> ${creator} created ${work.name} . ${work.name} was created by ${creator} .`;
    const analysis = analyzeAnswer(verifier, both);
    expect(analysis.claims.map((c) => c.verdict)).toEqual(["supported", "supported"]);
    expect(analysis.supported).toBe(1);
  });

  it("counts a repeated claim once", () => {
    const sentence = `${person.name} was born in ${year} .`;
    const analysis = analyzeAnswer(verifier, `<think> </think> ${sentence} ${sentence} ${sentence}`);
    expect(analysis.claims.length).toBe(3);
    expect(analysis.supported).toBe(1);
  });
});
