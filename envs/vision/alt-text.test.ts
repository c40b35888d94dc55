import { describe, expect, it } from "vitest";
import { generateWorld } from "../factworld/world.ts";
import { generateAltText } from "./alt-text.ts";
import { worldPictures } from "./attributes.ts";
import { CaptionVerifier, pictureTruth } from "./captions.ts";

const world = generateWorld({ size: "default" });
const pictures = worldPictures(world);
const verifier = new CaptionVerifier(world);

describe("alt-text", () => {
  it("is the same for the same picture and options", () => {
    const first = pictures.map((p) => generateAltText(world, p));
    expect(pictures.map((p) => generateAltText(world, p))).toEqual(first);
    expect(new Set(first).size).toBeGreaterThan(pictures.length / 2);
  });

  it("is noisy at the rates asked for: empty, right and wrong names, wrong attributes, boilerplate", () => {
    const texts = pictures.map((p) => generateAltText(world, p));
    const share = (test: (text: string, i: number) => boolean) => texts.filter(test).length / texts.length;
    // emptyRate, plus the few with no name, no attribute drawn and no boilerplate.
    expect(share((t) => t === "")).toBeGreaterThan(0.08);
    expect(share((t) => t === "")).toBeLessThan(0.15);
    expect(share((t) => t.includes("|"))).toBeGreaterThan(0.2);
    const analyses = texts.map((t, i) => verifier.analyze(pictureTruth(world, pictures[i]!), t));
    // 0.9 (not empty) × 0.75 (rightNameRate) ≈ 0.68 name the picture's entity.
    expect(share((t, i) => t.includes(world.entities[pictures[i]!.entityId]!.name))).toBeCloseTo(0.68, 1);
    expect(analyses.filter((a) => a.wrongEntity).length / texts.length).toBeGreaterThan(0.03);
    const visual = analyses.flatMap((a) =>
      a.claims.filter((c) => c.claim.kind === "visual" && c.claim.subject === undefined),
    );
    const wrongColours = visual.filter((c) => c.verdict === "contradicted").length / visual.length;
    expect(wrongColours).toBeGreaterThan(0.1);
    expect(wrongColours).toBeLessThan(0.3); // wrongAttributeRate 0.2
    expect(analyses.some((a) => a.claims.some((c) => c.claim.kind === "fact"))).toBe(true);
  });

  it("follows its options: no noise gives only right claims; bad rates are refused", () => {
    const clean = {
      emptyRate: 0,
      rightNameRate: 1,
      wrongNameRate: 0,
      wrongAttributeRate: 0,
      wrongFactRate: 0,
      boilerplateRate: 0,
    };
    for (const picture of pictures.slice(0, 100)) {
      const analysis = verifier.analyze(pictureTruth(world, picture), generateAltText(world, picture, clean));
      expect(analysis.contradicted + analysis.unverifiable).toBe(0);
    }
    const everything = generateAltText(world, pictures[0]!, { ...clean, attributeRate: 1, factRate: 1 });
    expect(verifier.analyze(pictureTruth(world, pictures[0]!), everything).supported).toBeGreaterThanOrEqual(3);
    expect(pictures.every((p) => generateAltText(world, p, { emptyRate: 1 }) === "")).toBe(true);
    expect(() => generateAltText(world, pictures[0]!, { emptyRate: 1.5 })).toThrow(
      "alt-text rates must be in [0, 1]: emptyRate=1.5",
    );
    expect(() => generateAltText(world, pictures[0]!, { rightNameRate: 0.8, wrongNameRate: 0.3 })).toThrow(
      "rightNameRate + wrongNameRate must be ≤ 1",
    );
  });
});
