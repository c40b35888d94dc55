/**
 * The metadata FactWorld is balanced over (MetaCLIP's entries): every entity's name and every value
 * its attributes take that is not itself an entity (occupations, kinds, genres, regions, years).
 */
import type { World } from "../factworld/world.ts";

/** Entity names first (in id order), then the distinct literal attribute values in first-seen order. */
export function worldMetadata(world: World): string[] {
  const names = world.entities.map((e) => e.name);
  const values = world.entities.flatMap((e) => e.facts.filter((f) => f.objectId === undefined).map((f) => f.object));
  return [...new Set([...names, ...values])];
}
