/**
 * FactWorld's knowledge base: a seeded world of fictional people, places, organisations and works,
 * with attributes and relations, Zipf-distributed popularity, and a share of confusable names that
 * differ from another entity's name in one syllable (the look-alike cases where models hallucinate).
 */
import { createRng, type Rng, shuffled, weightedSampler } from "./random.ts";
import {
  type EntityType,
  FIRST_YEAR,
  GENRES,
  LAST_YEAR,
  OCCUPATIONS,
  ORG_KINDS,
  PLACE_KINDS,
  REGIONS,
  RELATIONS_OF_TYPE,
  type Relation,
  WORK_KINDS,
} from "./schema.ts";

export interface WorldOptions {
  readonly seed: number;
  readonly people: number;
  readonly places: number;
  readonly organisations: number;
  readonly works: number;
  /** Share of entities (per type) whose name is a one-syllable variant of another entity's name. */
  readonly confusableShare: number;
  /** Popularity of the entity of rank r is proportional to 1 / r^zipfExponent. */
  readonly zipfExponent: number;
}

/** Named sizes: `tiny` for tests, `default` for experiments (small enough to pretrain on 2 cores). */
export const WORLD_SIZES = {
  tiny: { seed: 7, people: 12, places: 6, organisations: 5, works: 8, confusableShare: 0.25, zipfExponent: 1 },
  default: {
    seed: 1,
    people: 160,
    places: 60,
    organisations: 60,
    works: 120,
    confusableShare: 0.15,
    zipfExponent: 1.1,
  },
} as const satisfies Record<string, WorldOptions>;
export type WorldSize = keyof typeof WORLD_SIZES;

/** One fact: `subject relation object`, the object written as the text answers use (a name, a year, a word). */
export interface Fact {
  readonly subject: number;
  readonly relation: Relation;
  readonly object: string;
  /** When the object is an entity, its id. */
  readonly objectId?: number;
}

export type PopularityBucket = "head" | "torso" | "tail";

export interface Entity {
  readonly id: number;
  readonly type: EntityType;
  readonly name: string;
  /** 1 = most popular. */
  readonly rank: number;
  /** Share of all mentions (sums to 1 over the world). */
  readonly popularity: number;
  /** rank / number of entities, in (0, 1]. */
  readonly rankFraction: number;
  /** The entity whose name this one's differs from in one syllable, if any (symmetric). */
  readonly confusableWith: number | null;
  readonly facts: readonly Fact[];
}

export interface World {
  readonly options: WorldOptions;
  readonly entities: readonly Entity[];
  readonly byName: ReadonlyMap<string, Entity>;
  /** Every word used in a name (each a word of the tokenizer's vocabulary). */
  readonly nameWords: readonly string[];
}

/** Head = the top 10 % by popularity, torso = the next 30 %, tail = the rest (FActScore-style buckets). */
export function popularityBucket(entity: Entity): PopularityBucket {
  if (entity.rankFraction <= 0.1) return "head";
  if (entity.rankFraction <= 0.4) return "torso";
  return "tail";
}

/** The values the knowledge base holds for one relation of an entity (several for set-valued relations). */
export function valuesOf(entity: Entity, relation: Relation): string[] {
  return entity.facts.filter((f) => f.relation === relation).map((f) => f.object);
}

/** Words that open sentences of the grammar or prompts; names must never equal them. */
const RESERVED_NAMES = new Set(["Little", "The", "It", "Tell", "What", "Write", "Explain", "Describe", "Give", "Who"]);

const ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "h", "j"];
const NUCLEI = ["a", "e", "i", "o", "u"];
const SYLLABLES = ONSETS.flatMap((c) => NUCLEI.map((v) => c + v));
const capitalise = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

/** A name word is kept as its syllables, so a confusable twin can swap exactly one. */
type Syllables = readonly string[];
const wordOf = (syllables: Syllables) => capitalise(syllables.join(""));

class NameMaker {
  private readonly used = new Set<string>();
  constructor(private readonly rng: Rng) {}

  fresh(minSyllables: number, maxSyllables: number): Syllables {
    for (;;) {
      const n = this.rng.int(minSyllables, maxSyllables);
      const syllables = Array.from({ length: n }, () => this.rng.pick(SYLLABLES));
      if (this.claim(syllables)) return syllables;
    }
  }

  /** The same syllables with exactly one replaced; the result is a new, unused word. */
  variant(base: Syllables): Syllables {
    for (;;) {
      const at = this.rng.int(0, base.length - 1);
      const syllables = base.map((s, i) => (i === at ? this.rng.pick(SYLLABLES) : s));
      if (syllables[at] !== base[at] && this.claim(syllables)) return syllables;
    }
  }

  private claim(syllables: Syllables): boolean {
    const word = wordOf(syllables);
    if (this.used.has(word) || RESERVED_NAMES.has(word)) return false;
    this.used.add(word);
    return true;
  }
}

/**
 * A name in the world's style that no entity has, with as many words as `like`: each word is one of
 * the world's name words or a new word of 2–3 syllables, at even odds — so made-up names include
 * look-alikes of real ones (a known given name, an unknown family name), which only copying tells apart.
 */
export function madeUpName(world: World, rng: Rng, like: string): string {
  for (;;) {
    const words = like
      .split(" ")
      .map(() =>
        rng.chance(0.5)
          ? rng.pick(world.nameWords)
          : wordOf(Array.from({ length: rng.int(2, 3) }, () => rng.pick(SYLLABLES))),
      );
    const name = words.join(" ");
    if (!world.byName.has(name) && !words.some((w) => RESERVED_NAMES.has(w))) return name;
  }
}

interface Draft {
  id: number;
  type: EntityType;
  /** Each name word as syllables: one word, or given + family name for people. */
  name: Syllables[];
  confusableWith: number | null;
  facts: Fact[];
}

/** A world as configs name it: a size preset, or a preset with any of its options overridden. */
export type WorldSpec =
  | WorldSize
  | ({ readonly size?: WorldSize } & { readonly [K in keyof WorldOptions]?: WorldOptions[K] | undefined });

const WORLD_OPTION_KEYS = ["size", ...(Object.keys(WORLD_SIZES.default) as (keyof WorldOptions)[])] as const;

/** The world a spec names (an absent or undefined option keeps the preset's value; other keys are ignored). */
export function worldFromSpec(spec: WorldSpec): World {
  if (typeof spec === "string") return generateWorld({ size: spec });
  const given = spec as Readonly<Record<string, unknown>>;
  const defined = Object.fromEntries(
    WORLD_OPTION_KEYS.flatMap((key) => (given[key] === undefined ? [] : [[key, given[key]]])),
  );
  return generateWorld(defined as Partial<WorldOptions> & { size?: WorldSize });
}

export function generateWorld(options: Partial<WorldOptions> & { size?: WorldSize } = {}): World {
  const { size = "default", ...overrides } = options;
  const opts: WorldOptions = { ...WORLD_SIZES[size], ...overrides };
  const rng = createRng(opts.seed);
  const names = new NameMaker(rng);
  const givenNames = Array.from({ length: Math.max(4, Math.ceil(Math.sqrt(opts.people) * 2)) }, () =>
    names.fresh(2, 2),
  );

  const drafts: Draft[] = [];
  const makeType = (type: EntityType, count: number) => {
    const firstOfType = drafts.length;
    const confusables = Math.floor(count * opts.confusableShare);
    for (let k = 0; k < count; k++) {
      const id = drafts.length;
      // The last `confusables` entities of each type are one-syllable variants of the first ones.
      const baseIndex = k - (count - confusables);
      if (baseIndex >= 0 && baseIndex < count - confusables) {
        const base = drafts[firstOfType + baseIndex] as Draft;
        const last = base.name.length - 1;
        const name = base.name.map((w, i) => (i === last ? names.variant(w) : w));
        base.confusableWith = id;
        drafts.push({ id, type, name, confusableWith: base.id, facts: [] });
      } else {
        const name = type === "person" ? [rng.pick(givenNames), names.fresh(2, 3)] : [names.fresh(2, 3)];
        drafts.push({ id, type, name, confusableWith: null, facts: [] });
      }
    }
  };
  makeType("person", opts.people);
  makeType("place", opts.places);
  makeType("organisation", opts.organisations);
  makeType("work", opts.works);

  // Zipf popularity over a random ranking of all entities.
  const ranking = shuffled(
    rng,
    drafts.map((d) => d.id),
  );
  const rankOf = new Int32Array(drafts.length);
  ranking.forEach((id, i) => {
    rankOf[id] = i + 1;
  });
  const weights = drafts.map((d) => 1 / (rankOf[d.id] as number) ** opts.zipfExponent);
  const totalWeight = weights.reduce((a, b) => a + b, 0);

  const nameOf = (d: Draft) => d.name.map(wordOf).join(" ");
  const ofType = (type: EntityType) => drafts.filter((d) => d.type === type);
  // Popular places and organisations attract more relations, as in the real world.
  const sampleOfType = (type: EntityType) => {
    const pool = ofType(type);
    if (pool.length === 0) return () => null;
    const sample = weightedSampler(pool.map((d) => weights[d.id] as number));
    return () => pool[sample(rng)] as Draft;
  };
  const samplePlace = sampleOfType("place");
  const sampleOrganisation = sampleOfType("organisation");
  const samplePerson = sampleOfType("person");

  const birthYear = new Map<number, number>();
  const addFact = (subject: Draft, relation: Relation, object: string | Draft) => {
    if (typeof object === "string") subject.facts.push({ subject: subject.id, relation, object });
    else subject.facts.push({ subject: subject.id, relation, object: nameOf(object), objectId: object.id });
  };
  const year = (lo: number, hi: number) => String(Math.min(LAST_YEAR, Math.max(FIRST_YEAR, rng.int(lo, hi))));

  for (const d of ofType("person")) {
    const born = rng.int(FIRST_YEAR, 1930);
    birthYear.set(d.id, born);
    addFact(d, "occupation", rng.pick(OCCUPATIONS));
    addFact(d, "birth_year", String(born));
    const birthplace = samplePlace();
    if (birthplace && rng.chance(0.9)) addFact(d, "birthplace", birthplace);
    const employer = sampleOrganisation();
    if (employer && rng.chance(0.6)) addFact(d, "employer", employer);
  }
  for (const d of ofType("place")) {
    addFact(d, "place_kind", rng.pick(PLACE_KINDS));
    addFact(d, "region", rng.pick(REGIONS));
    if (rng.chance(0.6)) addFact(d, "founded_year", year(FIRST_YEAR, 1950));
  }
  for (const d of ofType("organisation")) {
    addFact(d, "org_kind", rng.pick(ORG_KINDS));
    const founder = rng.chance(0.85) ? samplePerson() : null;
    const base = founder ? (birthYear.get(founder.id) as number) : rng.int(FIRST_YEAR - 40, 1940);
    addFact(d, "founded_year", year(base + 20, base + 50));
    if (founder) addFact(d, "founder", founder);
    const headquarters = samplePlace();
    if (headquarters && rng.chance(0.9)) addFact(d, "headquarters", headquarters);
  }
  for (const d of ofType("work")) {
    addFact(d, "work_kind", rng.pick(WORK_KINDS));
    if (rng.chance(0.8)) addFact(d, "genre", rng.pick(GENRES));
    const creator = samplePerson();
    if (creator) {
      addFact(d, "creator", creator);
      const born = birthYear.get(creator.id) as number;
      addFact(d, "created_year", year(born + 18, born + 60));
    } else addFact(d, "created_year", year(FIRST_YEAR, LAST_YEAR));
    const setting = samplePlace();
    if (setting && rng.chance(0.6)) addFact(d, "setting", setting);
  }
  // Inverse relations, so "X wrote W" is a fact about X as well as about W.
  for (const d of drafts) {
    for (const fact of [...d.facts]) {
      if (fact.objectId === undefined) continue;
      const target = drafts[fact.objectId] as Draft;
      if (fact.relation === "creator") addFact(target, "created", d);
      if (fact.relation === "founder") addFact(target, "founded", d);
    }
  }

  const entities: Entity[] = drafts.map((d) => {
    const order = RELATIONS_OF_TYPE[d.type];
    const facts = [...d.facts].sort((a, b) => order.indexOf(a.relation) - order.indexOf(b.relation));
    const rank = rankOf[d.id] as number;
    return {
      id: d.id,
      type: d.type,
      name: nameOf(d),
      rank,
      popularity: (weights[d.id] as number) / totalWeight,
      rankFraction: rank / drafts.length,
      confusableWith: d.confusableWith,
      facts,
    };
  });
  const nameWords = [...new Set(drafts.flatMap((d) => d.name.map(wordOf)))].sort();
  return { options: opts, entities, byName: new Map(entities.map((e) => [e.name, e])), nameWords };
}
