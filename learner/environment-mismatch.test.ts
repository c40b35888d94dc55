/** The learner refuses a starting policy that cannot read the experiment's environment, before it trains. */
import { describe, expect, it } from "vitest";
import {
  captionVocabulary,
  factWorldVision,
  generateWorld,
  pictureDocuments,
  renderPicture,
  tokenizerForVocabulary,
} from "../envs/index.ts";
import { factWorld } from "../envs/registry.ts";
import { imageTokenizerFromPictures, tokenizerRecordFor } from "../models/index.ts";
import { environmentMismatch } from "./learner.ts";

const world = generateWorld({ size: "tiny" });
const tokenizer = tokenizerForVocabulary(captionVocabulary(world));
const pictures = pictureDocuments(world, 20, 1).map((d) => renderPicture(d.look, d.seed));
const image = imageTokenizerFromPictures(pictures, tokenizer, { codebookSize: 8, seed: 1 });

describe("the starting policy against the environment", () => {
  it("a policy without an image tokenizer is refused for an environment with pictures, naming both", () => {
    const vision = factWorldVision({
      size: "tiny",
      promptSeed: 1,
      evalFraction: 0.2,
      maxPicturesPerEntity: 12,
      dropAltText: 0.2,
    });
    const text = factWorld({ size: "tiny", promptSeed: 1, evalFraction: 0.2 });
    expect(
      environmentMismatch(vision, tokenizerRecordFor("dense", tokenizer), "models/checkpoints/quickstart"),
    ).toMatch(
      /^environment factworld-vision has pictures, but the policy \(models\/checkpoints\/quickstart\) has no image tokenizer/,
    );
    expect(environmentMismatch(vision, tokenizerRecordFor("dense", tokenizer, image), "p")).toBeUndefined();
    expect(environmentMismatch(text, tokenizerRecordFor("dense", tokenizer), "p")).toBeUndefined();
  });
});
