/**
 * The fixed sentence grammar of FactWorld: templates that state facts (used to write the corpus and
 * reference answers) and the parser that reads claims back out of sentences. Text is space-separated
 * words with punctuation as its own word ("Talu Venor was born in Kessa ."). Every claim-bearing
 * sentence starts with its subject's name; names are capitalised words, grammar words are lower case.
 */
import type { Rng } from "./random.ts";
import { inverseOf, type Relation, relationInfo } from "./schema.ts";

/** A template piece: a literal word, or a slot filled by a relation's object. */
type Piece = { readonly literal: string } | { readonly slot: Relation };

export interface Template {
  readonly text: string;
  /** The pieces after the leading subject slot. */
  readonly pieces: readonly Piece[];
  /** The relations the template states, in slot order. */
  readonly relations: readonly Relation[];
}

/** Each template starts with {S}, the subject; other slots name relations. */
const TEMPLATE_TEXTS = [
  // people
  "{S} was born in {birthplace} .",
  "{S} is a native of {birthplace} .",
  "{S} was born in {birth_year} .",
  "{S} was born in the year {birth_year} .",
  "{S} was born in {birthplace} in {birth_year} .",
  "{S} was a {occupation} .",
  "{S} worked as a {occupation} .",
  "{S} worked for {employer} .",
  "{S} was employed by {employer} .",
  "{S} was a {occupation} who worked for {employer} .",
  "{S} created {created} .",
  "{S} is the author of {created} .",
  "{S} founded {founded} .",
  // places
  "{S} is a {place_kind} .",
  "{S} lies in the {region} .",
  "{S} is a {place_kind} in the {region} .",
  "{S} was founded in {founded_year} .",
  "{S} was established in {founded_year} .",
  // organisations
  "{S} is a {org_kind} .",
  "{S} was founded by {founder} .",
  "{S} was founded by {founder} in {founded_year} .",
  "{S} is based in {headquarters} .",
  "{S} has its headquarters in {headquarters} .",
  "{S} is a {org_kind} based in {headquarters} .",
  // works
  "{S} is a {work_kind} .",
  "{S} is a {genre} {work_kind} .",
  "{S} is a {work_kind} by {creator} .",
  "{S} was created by {creator} .",
  "{S} was made by {creator} in {created_year} .",
  "{S} was completed in {created_year} .",
  "{S} is set in {setting} .",
  "{S} belongs to the {genre} genre .",
] as const;

/** Sentences of the grammar that make no verifiable claim (hedges, abstentions, filler). */
export const NO_CLAIM_TEXTS = [
  "Little is known about {S} .",
  "I am not sure about {S} .",
  "I do not know about {S} .",
  "{S} is well known .",
] as const;

function compile(text: string): Template {
  const words = text.split(" ");
  if (words[0] !== "{S}") throw new Error(`template must start with {S}: ${text}`);
  const pieces: Piece[] = words.slice(1).map((w) => {
    const slot = /^\{(\w+)\}$/.exec(w)?.[1];
    return slot ? { slot: slot as Relation } : { literal: w };
  });
  const relations = pieces.flatMap((p) => ("slot" in p ? [p.slot] : []));
  return { text, pieces, relations };
}

export const TEMPLATES: readonly Template[] = TEMPLATE_TEXTS.map(compile);

/** The plain one-fact template for each relation: what reference answers use. */
export const CANONICAL_TEMPLATE = new Map<Relation, Template>();
for (const t of TEMPLATES) {
  const [only] = t.relations;
  if (t.relations.length === 1 && only && !CANONICAL_TEMPLATE.has(only)) CANONICAL_TEMPLATE.set(only, t);
}

/** Every literal word of the grammar (for the vocabulary). */
export const GRAMMAR_WORDS: readonly string[] = [
  ...new Set([...TEMPLATE_TEXTS, ...NO_CLAIM_TEXTS].flatMap((t) => t.split(" ").filter((w) => !w.startsWith("{")))),
];

/** Fills a template; `values` gives each relation's object text. */
export function renderTemplate(template: Template, subject: string, values: Partial<Record<Relation, string>>): string {
  const out = [subject];
  for (const piece of template.pieces) {
    if ("literal" in piece) out.push(piece.literal);
    else {
      const value = values[piece.slot];
      if (value === undefined) throw new Error(`no value for {${piece.slot}} in "${template.text}"`);
      out.push(value);
    }
  }
  return out.join(" ");
}

export const renderNoClaim = (rng: Rng, subject: string) => rng.pick(NO_CLAIM_TEXTS).replace("{S}", subject);

/** A claim as read from text, before verification. */
export interface ParsedClaim {
  readonly subject: string;
  readonly relation: Relation;
  readonly object: string;
}

const isNameWord = (word: string) => {
  const c = word.charCodeAt(0);
  return c >= 65 && c <= 90;
};
const YEAR = /^\d{4}$/;
const WORD_SETS = new Map<Relation, ReadonlySet<string>>();
for (const t of TEMPLATES)
  for (const r of t.relations) {
    const words = relationInfo(r).words;
    if (words) WORD_SETS.set(r, new Set(words));
  }

/** Templates indexed by their first word after the subject, so a sentence tries only a few. */
const BY_FIRST_WORD = new Map<string, Template[]>();
for (const t of TEMPLATES) {
  const first = t.pieces[0];
  if (!first || !("literal" in first)) throw new Error(`template needs a word after {S}: ${t.text}`);
  const list = BY_FIRST_WORD.get(first.literal) ?? [];
  list.push(t);
  BY_FIRST_WORD.set(first.literal, list);
}

/**
 * Matches `words[from..to)` against the template's pieces; returns the slot values in order, or null.
 * Entity slots take a maximal run of capitalised words (names never contain grammar words).
 */
function matchPieces(template: Template, words: readonly string[], from: number, to: number): string[] | null {
  const values: string[] = [];
  let i = from;
  for (const piece of template.pieces) {
    if (i >= to) return null;
    const word = words[i] as string;
    if ("literal" in piece) {
      if (word !== piece.literal) return null;
      i++;
      continue;
    }
    const info = relationInfo(piece.slot);
    if (info.objectKind === "year") {
      if (!YEAR.test(word)) return null;
      values.push(word);
      i++;
    } else if (info.objectKind === "word") {
      if (!WORD_SETS.get(piece.slot)?.has(word)) return null;
      values.push(word);
      i++;
    } else {
      let end = i;
      while (end < to && isNameWord(words[end] as string)) end++;
      if (end === i) return null;
      values.push(words.slice(i, end).join(" "));
      i = end;
    }
  }
  return i === to ? values : null;
}

/**
 * Reads the claims of one sentence, given as its words including the final ".". A sentence that
 * matches no template makes no verifiable claim and yields none (as VeriScore does).
 */
export function parseSentence(words: readonly string[]): ParsedClaim[] {
  let subjectEnd = 0;
  while (subjectEnd < words.length && isNameWord(words[subjectEnd] as string)) subjectEnd++;
  if (subjectEnd === 0 || subjectEnd === words.length) return [];
  const candidates = BY_FIRST_WORD.get(words[subjectEnd] as string);
  if (!candidates) return [];
  const subject = words.slice(0, subjectEnd).join(" ");
  for (const template of candidates) {
    const values = matchPieces(template, words, subjectEnd, words.length);
    if (values) return template.relations.map((relation, k) => ({ subject, relation, object: values[k] as string }));
  }
  return [];
}

/** A claim written as one self-contained sentence (VeriScore-style claim text). */
export function claimSentence(claim: ParsedClaim): string {
  const template = CANONICAL_TEMPLATE.get(claim.relation);
  if (!template) throw new Error(`no template for ${claim.relation}`);
  return renderTemplate(template, claim.subject, { [claim.relation]: claim.object });
}

/**
 * Whether two claims state the same fact, read from either side: "W was created by P" is the same
 * fact as "P created W", so an answer cannot earn detail by stating it both ways.
 */
export function sameClaim(a: ParsedClaim, b: ParsedClaim): boolean {
  if (a.relation === b.relation) return a.subject === b.subject && a.object === b.object;
  return inverseOf(a.relation) === b.relation && a.subject === b.object && a.object === b.subject;
}
