/**
 * The picture half of a vision pretraining stream: pictures of entities in proportion to their
 * popularity (as the text corpus mentions them), each with a caption of what it shows — named or
 * not, in varied sentences, sometimes with a fact. A model pretrained on it learns what the head
 * looks like well and the tail poorly, so a captioner made from it names tail entities wrongly: the
 * hallucination the caption task's RL is for. Its pictures are new renders (their own seeds), never
 * the caption task's prompt pictures.
 */
import { claimSentence } from "../factworld/grammar.ts";
import { createRng, hashString, weightedSampler } from "../factworld/random.ts";
import type { World } from "../factworld/world.ts";
import { ATTRIBUTES_OF_TYPE, type Look, lookOf } from "./attributes.ts";
import { IDENTITY_SENTENCES, visualSentence } from "./captions.ts";

export interface PictureDocument {
  readonly entityId: number;
  readonly look: Look;
  /** The picture's render seed (renderPicture(look, seed)). */
  readonly seed: number;
  /** What the picture shows, in caption sentences. */
  readonly caption: string;
}

/** `count` picture documents, entities drawn by popularity; deterministic in the world, count and seed. */
export function pictureDocuments(world: World, count: number, seed: number): PictureDocument[] {
  if (!Number.isInteger(count) || count < 0)
    throw new Error(`picture documents: count must be an integer ≥ 0, got ${count}`);
  const rng = createRng(hashString(`picture-corpus:${world.options.seed}:${seed}`));
  const sample = weightedSampler(world.entities.map((e) => e.popularity));
  return Array.from({ length: count }, (_, i) => {
    const entity = world.entities[sample(rng)]!;
    const look = lookOf(world, entity);
    const named = rng.chance(0.7);
    const name = named ? entity.name : undefined;
    const sentences: string[] = [];
    if (named && rng.chance(0.5)) sentences.push(rng.pick(IDENTITY_SENTENCES).replace("{S}", entity.name));
    for (const attribute of ATTRIBUTES_OF_TYPE[look.type])
      if (rng.chance(0.8))
        sentences.push(
          visualSentence(attribute, look.values[attribute]!, rng.chance(0.5) ? name : undefined, rng.int(0, 1)),
        );
    if (named && entity.facts.length > 0 && rng.chance(0.3)) {
      const fact = rng.pick(entity.facts);
      sentences.push(claimSentence({ subject: entity.name, relation: fact.relation, object: fact.object }));
    }
    return { entityId: entity.id, look, seed: hashString(`picture-corpus:${seed}:${i}`), caption: sentences.join(" ") };
  });
}
