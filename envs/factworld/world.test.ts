import { describe, expect, it } from "vitest";
import { RELATIONS_OF_TYPE } from "./schema.ts";
import { generateWorld, popularityBucket, valuesOf, WORLD_SIZES } from "./world.ts";

describe("generateWorld", () => {
  it("is a pure function of its seed", () => {
    expect(generateWorld({ size: "tiny" })).toEqual(generateWorld({ size: "tiny" }));
    expect(generateWorld({ size: "tiny", seed: 2 }).entities.map((e) => e.name)).not.toEqual(
      generateWorld({ size: "tiny" }).entities.map((e) => e.name),
    );
  });

  it("has the configured number of entities of each type, with unique names", () => {
    const world = generateWorld({ size: "default" });
    const { people, places, organisations, works } = WORLD_SIZES.default;
    const count = (t: string) => world.entities.filter((e) => e.type === t).length;
    expect([count("person"), count("place"), count("organisation"), count("work")]).toEqual([
      people,
      places,
      organisations,
      works,
    ]);
    expect(world.byName.size).toBe(world.entities.length);
  });

  it("gives Zipf popularity: shares sum to 1, rank 1 is r^s times rank r, buckets 10/30/60 %", () => {
    const world = generateWorld({ size: "default" });
    const total = world.entities.reduce((a, e) => a + e.popularity, 0);
    expect(total).toBeCloseTo(1, 9);
    const byRank = [...world.entities].sort((a, b) => a.rank - b.rank);
    const [first, tenth] = [byRank[0]!, byRank[9]!];
    expect(first.popularity / tenth.popularity).toBeCloseTo(10 ** WORLD_SIZES.default.zipfExponent, 6);
    const buckets = { head: 0, torso: 0, tail: 0 };
    for (const e of world.entities) buckets[popularityBucket(e)]++;
    expect(buckets).toEqual({ head: 40, torso: 120, tail: 240 });
  });

  it("makes confusable pairs whose last name word differs in exactly one syllable", () => {
    const world = generateWorld({ size: "default" });
    const pairs = world.entities.filter((e) => e.confusableWith !== null);
    expect(pairs.length).toBeGreaterThan(40);
    for (const e of pairs) {
      const twin = world.entities[e.confusableWith!]!;
      expect(twin.confusableWith).toBe(e.id);
      expect(twin.type).toBe(e.type);
      const a = e.name.split(" ");
      const b = twin.name.split(" ");
      expect(a.slice(0, -1)).toEqual(b.slice(0, -1));
      const syllables = (w: string) => w.toLowerCase().match(/[^aeiou][aeiou]/g)!;
      const [sa, sb] = [syllables(a.at(-1)!), syllables(b.at(-1)!)];
      expect(sa.length).toBe(sb.length);
      expect(sa.filter((s, i) => s !== sb[i]).length).toBe(1);
    }
  });

  it("keeps facts consistent: types match relations, inverse relations mirror each other", () => {
    const world = generateWorld({ size: "default" });
    for (const e of world.entities) {
      for (const f of e.facts) {
        expect(RELATIONS_OF_TYPE[e.type]).toContain(f.relation);
        if (f.objectId !== undefined) expect(world.entities[f.objectId]!.name).toBe(f.object);
      }
      for (const work of valuesOf(e, "created")) expect(valuesOf(world.byName.get(work)!, "creator")).toEqual([e.name]);
    }
    const people = world.entities.filter((e) => e.type === "person");
    expect(people.every((p) => valuesOf(p, "birth_year").length === 1)).toBe(true);
  });
});
