/**
 * The vocabulary of FactWorld's knowledge: entity types, relations, and the closed word lists that
 * literal attributes take their values from. Every other FactWorld file builds on these names.
 */

export const ENTITY_TYPES = ["person", "place", "organisation", "work"] as const;
export type EntityType = (typeof ENTITY_TYPES)[number];

/** How a relation's object is written: an entity's name, a four-digit year, or a word from a closed list. */
export type ObjectKind = "entity" | "year" | "word";

export interface RelationInfo {
  readonly objectKind: ObjectKind;
  /** For entity objects: the object's type. */
  readonly objectType?: EntityType;
  /** For word objects: the closed list of values. */
  readonly words?: readonly string[];
  /** Set-valued relations (a person wrote several works); all others hold one value. */
  readonly many?: boolean;
  /** The relation read from the object's side (created ↔ creator). */
  readonly inverse?: string;
  /** How prompts and reasoning name this aspect. */
  readonly phrase: string;
}

export const OCCUPATIONS = [
  "painter",
  "poet",
  "sailor",
  "merchant",
  "physician",
  "teacher",
  "singer",
  "farmer",
  "scholar",
  "banker",
  "weaver",
  "potter",
  "soldier",
  "carpenter",
  "lawyer",
  "musician",
  "chemist",
  "builder",
] as const;
export const PLACE_KINDS = ["city", "town", "village", "port", "fortress", "spa"] as const;
export const REGIONS = ["north", "south", "east", "west", "midlands", "highlands", "lowlands", "delta"] as const;
export const ORG_KINDS = [
  "company",
  "guild",
  "bank",
  "university",
  "museum",
  "newspaper",
  "shipyard",
  "school",
  "theatre",
] as const;
export const WORK_KINDS = ["novel", "poem", "painting", "play", "song", "film", "sculpture", "symphony"] as const;
export const GENRES = ["comedy", "tragedy", "romance", "mystery", "satire", "fable", "legend"] as const;

export const RELATIONS = {
  birth_year: { objectKind: "year", phrase: "year of birth" },
  birthplace: { objectKind: "entity", objectType: "place", phrase: "place of birth" },
  occupation: { objectKind: "word", words: OCCUPATIONS, phrase: "occupation" },
  employer: { objectKind: "entity", objectType: "organisation", phrase: "employer" },
  created: {
    objectKind: "entity",
    objectType: "work",
    many: true,
    inverse: "creator",
    phrase: "works",
  },
  founded: {
    objectKind: "entity",
    objectType: "organisation",
    many: true,
    inverse: "founder",
    phrase: "foundations",
  },
  place_kind: { objectKind: "word", words: PLACE_KINDS, phrase: "kind of place" },
  region: { objectKind: "word", words: REGIONS, phrase: "region" },
  founded_year: { objectKind: "year", phrase: "year of founding" },
  org_kind: { objectKind: "word", words: ORG_KINDS, phrase: "kind of organisation" },
  founder: {
    objectKind: "entity",
    objectType: "person",
    inverse: "founded",
    phrase: "founder",
  },
  headquarters: { objectKind: "entity", objectType: "place", phrase: "headquarters" },
  work_kind: { objectKind: "word", words: WORK_KINDS, phrase: "kind of work" },
  genre: { objectKind: "word", words: GENRES, phrase: "genre" },
  creator: { objectKind: "entity", objectType: "person", inverse: "created", phrase: "creator" },
  created_year: { objectKind: "year", phrase: "year of creation" },
  setting: { objectKind: "entity", objectType: "place", phrase: "setting" },
} as const satisfies Record<string, RelationInfo>;

export type Relation = keyof typeof RELATIONS;
export const RELATION_NAMES = Object.keys(RELATIONS) as Relation[];

export const relationInfo = (relation: Relation): RelationInfo => RELATIONS[relation];
export const inverseOf = (relation: Relation): Relation | undefined =>
  relationInfo(relation).inverse as Relation | undefined;

/** The relations an entity of this type can have, in the order answers and prompts list them. */
export const RELATIONS_OF_TYPE: Record<EntityType, readonly Relation[]> = {
  person: ["occupation", "birth_year", "birthplace", "employer", "created", "founded"],
  place: ["place_kind", "region", "founded_year"],
  organisation: ["org_kind", "founded_year", "founder", "headquarters"],
  work: ["work_kind", "genre", "creator", "created_year", "setting"],
};

export const isRelation = (name: string): name is Relation => Object.hasOwn(RELATIONS, name);

/** Years the world uses (each is one word of the vocabulary). */
export const FIRST_YEAR = 1800;
export const LAST_YEAR = 1999;
