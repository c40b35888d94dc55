import { describe, expect, it } from "vitest";
import { generateWorld, popularityBucket } from "../factworld/world.ts";
import { BOILERPLATE } from "./alt-text.ts";
import { attributePrompts, entityPrompts, pictureMetadata, rawPicturePool, zeroShotPictures } from "./picture-pool.ts";

const world = generateWorld({ size: "tiny" });

describe("the web-like picture pool", () => {
  const pool = rawPicturePool(world, 2000, 5);

  it("is deterministic in the world, size and seed", () => {
    expect(rawPicturePool(world, 2000, 5)).toEqual(pool);
    expect(rawPicturePool(world, 2000, 6).map((p) => p.text)).not.toEqual(pool.map((p) => p.text));
  });

  it("puts head entities in most pairs (Zipf), and every picture shows its entity's look", () => {
    const head = pool.filter((p) => popularityBucket(world.entities[p.entityId]!) === "head").length;
    const headEntities = world.entities.filter((e) => popularityBucket(e) === "head").length;
    // The tiny world's head is 10 % of its entities; on the web-like pool it is far more of the pairs.
    expect(head / pool.length).toBeGreaterThan(2 * (headEntities / world.entities.length));
    expect(new Set(pool.map((p) => p.seed)).size).toBe(pool.length);
  });

  it("mixes in empty, boilerplate and wrongly named alt-text", () => {
    const empty = pool.filter((p) => p.text === "").length;
    const boilerplate = pool.filter((p) => BOILERPLATE.some((b) => p.text.includes(b.split(" ")[1]!))).length;
    const wrongName = pool.filter((p) =>
      world.entities.some(
        (e) => e.id !== p.entityId && p.text.includes(e.name) && !p.text.includes(world.entities[p.entityId]!.name),
      ),
    ).length;
    expect(empty / pool.length).toBeGreaterThan(0.05);
    expect(boilerplate / pool.length).toBeGreaterThan(0.1);
    expect(wrongName).toBeGreaterThan(0);
  });
});

describe("the pool's metadata and the zero-shot set", () => {
  it("has every entity name and every visual value, each with the prompts that say it", () => {
    const metadata = pictureMetadata(world);
    const e0 = world.entities[0]!;
    expect(metadata[0]).toEqual({ entry: e0.name, prompts: entityPrompts(e0.name) });
    expect(entityPrompts("Ada Lo")).toContain("a picture of Ada Lo .");
    const red = metadata.find((m) => m.entry === "red")!;
    expect(red.prompts).toContain("the person has red hair .");
    expect(red.prompts).toContain("the roof is red .");
    expect(attributePrompts("clothing", "blue")).toEqual([
      "the person wears blue .",
      "the person is dressed in blue .",
    ]);
    expect(new Set(metadata.map((m) => m.entry)).size).toBe(metadata.length);
  });

  it("renders every entity the same number of times, with seeds the pool does not use", () => {
    const set = zeroShotPictures(world, 2);
    expect(set).toHaveLength(2 * world.entities.length);
    const poolSeeds = new Set(rawPicturePool(world, 2000, 5).map((p) => p.seed));
    expect(set.some((p) => poolSeeds.has(p.seed))).toBe(false);
    expect(new Set(set.map((p) => p.bucket))).toEqual(new Set(["head", "torso", "tail"]));
    expect(() => zeroShotPictures(world, 0)).toThrow(/perEntity/);
  });
});
