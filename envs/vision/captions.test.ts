import { describe, expect, it } from "vitest";
import { generateWorld } from "../factworld/world.ts";
import { lookOf } from "./attributes.ts";
import { CaptionVerifier, type PictureTruth, parseCaption, trueCaption } from "./captions.ts";

const world = generateWorld({ size: "tiny" });
const verifier = new CaptionVerifier(world);
const truthOf = (name: string): PictureTruth => {
  const entity = world.byName.get(name)!;
  return { entity, look: lookOf(world, entity) };
};
// Pega Lelofe: blond hair, blue eyes, red clothing, a monocle; a teacher born in 1926 in Bapele.
const pega = truthOf("Pega Lelofe");
// Bapele: a castle with a blue roof, in the rain.
const bapele = truthOf("Bapele");

const verdicts = (truth: PictureTruth, caption: string) =>
  verifier.analyze(truth, caption).claims.map(({ claim, verdict }) => [claim.kind, verdict]);

describe("caption claims", () => {
  it("reads visual, identity and fact sentences, and nothing from boilerplate", () => {
    expect(parseCaption("IMG_2031.jpg free download | Pega Lelofe has blond hair . the roof is blue .")).toEqual([
      { text: "IMG_2031.jpg free download |", claims: [] },
      {
        text: "Pega Lelofe has blond hair .",
        claims: [{ kind: "visual", attribute: "hair", value: "blond", subject: "Pega Lelofe" }],
      },
      { text: "the roof is blue .", claims: [{ kind: "visual", attribute: "roof", value: "blue" }] },
    ]);
    expect(parseCaption("a picture of Pega Lelofe . Pega Lelofe was a teacher .").flatMap((s) => s.claims)).toEqual([
      { kind: "depicts", name: "Pega Lelofe" },
      { kind: "fact", claim: { subject: "Pega Lelofe", relation: "occupation", object: "teacher" } },
    ]);
    // Not a word of the attribute's list, or no final ".": no claim.
    expect(parseCaption("the roof is pink . the person has red hair").flatMap((s) => s.claims)).toEqual([]);
  });

  it("supports the true caption of a picture entirely", () => {
    const caption = trueCaption(pega);
    expect(caption).toBe(
      "Pega Lelofe has blond hair . Pega Lelofe has blue eyes . Pega Lelofe wears red . Pega Lelofe wears a monocle .",
    );
    expect(verifier.analyze(pega, caption)).toMatchObject({
      supported: 4,
      contradicted: 0,
      unverifiable: 0,
      wrongEntity: false,
    });
  });

  it("worked example: a wrong colour is contradicted, the rest still supported", () => {
    const analysis = verifier.analyze(pega, "the person has red hair . the person has blue eyes .");
    expect(analysis).toMatchObject({ supported: 1, contradicted: 1, unverifiable: 0, wrongEntity: false });
    expect(verdicts(bapele, "the roof is red . it is rainy .")).toEqual([
      ["visual", "contradicted"],
      ["visual", "supported"],
    ]);
  });

  it("worked example: a wrong name is a hallucination, even with the right colours", () => {
    // Pega Lelofe's hair is blond; the caption gives it to someone else.
    const analysis = verifier.analyze(pega, "a picture of Gupu Nija . Gupu Nija has blond hair .");
    expect(analysis).toMatchObject({ supported: 0, contradicted: 2, wrongEntity: true });
    expect(verifier.analyze(pega, "a picture of Nobody Atall .").wrongEntity).toBe(true);
  });

  it("worked example: an extra true detail — a fact the picture cannot show — is supported by the knowledge base", () => {
    const analysis = verifier.analyze(pega, "Pega Lelofe wears a monocle . Pega Lelofe was born in 1926 .");
    expect(analysis).toMatchObject({ supported: 2, contradicted: 0, unverifiable: 0, wrongEntity: false });
    expect(verdicts(pega, "Pega Lelofe was born in 1927 .")).toEqual([["fact", "contradicted"]]);
  });

  it("worked example: a true fact about someone the picture does not show names the wrong entity", () => {
    // True of Bapele, but the picture shows Pega Lelofe: the caption is about its picture.
    const analysis = verifier.analyze(pega, "Pega Lelofe wears a monocle . Bapele is a fortress .");
    expect(analysis).toMatchObject({ supported: 1, contradicted: 1, wrongEntity: true });
    expect(verifier.analyze(bapele, "Bapele is a fortress .")).toMatchObject({ supported: 1, wrongEntity: false });
  });

  it("worked example: boilerplate makes no claim; an attribute the picture's type lacks is unverifiable", () => {
    expect(verifier.analyze(pega, "IMG_2031.jpg free download | stock photo |")).toMatchObject({
      supported: 0,
      contradicted: 0,
      unverifiable: 0,
      claims: [],
    });
    expect(verdicts(pega, "the roof is blue .")).toEqual([["visual", "unverifiable"]]);
  });

  it("counts a claim stated twice once, named or not", () => {
    expect(verifier.analyze(pega, "Pega Lelofe has blond hair . the person has blond hair .").supported).toBe(1);
  });
});
