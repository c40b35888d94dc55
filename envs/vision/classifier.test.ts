import { beforeAll, describe, expect, it } from "vitest";
// Tests may pick the backend through models/; envs/ itself never imports it.
import { initBackend } from "../../models/backend.ts";
import { generateWorld } from "../factworld/world.ts";
import { worldPictures } from "./attributes.ts";
import { AttributeClassifier, type LabelledPicture, samplePictures } from "./classifier.ts";
import { renderPicture } from "./render.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("the attribute classifier", () => {
  it("reads every attribute of held-out pictures with ≥ 95 % accuracy (the bar before anything relies on it)", async () => {
    const classifier = await AttributeClassifier.train(); // the defaults: ≈ 15 s of CPU
    // Held out: fresh random looks, and the tiny world's own pictures (drawn with seeds training never saw).
    const world = generateWorld({ size: "tiny" });
    const heldOut: LabelledPicture[] = [
      ...samplePictures(800, 987_654),
      ...worldPictures(world).map((ref) => ({ look: ref.look, picture: renderPicture(ref.look, ref.seed) })),
    ];
    const accuracy = classifier.accuracy(heldOut);
    expect(accuracy.type).toBeGreaterThanOrEqual(0.99);
    for (const [attribute, value] of Object.entries(accuracy.byAttribute)) {
      expect(value, attribute).toBeGreaterThanOrEqual(0.95);
    }
    expect(Object.keys(accuracy.byAttribute)).toHaveLength(11);
    classifier.dispose();
  }, 240_000);

  it("trains deterministically for a seed, and refuses pictures of the wrong size", async () => {
    const losses = async () => {
      const seen: number[] = [];
      (await AttributeClassifier.train({ trainPictures: 256, epochs: 2 }, (_, loss) => seen.push(loss))).dispose();
      return seen;
    };
    const first = await losses();
    expect(first[1]).toBeLessThan(first[0]!);
    expect(await losses()).toEqual(first);

    const classifier = await AttributeClassifier.train({ trainPictures: 64, epochs: 1 });
    expect(() => classifier.read([{ width: 16, height: 16, pixels: new Uint8Array(16 * 16 * 3) }])).toThrow(
      "picture 0: picture is 16×16, expected 32×32",
    );
    expect(() => classifier.accuracy([])).toThrow("accuracy needs at least one labelled picture");
    expect(classifier.read([])).toEqual([]);
    classifier.dispose();
  }, 60_000);
});
