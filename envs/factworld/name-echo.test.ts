import { describe, expect, it } from "vitest";
import { analyzeAnswer, ClaimVerifier } from "./answers.ts";
import { nameEchoDocuments } from "./name-echo.ts";
import { generatePrompts } from "./prompts.ts";
import { generateWorld } from "./world.ts";

describe("nameEchoDocuments", () => {
  const world = generateWorld({ size: "tiny" });
  const documents = nameEchoDocuments(world, 300, 7);
  const trainTexts = new Set(
    generatePrompts(world)
      .filter((p) => p.split === "train")
      .map((p) => p.text),
  );

  it("renames a train-split prompt's entity to a name no entity has; the answer repeats it and abstains", () => {
    expect(documents).toHaveLength(300);
    for (const d of documents) {
      expect(world.byName.has(d.name)).toBe(false);
      expect(d.prompt).toContain(d.name);
      expect(d.answer.startsWith(`<think> The question is about ${d.name} . It asks for `)).toBe(true);
      expect(d.answer.endsWith(` . </think> I do not know about ${d.name} .`)).toBe(true);
      // The answer parses, and claims nothing about the made-up name.
      const analysis = analyzeAnswer(new ClaimVerifier(world), d.answer);
      expect(analysis.format.ok).toBe(true);
      expect(analysis.claims).toEqual([]);
      // Putting the real name back gives a prompt of the train split (and only the name was changed).
      const original = [...trainTexts].find((t) => sameFrame(t, d.prompt, d.name));
      expect(original, d.prompt).toBeDefined();
    }
  });

  it("mixes new words with the world's name words, so look-alikes of real names occur", () => {
    const known = new Set(world.nameWords);
    const words = documents.flatMap((d) => d.name.split(" "));
    const knownShare = words.filter((w) => known.has(w)).length / words.length;
    expect(knownShare).toBeGreaterThan(0.35);
    expect(knownShare).toBeLessThan(0.65);
    expect(new Set(documents.map((d) => d.name)).size).toBeGreaterThan(250);
  });

  it("is the same for the same seed and differs for another", () => {
    expect(nameEchoDocuments(world, 300, 7)).toEqual(documents);
    expect(nameEchoDocuments(world, 300, 8)).not.toEqual(documents);
  });
});

/** `renamed` is `text` with one name replaced by `name` (every other word the same). */
function sameFrame(text: string, renamed: string, name: string): boolean {
  const [before, after] = renamed.split(name) as [string, string];
  return text.startsWith(before) && text.endsWith(after) && text.length > before.length + after.length;
}
