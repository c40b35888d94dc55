/**
 * The web-like picture–alt-text pool a contrastive encoder is trained on, its metadata, and the
 * zero-shot evaluation set (docs/curation.md "Curating the picture–caption pool").
 *
 * The pool is what the web gives: entities drawn by popularity (the world's Zipf law, so head entities
 * are in most pairs), each pair a fresh render of the entity with the vision world's noisy alt-text
 * (empty, boilerplate, a look-alike's name, wrong colours, facts the picture cannot show). The
 * metadata — the analogue of MetaCLIP's WordNet + Wikipedia entries — is every entity name and every
 * visual attribute value, each with the prompts that say it ("a picture of NAME", "the person has red
 * hair ."): MetaCLIP matches the entry, CiT and the zero-shot classifier embed the prompts.
 */
import { createRng, hashString, weightedSampler } from "../factworld/random.ts";
import { type PopularityBucket, popularityBucket, type World } from "../factworld/world.ts";
import { type AltTextOptions, generateAltText } from "./alt-text.ts";
import {
  type Look,
  lookOf,
  VISUAL_ATTRIBUTE_NAMES,
  VISUAL_ATTRIBUTES,
  type VisualAttribute,
  visionSeed,
} from "./attributes.ts";
import { IDENTITY_SENTENCES, VISUAL_SENTENCES } from "./captions.ts";

/** One (picture, alt-text) pair; the picture is `renderPicture(look, seed)`. */
export interface PoolPair {
  /** `pool:<index>`: how errors name it. */
  readonly id: string;
  readonly entityId: number;
  readonly look: Look;
  readonly seed: number;
  readonly text: string;
}

/** `size` pairs, entities by popularity, in a seeded order; deterministic in the world, size, seed and options. */
export function rawPicturePool(
  world: World,
  size: number,
  seed: number,
  altText: Partial<AltTextOptions> = {},
): PoolPair[] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`picture pool: size must be an integer ≥ 1, got ${size}`);
  const rng = createRng(hashString(`picture-pool:${world.options.seed}:${seed}`));
  const sample = weightedSampler(world.entities.map((e) => e.popularity));
  return Array.from({ length: size }, (_, index) => {
    const entity = world.entities[sample(rng)]!;
    const look = lookOf(world, entity);
    const pictureSeed = visionSeed(world, "pool", seed, index);
    const ref = { id: `pool:${index}`, entityId: entity.id, index, seed: pictureSeed, look };
    return { id: ref.id, entityId: entity.id, look, seed: pictureSeed, text: generateAltText(world, ref, altText) };
  });
}

/** A metadata entry: the text MetaCLIP matches, and the prompts that say it (CiT and zero-shot embed them). */
export interface MetadataEntry {
  readonly entry: string;
  readonly prompts: readonly string[];
}

/** The prompts naming an entity: "a picture of NAME ." and its variants. */
export const entityPrompts = (name: string): string[] => IDENTITY_SENTENCES.map((s) => s.replace("{S}", name));

/** The prompts for one attribute value, with nobody named: "the person has red hair ." and its variants. */
export const attributePrompts = (attribute: VisualAttribute, value: string): string[] =>
  VISUAL_SENTENCES[attribute].unnamed.map((s) => s.replace("{V}", value));

/** Every entity name (id order), then every visual value (first-seen order) with the prompts of every attribute it is a value of. */
export function pictureMetadata(world: World): MetadataEntry[] {
  const values = new Map<string, string[]>();
  for (const attribute of VISUAL_ATTRIBUTE_NAMES)
    for (const value of VISUAL_ATTRIBUTES[attribute].words as readonly string[])
      values.set(value, [...(values.get(value) ?? []), ...attributePrompts(attribute, value)]);
  return [
    ...world.entities.map((e) => ({ entry: e.name, prompts: entityPrompts(e.name) })),
    ...[...values].map(([entry, prompts]) => ({ entry, prompts })),
  ];
}

/** A held-out picture for zero-shot classification. */
export interface ZeroShotPicture {
  readonly entityId: number;
  readonly look: Look;
  readonly seed: number;
  readonly bucket: PopularityBucket;
}

/** `perEntity` fresh renders of every entity (seeds no pool uses), so every bucket is measured alike. */
export function zeroShotPictures(world: World, perEntity: number): ZeroShotPicture[] {
  if (!Number.isInteger(perEntity) || perEntity < 1)
    throw new Error(`zero-shot pictures: perEntity must be an integer ≥ 1, got ${perEntity}`);
  return world.entities.flatMap((entity) =>
    Array.from({ length: perEntity }, (_, i) => ({
      entityId: entity.id,
      look: lookOf(world, entity),
      seed: visionSeed(world, "zero-shot", entity.id, i),
      bucket: popularityBucket(entity),
    })),
  );
}
