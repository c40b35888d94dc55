/**
 * What FactWorld's pictures show: each entity's visual attributes (closed word lists, like
 * envs/factworld/schema.ts, so a caption's every visual word can be checked), drawn from the entity's
 * own seed, and how many pictures it has — Zipf popularity, as on the web: head entities many, tail one.
 */
import { createRng, hashString } from "../factworld/random.ts";
import type { EntityType } from "../factworld/schema.ts";
import type { Entity, World } from "../factworld/world.ts";

export const HAIR_COLOURS = ["black", "brown", "blond", "red", "grey"] as const;
export const EYE_COLOURS = ["brown", "blue", "green", "grey"] as const;
export const CLOTHING_COLOURS = ["red", "blue", "green", "yellow", "purple", "black"] as const;
export const ACCESSORIES = ["hat", "scarf", "monocle", "flower"] as const;
export const BUILDINGS = ["house", "tower", "castle", "dome"] as const;
export const ROOF_COLOURS = ["red", "blue", "green", "purple"] as const;
export const WEATHERS = ["sunny", "rainy", "snowy", "night"] as const;
export const LOGO_SHAPES = ["circle", "square", "triangle", "diamond", "cross", "ring"] as const;
export const LOGO_COLOURS = ["red", "blue", "green", "yellow", "purple", "black"] as const;
export const COVER_COLOURS = ["red", "blue", "green", "black", "purple"] as const;
export const MOTIFS = ["star", "moon", "tree", "wave", "key"] as const;

export interface VisualAttributeInfo {
  /** The entity type that has this attribute. */
  readonly type: EntityType;
  /** The closed list of values. */
  readonly words: readonly string[];
  /** How reports and prompts name it. */
  readonly phrase: string;
}

export const VISUAL_ATTRIBUTES = {
  hair: { type: "person", words: HAIR_COLOURS, phrase: "hair colour" },
  eyes: { type: "person", words: EYE_COLOURS, phrase: "eye colour" },
  clothing: { type: "person", words: CLOTHING_COLOURS, phrase: "clothing colour" },
  accessory: { type: "person", words: ACCESSORIES, phrase: "accessory" },
  building: { type: "place", words: BUILDINGS, phrase: "building" },
  roof: { type: "place", words: ROOF_COLOURS, phrase: "roof colour" },
  weather: { type: "place", words: WEATHERS, phrase: "weather" },
  logo_shape: { type: "organisation", words: LOGO_SHAPES, phrase: "logo shape" },
  logo_colour: { type: "organisation", words: LOGO_COLOURS, phrase: "logo colour" },
  cover: { type: "work", words: COVER_COLOURS, phrase: "cover colour" },
  motif: { type: "work", words: MOTIFS, phrase: "cover motif" },
} as const satisfies Record<string, VisualAttributeInfo>;

export type VisualAttribute = keyof typeof VISUAL_ATTRIBUTES;
export const VISUAL_ATTRIBUTE_NAMES = Object.keys(VISUAL_ATTRIBUTES) as VisualAttribute[];

/** The attributes a picture of each entity type shows, in the order captions list them. */
export const ATTRIBUTES_OF_TYPE: Record<EntityType, readonly VisualAttribute[]> = {
  person: ["hair", "eyes", "clothing", "accessory"],
  place: ["building", "roof", "weather"],
  organisation: ["logo_shape", "logo_colour"],
  work: ["cover", "motif"],
};

export const isVisualAttribute = (name: string): name is VisualAttribute => Object.hasOwn(VISUAL_ATTRIBUTES, name);

/** What one entity looks like: a value from each of its type's attributes' word lists. */
export interface Look {
  readonly type: EntityType;
  readonly values: Readonly<Partial<Record<VisualAttribute, string>>>;
}

/** The value of an attribute in a look; an error when the look's type has no such attribute. */
export function lookValue(look: Look, attribute: VisualAttribute): string {
  const value = look.values[attribute];
  if (value === undefined) throw new Error(`a ${look.type} has no ${VISUAL_ATTRIBUTES[attribute].phrase}`);
  return value;
}

/** Checks that a look has exactly its type's attributes, each a word of its list. */
export function validateLook(look: Look): Look {
  const expected = ATTRIBUTES_OF_TYPE[look.type];
  if (expected === undefined) throw new Error(`unknown entity type "${look.type}"`);
  const problems: string[] = [];
  for (const attribute of expected) {
    const value = look.values[attribute];
    const words: readonly string[] = VISUAL_ATTRIBUTES[attribute].words;
    if (value === undefined) problems.push(`missing ${attribute}`);
    else if (!words.includes(value)) problems.push(`${attribute} "${value}" is not one of ${words.join(", ")}`);
  }
  for (const key of Object.keys(look.values)) {
    if (!expected.includes(key as VisualAttribute)) problems.push(`a ${look.type} has no attribute "${key}"`);
  }
  if (problems.length > 0) throw new Error(`invalid ${look.type} look: ${problems.join("; ")}`);
  return look;
}

/** A seed per (world, stream, parts), so the same world always draws the same looks and pictures. */
export const visionSeed = (world: World, ...parts: readonly (string | number)[]): number =>
  hashString(`vision:${world.options.seed}:${parts.join(":")}`);

/** The entity's look, drawn from its own seed: the same world gives the same look, whatever else is asked. */
export function lookOf(world: World, entity: Entity): Look {
  const rng = createRng(visionSeed(world, "look", entity.id));
  const values: Partial<Record<VisualAttribute, string>> = {};
  for (const attribute of ATTRIBUTES_OF_TYPE[entity.type])
    values[attribute] = rng.pick(VISUAL_ATTRIBUTES[attribute].words);
  return { type: entity.type, values };
}

export interface PictureOptions {
  /** Pictures of the most popular entity (rank 1); rank r has round(max / r^zipfExponent), at least 1. */
  readonly maxPicturesPerEntity: number;
}

export const DEFAULT_PICTURE_OPTIONS: PictureOptions = { maxPicturesPerEntity: 12 };

/** How many pictures an entity has: the world's own Zipf law over ranks, so the head has many and the tail one. */
export function pictureCount(world: World, entity: Entity, options: PictureOptions = DEFAULT_PICTURE_OPTIONS): number {
  const max = options.maxPicturesPerEntity;
  if (!Number.isInteger(max) || max < 1) throw new Error(`maxPicturesPerEntity must be an integer ≥ 1, got ${max}`);
  return Math.max(1, Math.round(max / entity.rank ** world.options.zipfExponent));
}

/** One picture of the world: which entity, which of its pictures, and the seed of its nuisance variation. */
export interface PictureRef {
  /** `picture:<entityId>:<index>`. */
  readonly id: string;
  readonly entityId: number;
  readonly index: number;
  readonly seed: number;
  readonly look: Look;
}

export function pictureRef(world: World, entity: Entity, index: number): PictureRef {
  return {
    id: `picture:${entity.id}:${index}`,
    entityId: entity.id,
    index,
    seed: visionSeed(world, "picture", entity.id, index),
    look: lookOf(world, entity),
  };
}

/** Every picture of the world, entity by entity (ids in order). */
export function worldPictures(world: World, options: PictureOptions = DEFAULT_PICTURE_OPTIONS): PictureRef[] {
  return world.entities.flatMap((entity) =>
    Array.from({ length: pictureCount(world, entity, options) }, (_, index) => pictureRef(world, entity, index)),
  );
}

/** Every word the visual attributes use (for a tokenizer's vocabulary). */
export const VISUAL_WORDS: readonly string[] = [
  ...new Set(VISUAL_ATTRIBUTE_NAMES.flatMap((a) => VISUAL_ATTRIBUTES[a].words as readonly string[])),
];
