import { describe, expect, it } from "vitest";
import { generateWorld } from "../factworld/world.ts";
import { generateAltText } from "./alt-text.ts";
import { ATTRIBUTES_OF_TYPE, lookOf, worldPictures } from "./attributes.ts";
import { CaptionVerifier, type PictureTruth, pictureTruth } from "./captions.ts";
import { realignAltText } from "./realign.ts";

const world = generateWorld({ size: "default" });
const verifier = new CaptionVerifier(world);
const tiny = generateWorld({ size: "tiny" });
const tinyVerifier = new CaptionVerifier(tiny);
const pega = ((): PictureTruth => {
  const entity = tiny.byName.get("Pega Lelofe")!;
  return { entity, look: lookOf(tiny, entity) }; // blond hair, blue eyes, red clothing, a monocle
})();

describe("re-alignment rounds", () => {
  it("worked example: drops the wrong colour and the boilerplate, keeps the name and the true fact, adds what the picture shows", () => {
    const alt = "IMG_2031.jpg free download | Pega Lelofe has grey hair . Pega Lelofe was a teacher .";
    const rounds = [0, 1, 2, 3].map((k) => realignAltText(tinyVerifier, pega, alt, k));
    expect(rounds).toEqual([
      alt,
      // 6 edits (wrong hair, boilerplate, then four attributes): round 1 applies 2.
      "Pega Lelofe was a teacher .",
      "Pega Lelofe was a teacher . Pega Lelofe has blond hair . Pega Lelofe has blue eyes .",
      "Pega Lelofe was a teacher . Pega Lelofe has blond hair . Pega Lelofe has blue eyes . Pega Lelofe wears red . Pega Lelofe wears a monocle .",
    ]);
    // A wrong name is dropped and not replaced: the picture cannot show a name.
    expect(realignAltText(tinyVerifier, pega, "a picture of Gupu Nija . the person wears a monocle .", 3)).toBe(
      "the person wears a monocle . the person has blond hair . the person has blue eyes . the person wears red .",
    );
    // A partly wrong sentence keeps its right claim.
    expect(realignAltText(tinyVerifier, pega, "Pega Lelofe was born in Bapele in 1850 .", 1, 1)).toMatch(
      /^Pega Lelofe was born in Bapele \. /,
    );
  });

  it("gets more right every round, and the last round states exactly what the picture shows", () => {
    const pictures = worldPictures(world);
    let edited = 0;
    for (const picture of pictures) {
      const truth = pictureTruth(world, picture);
      const alt = generateAltText(world, picture);
      const analyses = [0, 1, 2, 3].map((k) => verifier.analyze(truth, realignAltText(verifier, truth, alt, k)));
      for (let k = 1; k <= 3; k++) {
        const [before, after] = [analyses[k - 1]!, analyses[k]!];
        expect(after.supported).toBeGreaterThanOrEqual(before.supported);
        expect(after.contradicted + after.unverifiable).toBeLessThanOrEqual(before.contradicted + before.unverifiable);
      }
      const last = analyses[3]!;
      expect(last.contradicted + last.unverifiable).toBe(0);
      expect(last.wrongEntity).toBe(false);
      expect(last.sentences.every((s) => s.claims.length > 0)).toBe(true); // no boilerplate left
      const shown = new Set(last.claims.flatMap((c) => (c.claim.kind === "visual" ? [c.claim.attribute] : [])));
      expect([...shown].sort()).toEqual([...ATTRIBUTES_OF_TYPE[truth.look.type]].sort());
      // The right facts of the alt-text survive.
      const rightFacts = verifier
        .analyze(truth, alt)
        .claims.filter((c) => c.claim.kind === "fact" && c.verdict === "supported");
      expect(last.claims.filter((c) => c.claim.kind === "fact").length).toBeGreaterThanOrEqual(rightFacts.length);
      if (analyses[0]!.supported < last.supported) edited++;
    }
    expect(edited).toBeGreaterThan(pictures.length * 0.8);
  });

  it("refuses a round or a number of rounds that is not a count", () => {
    expect(() => realignAltText(tinyVerifier, pega, "", -1)).toThrow("round must be an integer ≥ 0, got -1");
    expect(() => realignAltText(tinyVerifier, pega, "", 1, 0)).toThrow("rounds must be an integer ≥ 1, got 0");
  });
});
