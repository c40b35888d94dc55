/**
 * Prompt suites modelled on the six long-form factuality benchmarks of the paper, each prompt with
 * its focus (entity and asked aspects). Train and eval splits are disjoint by focus entity.
 */
import { createRng, hashString, type Rng, shuffled } from "./random.ts";
import { type EntityType, RELATION_NAMES, type Relation, relationInfo } from "./schema.ts";
import { type Entity, type PopularityBucket, popularityBucket, type World } from "./world.ts";

export const SUITES = ["bio", "longfact", "factory", "fava", "alpacafact", "factbench-hard"] as const;
export type Suite = (typeof SUITES)[number];
export type Split = "train" | "eval";

export interface PromptFocus {
  readonly entityId: number;
  readonly entity: string;
  /** The relations the prompt asks about. */
  readonly aspects: readonly Relation[];
}

export interface Prompt {
  /** `suite:entityId`, stable for a given world. */
  readonly id: string;
  readonly suite: Suite;
  readonly text: string;
  readonly split: Split;
  readonly focus: PromptFocus;
  readonly bucket: PopularityBucket;
}

export interface PromptOptions {
  readonly seed: number;
  /** Share of entities whose prompts all go to the eval split. */
  readonly evalFraction: number;
}

export const DEFAULT_PROMPT_OPTIONS: PromptOptions = { seed: 1, evalFraction: 0.2 };

const ALPACA_TEXT: Record<EntityType, string> = {
  person: "Explain who {S} was .",
  place: "Describe the place {S} .",
  organisation: "Give an overview of {S} .",
  work: "Describe the work {S} .",
};

/** Prompt texts per suite; {S} is the entity's name, {A} the list of asked aspects. */
const SUITE_TEXT: Record<Exclude<Suite, "alpacafact">, string> = {
  bio: "Tell me a bio of {S} .",
  longfact: "Tell me about {S} .",
  factory: "What are {A} of {S} ?",
  fava: "Write a short paragraph about {S} that mentions {A} .",
  "factbench-hard": "What do you know about {S} ?",
};

/** "the genre", "the genre and the setting", "the genre , the setting and the creator". */
export function aspectList(aspects: readonly Relation[]): string {
  const phrases = aspects.map((a) => `the ${relationInfo(a).phrase}`);
  if (phrases.length <= 1) return phrases.join("");
  return `${phrases.slice(0, -1).join(" , ")} and ${phrases.at(-1)}`;
}

/** Every word prompts can contain apart from names (for the vocabulary). */
export const PROMPT_WORDS: readonly string[] = [
  ...new Set(
    [...Object.values(SUITE_TEXT), ...Object.values(ALPACA_TEXT), aspectList(RELATION_NAMES)]
      .flatMap((t) => t.split(" "))
      .filter((w) => !w.startsWith("{")),
  ),
];

/** The relations the knowledge base holds for the entity, in canonical order. */
export const knownAspects = (entity: Entity): Relation[] => [...new Set(entity.facts.map((f) => f.relation))];

const fill = (text: string, entity: Entity, aspects: readonly Relation[]) =>
  text.replace("{S}", entity.name).replace("{A}", aspectList(aspects));

/**
 * A FACTORY-style prompt must be verified answerable (the knowledge base holds every asked aspect)
 * and unambiguous (the name is unique and has no look-alike).
 */
export function isAnswerableAndUnambiguous(world: World, focus: PromptFocus): boolean {
  const entity = world.byName.get(focus.entity);
  if (!entity || entity.id !== focus.entityId || entity.confusableWith !== null) return false;
  const known = new Set(knownAspects(entity));
  return focus.aspects.length > 0 && focus.aspects.every((a) => known.has(a));
}

function promptFor(rng: Rng, world: World, suite: Suite, entity: Entity): Omit<Prompt, "split" | "bucket"> | null {
  const all = knownAspects(entity);
  const make = (text: string, aspects: readonly Relation[]) => ({
    id: `${suite}:${entity.id}`,
    suite,
    text: fill(text, entity, aspects),
    focus: { entityId: entity.id, entity: entity.name, aspects },
  });
  switch (suite) {
    case "bio":
      return entity.type === "person" ? make(SUITE_TEXT.bio, all) : null;
    case "longfact":
      return make(SUITE_TEXT.longfact, all);
    case "factory": {
      if (popularityBucket(entity) !== "tail" || all.length < 2) return null;
      const asked = shuffled(rng, all).slice(0, 2);
      const aspects = all.filter((a) => asked.includes(a));
      const prompt = make(SUITE_TEXT.factory, aspects);
      return isAnswerableAndUnambiguous(world, prompt.focus) ? prompt : null;
    }
    case "fava": {
      if (all.length < 2) return null;
      const asked = shuffled(rng, all).slice(0, Math.min(3, all.length));
      return make(
        SUITE_TEXT.fava,
        all.filter((a) => asked.includes(a)),
      );
    }
    case "alpacafact":
      return make(ALPACA_TEXT[entity.type], all);
    case "factbench-hard":
      return entity.confusableWith === null ? null : make(SUITE_TEXT["factbench-hard"], all);
  }
}

/** An entity's split: every prompt about it (text or picture) goes to the same one, for a given seed. */
export const entitySplit = (seed: number, entityId: number, evalFraction: number): Split =>
  createRng(hashString(`${seed}:${entityId}`)).next() < evalFraction ? "eval" : "train";

/** All six suites for every eligible entity; each entity's prompts share one split. */
export function generatePrompts(world: World, options: Partial<PromptOptions> = {}): Prompt[] {
  const opts = { ...DEFAULT_PROMPT_OPTIONS, ...options };
  if (opts.evalFraction < 0 || opts.evalFraction > 1)
    throw new Error(`prompts: evalFraction must be in [0, 1], got ${opts.evalFraction}`);
  const rng = createRng(opts.seed);
  const prompts: Prompt[] = [];
  for (const suite of SUITES)
    for (const entity of world.entities) {
      const prompt = promptFor(rng, world, suite, entity);
      if (!prompt) continue;
      const split = entitySplit(opts.seed, entity.id, opts.evalFraction);
      prompts.push({ ...prompt, split, bucket: popularityBucket(entity) });
    }
  return prompts;
}

/**
 * A prompt log made from prompts: each repeated 1 + round(scale · popularity of its entity) times, as
 * real prompt sets ask about popular entities more (the pool MetaCLIP balancing is for). The first
 * copy keeps its id, the others are `id#k`; scale 0 returns the prompts as they are.
 */
export function popularityLog(world: World, prompts: readonly Prompt[], scale: number): Prompt[] {
  if (!(scale >= 0 && Number.isFinite(scale)))
    throw new Error(`prompts: scale must be a finite number ≥ 0, got ${scale}`);
  return prompts.flatMap((p) =>
    Array.from({ length: 1 + Math.round(scale * world.entities[p.focus.entityId]!.popularity) }, (_, k) =>
      k === 0 ? p : { ...p, id: `${p.id}#${k}` },
    ),
  );
}
