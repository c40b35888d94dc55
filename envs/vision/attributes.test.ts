import { describe, expect, it } from "vitest";
import { generateWorld } from "../factworld/world.ts";
import {
  ATTRIBUTES_OF_TYPE,
  lookOf,
  pictureCount,
  VISUAL_ATTRIBUTES,
  validateLook,
  worldPictures,
} from "./attributes.ts";

const world = generateWorld({ size: "tiny" });
const byName = (name: string) => {
  const entity = world.byName.get(name);
  if (!entity) throw new Error(`no ${name} in the tiny world`);
  return entity;
};

describe("visual attributes", () => {
  it("draws each entity's look from the world's seed: worked examples of the tiny world", () => {
    expect(lookOf(world, byName("Pega Lelofe"))).toEqual({
      type: "person",
      values: { hair: "blond", eyes: "blue", clothing: "red", accessory: "monocle" },
    });
    expect(lookOf(world, byName("Bapele"))).toEqual({
      type: "place",
      values: { building: "castle", roof: "blue", weather: "rainy" },
    });
    expect(lookOf(world, byName("Govu"))).toEqual({
      type: "organisation",
      values: { logo_shape: "cross", logo_colour: "yellow" },
    });
    expect(lookOf(world, byName("Rafume"))).toEqual({ type: "work", values: { cover: "black", motif: "key" } });
    // Another world seed draws other looks for entities of the same ids.
    const other = generateWorld({ size: "tiny", seed: 8 });
    const looks = (w: typeof world) => w.entities.map((e) => JSON.stringify(lookOf(w, e)));
    expect(looks(other)).not.toEqual(looks(world));
    expect(looks(generateWorld({ size: "tiny" }))).toEqual(looks(world));
  });

  it("gives every entity exactly its type's attributes, each a word of its closed list", () => {
    for (const entity of world.entities) {
      const look = lookOf(world, entity);
      expect(Object.keys(look.values)).toEqual(ATTRIBUTES_OF_TYPE[entity.type]);
      expect(() => validateLook(look)).not.toThrow();
    }
    expect(() => validateLook({ type: "person", values: { hair: "green", eyes: "blue", clothing: "red" } })).toThrow(
      /invalid person look: missing accessory; .*|invalid person look: hair "green" is not one of black, brown, blond, red, grey; missing accessory/,
    );
    expect(() =>
      validateLook({ type: "work", values: { cover: "red", motif: "star", roof: "red" } as Record<string, string> }),
    ).toThrow('a work has no attribute "roof"');
  });

  it("gives head entities many pictures and the tail one, by the world's Zipf law", () => {
    const counts = world.entities.map((e) => ({ rank: e.rank, n: pictureCount(world, e) }));
    expect(counts.find((c) => c.rank === 1)?.n).toBe(12);
    expect(counts.find((c) => c.rank === 2)?.n).toBe(6); // 12 / 2^1 (the tiny world's exponent is 1)
    expect(counts.find((c) => c.rank === 3)?.n).toBe(4);
    expect(Math.min(...counts.map((c) => c.n))).toBe(1);
    const sorted = [...counts].sort((a, b) => a.rank - b.rank);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.n).toBeLessThanOrEqual(sorted[i - 1]!.n);

    const pictures = worldPictures(world, { maxPicturesPerEntity: 12 });
    expect(pictures).toHaveLength(counts.reduce((s, c) => s + c.n, 0));
    expect(new Set(pictures.map((p) => p.id)).size).toBe(pictures.length);
    expect(new Set(pictures.map((p) => p.seed)).size).toBe(pictures.length);
    expect(pictures[0]).toMatchObject({ id: "picture:0:0", entityId: 0, index: 0 });
    expect(() => pictureCount(world, world.entities[0]!, { maxPicturesPerEntity: 0 })).toThrow(
      "maxPicturesPerEntity must be an integer ≥ 1, got 0",
    );
  });

  it("uses value words that never collide with names (names are capitalised)", () => {
    for (const info of Object.values(VISUAL_ATTRIBUTES)) for (const w of info.words) expect(w).toMatch(/^[a-z]+$/);
  });
});
