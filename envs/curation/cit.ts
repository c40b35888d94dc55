/**
 * CiT's comparison of items to metadata (Xu et al., "CiT: Curation in Training"), over plain vectors
 * so any encoder can feed it: each metadata entry is the normalised mean of its templates' unit
 * embeddings (CLIP's prompt ensembling), and an item's score is its highest cosine similarity to any
 * entry — what `citSelect` keeps or drops.
 */
import type { PopularityBucket, World } from "../factworld/world.ts";
import { popularityBucket } from "../factworld/world.ts";
import { CurationArgumentError } from "./balance.ts";

/** The unit vector along the mean of `vectors` (a metadata entry over its templates); all the same length. */
export function ensembleEmbedding(vectors: readonly Float32Array[]): Float32Array {
  if (vectors.length === 0) throw new CurationArgumentError("vectors", "no template embeddings to average");
  const width = vectors[0]!.length;
  const mean = new Float32Array(width);
  vectors.forEach((v, i) => {
    if (v.length !== width)
      throw new CurationArgumentError("vectors", `vectors[${i}] has ${v.length} dimensions, vectors[0] ${width}`);
    for (let j = 0; j < width; j++) mean[j]! += v[j]! / vectors.length;
  });
  const norm = Math.hypot(...mean);
  return norm > 0 ? mean.map((x) => x / norm) : mean;
}

/**
 * Per item, the highest dot product with any entry: the cosine similarity when both are unit vectors
 * (as `ensembleEmbedding` and the policy's embeddings are). Empty metadata has no maximum: an error.
 */
export function maxSimilarities(items: readonly Float32Array[], entries: readonly Float32Array[]): number[] {
  if (entries.length === 0) throw new CurationArgumentError("entries", "the metadata list is empty");
  const width = entries[0]!.length;
  const badEntry = entries.findIndex((e) => e.length !== width);
  if (badEntry >= 0)
    throw new CurationArgumentError(
      "entries",
      `entries[${badEntry}] has ${entries[badEntry]!.length} dimensions, not ${width}`,
    );
  return items.map((item, i) => {
    if (item.length !== width)
      throw new CurationArgumentError("items", `items[${i}] has ${item.length} dimensions, the entries ${width}`);
    let best = Number.NEGATIVE_INFINITY;
    for (const entry of entries) {
      let dot = 0;
      for (let j = 0; j < width; j++) dot += item[j]! * entry[j]!;
      if (dot > best) best = dot;
    }
    return best;
  });
}

/** The names of the world's entities in one popularity bucket (id order): CiT's `tail` / `head` metadata. */
export const entityNamesIn = (world: World, bucket: PopularityBucket): string[] =>
  world.entities.filter((e) => popularityBucket(e) === bucket).map((e) => e.name);

/** What CiT selects for (`curation.cit.target`): a popularity bucket of the knowledge base, or names. */
export type CitTarget = "tail" | "head" | { readonly entities: readonly string[] };

/**
 * The metadata names of `target`: the listed names, or the names of the knowledge base's entities in
 * the bucket. No knowledge base for a bucket, or no name at all, is an error naming the config path.
 */
export function citTargetNames(target: CitTarget, world: World | undefined, envKind: string): string[] {
  const argument = "curation.cit.target";
  if (typeof target !== "string") {
    if (target.entities.length === 0)
      throw new CurationArgumentError(`${argument}.entities`, "the metadata list is empty");
    return [...target.entities];
  }
  if (!world)
    throw new CurationArgumentError(
      argument,
      `${target} selects for the knowledge base's ${target} entities; env.kind ${envKind} has none — name them instead ({ entities: [NAME, …] })`,
    );
  const names = entityNamesIn(world, target);
  if (names.length === 0)
    throw new CurationArgumentError(argument, `the knowledge base has no ${target} entities: the metadata is empty`);
  return names;
}

/** Every template with `{}` replaced by `name` (each template's every `{}`). */
export const fillTemplates = (templates: readonly string[], name: string): string[] =>
  templates.map((t) => t.replaceAll("{}", name));
