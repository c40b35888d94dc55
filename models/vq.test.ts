import { describe, expect, it } from "vitest";
import { generateWorld, type Picture, renderPicture, worldPictures } from "../envs/index.ts";
import {
  codebookFromJson,
  codebookToJson,
  decodeTokens,
  encodePicture,
  reconstructionError,
  tokensPerPicture,
  trainVqCodebook,
} from "./vq.ts";

/** An 8×8 picture of four 4×4 quadrants, each one flat colour. */
function quadrants(colours: readonly (readonly [number, number, number])[]): Picture {
  const pixels = new Uint8Array(8 * 8 * 3);
  for (let y = 0; y < 8; y++)
    for (let x = 0; x < 8; x++) pixels.set(colours[(y >> 2) * 2 + (x >> 2)]!, (y * 8 + x) * 3);
  return { width: 8, height: 8, pixels };
}
const RED = [200, 0, 0] as const;
const BLUE = [0, 0, 200] as const;
const GREEN = [0, 180, 0] as const;

describe("VQ image tokenizer", () => {
  it("worked example: flat patches of three colours get three codes and decode exactly", () => {
    const pictures = [quadrants([RED, BLUE, GREEN, RED]), quadrants([GREEN, GREEN, BLUE, RED])];
    const codebook = trainVqCodebook(pictures, { codebookSize: 3, patchSize: 4, seed: 3 });
    expect(tokensPerPicture(codebook)).toBe(4);
    const tokens = encodePicture(codebook, pictures[0]!);
    expect(tokens[0]).toBe(tokens[3]); // both red
    expect(new Set(tokens).size).toBe(3);
    expect(decodeTokens(codebook, tokens)).toEqual(pictures[0]);
    expect(reconstructionError(codebook, pictures)).toEqual({ mse: 0, psnr: Number.POSITIVE_INFINITY });
  });

  it("learns a codebook from the world's pictures: deterministic, error bounded, more codes fit better", () => {
    const world = generateWorld({ size: "tiny" });
    const pictures = worldPictures(world).map((ref) => renderPicture(ref.look, ref.seed));
    const heldOut = worldPictures(world).map((ref, i) => renderPicture(ref.look, 1_000_000 + i));
    const small = trainVqCodebook(pictures, { codebookSize: 16, seed: 1 });
    const large = trainVqCodebook(pictures, { codebookSize: 128, seed: 1 });
    expect(trainVqCodebook(pictures, { codebookSize: 16, seed: 1 }).codes).toEqual(small.codes);
    expect(encodePicture(large, pictures[0]!)).toHaveLength(64);
    const [smallError, largeError] = [reconstructionError(small, heldOut), reconstructionError(large, heldOut)];
    expect(largeError.mse).toBeLessThan(smallError.mse);
    // Measured on held-out pictures of the tiny world: 128 codes 18.8 dB, 16 codes 16.6 dB, one code 10.5 dB.
    expect(largeError.psnr).toBeGreaterThan(17);
  });

  it("saves and loads a codebook exactly (JSON)", () => {
    const codebook = trainVqCodebook([quadrants([RED, BLUE, GREEN, RED])], { codebookSize: 2 });
    const back = codebookFromJson(JSON.parse(JSON.stringify(codebookToJson(codebook))));
    expect(back).toEqual(codebook);
  });

  it("refuses bad input with an error naming what is wrong", () => {
    const picture = quadrants([RED, BLUE, GREEN, RED]);
    const codebook = trainVqCodebook([picture], { codebookSize: 2 });
    expect(() => trainVqCodebook([])).toThrow("cannot learn a codebook from no pictures");
    expect(() => trainVqCodebook([picture], { codebookSize: 5 })).toThrow("4 patches cannot make 5 codes");
    expect(() => trainVqCodebook([picture], { patchSize: 3 })).toThrow("patchSize 3 does not divide the 8×8 pictures");
    expect(() => trainVqCodebook([picture, { width: 4, height: 8, pixels: new Uint8Array(96) }])).toThrow(
      "picture 1 is 4×8; this codebook tokenizes 8×8 pictures",
    );
    expect(() =>
      encodePicture(codebook, renderPicture({ type: "work", values: { cover: "red", motif: "star" } }, 1)),
    ).toThrow("picture is 32×32; this codebook tokenizes 8×8 pictures");
    expect(() => encodePicture(codebook, { width: 8, height: 8, pixels: new Uint8Array(5) })).toThrow(
      "picture has 5 bytes, expected 192 (8×8×3)",
    );
    expect(() => decodeTokens(codebook, [0, 1, 2, -1])).toThrow(
      "token ids outside the codebook (0–1): 2 at 2, -1 at 3",
    );
    expect(() => decodeTokens(codebook, [0, 1])).toThrow("a picture is 4 tokens for this codebook, got 2");
    expect(() => decodeTokens(codebook, [])).toThrow("a picture is 4 tokens for this codebook, got 0");
    expect(() => codebookFromJson({ ...codebookToJson(codebook), codes: [1, 2] })).toThrow(
      "codebook: codes must be 96 finite numbers (2 codes × 48)",
    );
    expect(() => codebookFromJson({ ...codebookToJson(codebook), kind: "bpe" })).toThrow('kind must be "vq-codebook"');
    expect(() => codebookFromJson("nonsense")).toThrow("codebook: expected an object");
  });
});
