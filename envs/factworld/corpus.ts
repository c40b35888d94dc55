/**
 * The pretraining corpus: short documents, each about one entity chosen in proportion to its
 * popularity, stating its facts with varied templates. A small share of documents is garbled on
 * purpose (shuffled, repeated, substituted or truncated words) as food for a text-quality filter.
 */
import { GRAMMAR_WORDS, renderTemplate, TEMPLATES, type Template } from "./grammar.ts";
import { createRng, type Rng, shuffled, weightedSampler } from "./random.ts";
import { type Relation, relationInfo } from "./schema.ts";
import type { Entity, World } from "./world.ts";

export interface CorpusOptions {
  readonly seed: number;
  /** Number of documents; default 50 per entity. */
  readonly documents?: number;
  readonly minSentences: number;
  readonly maxSentences: number;
  /** Share of documents that are garbled. */
  readonly noiseRate: number;
  /**
   * Per line (sentence) of an ungarbled document, the chance that a low-quality line follows it — web
   * boilerplate, a repeated line, a truncated sentence or a wrong fact, equally likely — for a
   * text-quality filter to find. 0 (the default) leaves the corpus exactly as without the option.
   */
  readonly lowQualityRate?: number;
}

export const DEFAULT_CORPUS_OPTIONS: CorpusOptions = { seed: 1, minSentences: 2, maxSentences: 5, noiseRate: 0.05 };

export interface CorpusDocument {
  readonly id: number;
  /** The entity the document is about. */
  readonly entityId: number;
  /** Space-separated words, sentences ending with "." */
  readonly text: string;
  /** True when the document was garbled on purpose. */
  readonly noisy: boolean;
  /** The document's lines (its sentences; a garbled document is one line): `text` is them joined by spaces. */
  readonly lines: readonly string[];
  /** The low-quality lines added (`lowQualityRate`), by index into `lines`. */
  readonly lowQuality?: readonly { readonly line: number; readonly kind: LowQualityKind }[];
}

export const LOW_QUALITY_KINDS = ["boilerplate", "repeated", "truncated", "wrong-fact"] as const;
export type LowQualityKind = (typeof LOW_QUALITY_KINDS)[number];

/** Web-page furniture, written in the language's own words (so every word is in the vocabulary). */
export const BOILERPLATE_LINES: readonly string[] = [
  "Tell me about the works .",
  "What do you know ?",
  "Write a short paragraph .",
  "Give an overview .",
  "Explain who was .",
  "Describe the place .",
];

/** Templates whose every relation the entity has a value for. */
function applicableTemplates(entity: Entity): Template[] {
  const has = new Set(entity.facts.map((f) => f.relation));
  return TEMPLATES.filter((t) => t.relations.every((r) => has.has(r)));
}

/** One sentence about the entity from a random applicable template (random value for set relations). */
function factSentence(rng: Rng, entity: Entity, templates: readonly Template[]): string {
  const template = rng.pick(templates);
  const values: Partial<Record<Relation, string>> = {};
  for (const relation of template.relations) {
    const options = entity.facts.filter((f) => f.relation === relation);
    values[relation] = rng.pick(options).object;
  }
  return renderTemplate(template, entity.name, values);
}

function garble(rng: Rng, words: string[], fillers: readonly string[]): string[] {
  switch (rng.int(0, 3)) {
    case 0:
      return shuffled(rng, words);
    case 1: {
      const at = rng.int(0, words.length - 1);
      const run = words.slice(at, at + rng.int(1, 3));
      return [...words.slice(0, at), ...Array.from({ length: rng.int(3, 6) }, () => run).flat(), ...words.slice(at)];
    }
    case 2:
      return words.map((w) => (rng.chance(0.4) ? rng.pick(fillers) : w));
    default:
      return words.slice(0, Math.max(1, rng.int(1, Math.floor(words.length / 2))));
  }
}

export function generateCorpus(world: World, options: Partial<CorpusOptions> = {}): CorpusDocument[] {
  const opts = { ...DEFAULT_CORPUS_OPTIONS, ...options };
  if (opts.minSentences < 1 || opts.maxSentences < opts.minSentences)
    throw new Error(`corpus: need 1 ≤ minSentences ≤ maxSentences, got ${opts.minSentences}..${opts.maxSentences}`);
  if (opts.noiseRate < 0 || opts.noiseRate > 1)
    throw new Error(`corpus: noiseRate must be in [0, 1], got ${opts.noiseRate}`);
  const lowQualityRate = opts.lowQualityRate ?? 0;
  if (!(lowQualityRate >= 0 && lowQualityRate <= 1))
    throw new Error(`corpus: lowQualityRate must be in [0, 1], got ${lowQualityRate}`);
  const rng = createRng(opts.seed);
  const count = opts.documents ?? 50 * world.entities.length;
  const sample = weightedSampler(world.entities.map((e) => e.popularity));
  const templatesOf = world.entities.map(applicableTemplates);
  const fillers = [...world.nameWords, ...GRAMMAR_WORDS, ...(relationInfo("occupation").words ?? [])];

  const docs: CorpusDocument[] = [];
  for (let id = 0; id < count; id++) {
    const entity = world.entities[sample(rng)] as Entity;
    const templates = templatesOf[entity.id] as Template[];
    // Distinct sentences where the entity has enough facts; a few retries keep this cheap.
    const sentences = new Set<string>();
    const wanted = rng.int(opts.minSentences, opts.maxSentences);
    for (let attempt = 0; sentences.size < wanted && attempt < 3 * wanted; attempt++)
      sentences.add(factSentence(rng, entity, templates));
    const noisy = rng.chance(opts.noiseRate);
    const words = [...sentences].join(" ").split(" ");
    const text = (noisy ? garble(rng, words, fillers) : words).join(" ");
    docs.push({ id, entityId: entity.id, text, noisy, lines: noisy ? [text] : [...sentences] });
  }
  // A pass of its own, with its own random stream: the corpus without it is the corpus as it always was.
  return lowQualityRate > 0 ? addLowQualityLines(world, docs, templatesOf, lowQualityRate, opts.seed) : docs;
}

/** The first half of a sentence (at least two words), without its final punctuation. */
const truncated = (sentence: string) => {
  const words = sentence.split(" ");
  return words.slice(0, Math.max(2, Math.floor(words.length / 2))).join(" ");
};

/** A sentence about `entity` stating a one-valued fact with another entity's value for it, or undefined. */
function wrongFact(rng: Rng, world: World, entity: Entity, templates: readonly Template[]): string | undefined {
  const single = templates.filter((t) => t.relations.length === 1 && !relationInfo(t.relations[0]!).many);
  if (single.length === 0) return undefined;
  const template = rng.pick(single);
  const relation = template.relations[0]!;
  const own = new Set(entity.facts.filter((f) => f.relation === relation).map((f) => f.object));
  const others = world.entities.flatMap((e) =>
    e.facts.filter((f) => f.relation === relation && !own.has(f.object)).map((f) => f.object),
  );
  return others.length === 0 ? undefined : renderTemplate(template, entity.name, { [relation]: rng.pick(others) });
}

function addLowQualityLines(
  world: World,
  docs: readonly CorpusDocument[],
  templatesOf: readonly Template[][],
  rate: number,
  seed: number,
): CorpusDocument[] {
  const rng = createRng((seed * 2654435761) ^ 0x51ed27);
  return docs.map((doc) => {
    if (doc.noisy) return doc;
    const entity = world.entities[doc.entityId] as Entity;
    const templates = templatesOf[entity.id] as Template[];
    const lines: string[] = [];
    const lowQuality: { line: number; kind: LowQualityKind }[] = [];
    for (const line of doc.lines) {
      lines.push(line);
      if (!rng.chance(rate)) continue;
      const kind = rng.pick(LOW_QUALITY_KINDS);
      const added =
        kind === "boilerplate"
          ? rng.pick(BOILERPLATE_LINES)
          : kind === "repeated"
            ? line
            : kind === "truncated"
              ? truncated(factSentence(rng, entity, templates))
              : wrongFact(rng, world, entity, templates);
      if (added === undefined) continue;
      lowQuality.push({ line: lines.length, kind });
      lines.push(added);
    }
    return lowQuality.length === 0 ? doc : { ...doc, text: lines.join(" "), lines, lowQuality };
  });
}
