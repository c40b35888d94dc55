/**
 * Captions of pictures in FactWorld's style: a small grammar of sentences that state what a picture
 * shows ("Jogu Fefi has red hair .", "the roof is blue .") or who it shows ("a picture of Jogu Fefi ."),
 * FactWorld's own sentences for what the picture cannot show ("Jogu Fefi was a painter ."), and the
 * verifier that checks every claim against the picture's true look and the entity's facts:
 * supported, contradicted or unverifiable. Words are space-separated, punctuation is its own word,
 * names are capitalised and grammar words lower case, as in envs/factworld/grammar.ts. Sentences end
 * with ".", "?", "!" or "|" (the separator of web page titles, where boilerplate lives).
 */
import { ClaimVerifier, type Verdict } from "../factworld/answers.ts";
import { type ParsedClaim, parseSentence, sameClaim } from "../factworld/grammar.ts";
import type { Entity, World } from "../factworld/world.ts";
import {
  ATTRIBUTES_OF_TYPE,
  isVisualAttribute,
  type Look,
  lookOf,
  type PictureRef,
  VISUAL_ATTRIBUTE_NAMES,
  VISUAL_ATTRIBUTES,
  type VisualAttribute,
} from "./attributes.ts";

/** Each visual sentence, with a name ({S}) and without one; {V} is the attribute's value. */
export const VISUAL_SENTENCES: Record<
  VisualAttribute,
  { readonly named: readonly string[]; readonly unnamed: readonly string[] }
> = {
  hair: { named: ["{S} has {V} hair ."], unnamed: ["the person has {V} hair ."] },
  eyes: { named: ["{S} has {V} eyes ."], unnamed: ["the person has {V} eyes ."] },
  clothing: {
    named: ["{S} wears {V} .", "{S} is dressed in {V} ."],
    unnamed: ["the person wears {V} .", "the person is dressed in {V} ."],
  },
  accessory: { named: ["{S} wears a {V} ."], unnamed: ["the person wears a {V} ."] },
  building: { named: ["a {V} in {S} ."], unnamed: ["the picture shows a {V} ."] },
  roof: { named: ["{S} has a {V} roof ."], unnamed: ["the roof is {V} ."] },
  weather: { named: ["it is {V} in {S} ."], unnamed: ["it is {V} ."] },
  logo_shape: { named: ["the logo of {S} is a {V} ."], unnamed: ["the logo is a {V} ."] },
  logo_colour: { named: ["the logo of {S} is {V} ."], unnamed: ["the logo is {V} ."] },
  cover: { named: ["the cover of {S} is {V} .", "{S} has a {V} cover ."], unnamed: ["the cover is {V} ."] },
  motif: { named: ["{S} has a {V} on the cover ."], unnamed: ["the cover shows a {V} ."] },
};

/** Sentences that say who the picture shows. */
export const IDENTITY_SENTENCES = ["a picture of {S} .", "a photo of {S} .", "this is {S} ."] as const;

/** What one caption sentence claims. */
export type CaptionClaim =
  | { readonly kind: "depicts"; readonly name: string }
  /** A visual attribute; `subject` is the name the sentence gives (none for "the roof is blue ."). */
  | { readonly kind: "visual"; readonly attribute: VisualAttribute; readonly value: string; readonly subject?: string }
  /** A fact of FactWorld's grammar. */
  | { readonly kind: "fact"; readonly claim: ParsedClaim };

type Piece = { readonly literal: string } | { readonly name: true } | { readonly attribute: VisualAttribute };
interface Template {
  readonly pieces: readonly Piece[];
  readonly kind: "depicts" | "visual";
}

function compile(text: string, kind: Template["kind"], attribute?: VisualAttribute): Template {
  const pieces = text.split(" ").map((word): Piece => {
    if (word === "{S}") return { name: true };
    if (word === "{V}" && attribute) return { attribute };
    if (word.startsWith("{")) throw new Error(`unknown slot ${word} in "${text}"`);
    return { literal: word };
  });
  return { pieces, kind };
}

const TEMPLATES: readonly Template[] = [
  ...IDENTITY_SENTENCES.map((t) => compile(t, "depicts")),
  ...VISUAL_ATTRIBUTE_NAMES.flatMap((a) =>
    [...VISUAL_SENTENCES[a].named, ...VISUAL_SENTENCES[a].unnamed].map((t) => compile(t, "visual", a)),
  ),
];

/** Every grammar word of captions (for a tokenizer's vocabulary), besides names and attribute values. */
export const CAPTION_GRAMMAR_WORDS: readonly string[] = [
  ...new Set(
    [
      ...IDENTITY_SENTENCES,
      ...VISUAL_ATTRIBUTE_NAMES.flatMap((a) => [...VISUAL_SENTENCES[a].named, ...VISUAL_SENTENCES[a].unnamed]),
    ]
      .flatMap((t) => t.split(" "))
      .filter((w) => !w.startsWith("{")),
  ),
  "|",
];

const isNameWord = (word: string) => {
  const c = word.charCodeAt(0);
  return c >= 65 && c <= 90;
};

function matchTemplate(template: Template, words: readonly string[]): CaptionClaim | null {
  let i = 0;
  let name: string | undefined;
  let value: string | undefined;
  let attribute: VisualAttribute | undefined;
  for (const piece of template.pieces) {
    if (i >= words.length) return null;
    if ("literal" in piece) {
      if (words[i] !== piece.literal) return null;
      i++;
    } else if ("name" in piece) {
      let end = i;
      while (end < words.length && isNameWord(words[end] as string)) end++;
      if (end === i) return null;
      name = words.slice(i, end).join(" ");
      i = end;
    } else {
      const word = words[i] as string;
      if (!(VISUAL_ATTRIBUTES[piece.attribute].words as readonly string[]).includes(word)) return null;
      attribute = piece.attribute;
      value = word;
      i++;
    }
  }
  if (i !== words.length) return null;
  if (template.kind === "depicts") return { kind: "depicts", name: name as string };
  return {
    kind: "visual",
    attribute: attribute as VisualAttribute,
    value: value as string,
    ...(name ? { subject: name } : {}),
  };
}

/** One sentence of a caption: its words (with the end mark) and what it claims (none: boilerplate, filler). */
export interface CaptionSentence {
  readonly text: string;
  readonly claims: readonly CaptionClaim[];
}

const END_MARKS = new Set([".", "?", "!", "|"]);

/** Splits a caption into sentences and reads each one's claims. */
export function parseCaption(text: string): CaptionSentence[] {
  const sentences: CaptionSentence[] = [];
  let words: string[] = [];
  const flush = () => {
    if (words.length === 0) return;
    sentences.push({ text: words.join(" "), claims: sentenceClaims(words) });
    words = [];
  };
  for (const word of text.split(/\s+/)) {
    if (word === "") continue;
    words.push(word);
    if (END_MARKS.has(word)) flush();
  }
  flush();
  return sentences;
}

function sentenceClaims(words: readonly string[]): CaptionClaim[] {
  if (words.at(-1) !== ".") return [];
  for (const template of TEMPLATES) {
    const claim = matchTemplate(template, words);
    if (claim) return [claim];
  }
  return parseSentence(words).map((claim) => ({ kind: "fact" as const, claim }));
}

/** What a picture truly shows: whose picture it is, and that entity's look. */
export interface PictureTruth {
  readonly entity: Entity;
  readonly look: Look;
}

export function pictureTruth(world: World, picture: PictureRef): PictureTruth {
  const entity = world.entities[picture.entityId];
  if (entity === undefined) throw new Error(`${picture.id}: no entity ${picture.entityId} in this world`);
  return { entity, look: lookOf(world, entity) };
}

export interface VerifiedCaptionClaim {
  readonly claim: CaptionClaim;
  readonly verdict: Verdict;
  /** The sentence it came from (index into parseCaption's sentences). */
  readonly sentence: number;
}

export interface CaptionAnalysis {
  readonly sentences: readonly CaptionSentence[];
  readonly claims: readonly VerifiedCaptionClaim[];
  /** Distinct claims by verdict (a claim stated twice counts once). */
  readonly supported: number;
  readonly contradicted: number;
  readonly unverifiable: number;
  /** The caption names someone other than the picture's entity as who it shows. */
  readonly wrongEntity: boolean;
}

/** Checks caption claims against a picture's truth and the world's knowledge base. */
export class CaptionVerifier {
  private readonly facts: ClaimVerifier;

  constructor(world: World) {
    this.facts = new ClaimVerifier(world);
  }

  /**
   * depicts: supported for the picture's entity's name, contradicted for any other name.
   * visual: contradicted when it names another entity or gives another value; unverifiable when the
   * picture's type has no such attribute (no roof in a portrait); else supported.
   * fact: FactWorld's verdict from the knowledge base, for a fact about the picture's entity (its
   * subject or object); a fact about anyone else is contradicted: a caption is about its picture, and
   * "Gupu Nija was a teacher ." under a picture of Pega Lelofe names someone the picture does not show.
   */
  verdict(truth: PictureTruth, claim: CaptionClaim): Verdict {
    switch (claim.kind) {
      case "depicts":
        return claim.name === truth.entity.name ? "supported" : "contradicted";
      case "visual": {
        if (claim.subject !== undefined && claim.subject !== truth.entity.name) return "contradicted";
        const actual = truth.look.values[claim.attribute];
        if (actual === undefined) return "unverifiable";
        return actual === claim.value ? "supported" : "contradicted";
      }
      case "fact":
        return isAbout(claim.claim, truth) ? this.facts.verdict(claim.claim) : "contradicted";
    }
  }

  analyze(truth: PictureTruth, caption: string): CaptionAnalysis {
    const sentences = parseCaption(caption);
    const claims = sentences.flatMap((s, sentence) =>
      s.claims.map((claim) => ({ claim, verdict: this.verdict(truth, claim), sentence })),
    );
    const counts = { supported: 0, contradicted: 0, unverifiable: 0 };
    claims.forEach((c, i) => {
      for (let j = 0; j < i; j++) if (sameCaptionClaim((claims[j] as VerifiedCaptionClaim).claim, c.claim)) return;
      counts[c.verdict]++;
    });
    const wrongEntity = claims.some(
      ({ claim }) =>
        (claim.kind === "depicts" && claim.name !== truth.entity.name) ||
        (claim.kind === "visual" && claim.subject !== undefined && claim.subject !== truth.entity.name) ||
        (claim.kind === "fact" && !isAbout(claim.claim, truth)),
    );
    return { sentences, claims, ...counts, wrongEntity };
  }
}

/** A fact is about the picture when the picture's entity is its subject or its object. */
const isAbout = (claim: ParsedClaim, truth: PictureTruth): boolean =>
  claim.subject === truth.entity.name || claim.object === truth.entity.name;

/** Two claims say the same thing ("Jogu Fefi has red hair ." and "the person has red hair ." count once). */
export function sameCaptionClaim(a: CaptionClaim, b: CaptionClaim): boolean {
  if (a.kind === "depicts" && b.kind === "depicts") return a.name === b.name;
  if (a.kind === "visual" && b.kind === "visual") {
    const subjects = a.subject === undefined || b.subject === undefined || a.subject === b.subject;
    return a.attribute === b.attribute && a.value === b.value && subjects;
  }
  if (a.kind === "fact" && b.kind === "fact") return sameClaim(a.claim, b.claim);
  return false;
}

/** A visual sentence: named when a name is given, else the unnamed form; `variant` picks among forms. */
export function visualSentence(attribute: VisualAttribute, value: string, name?: string, variant = 0): string {
  if (!isVisualAttribute(attribute)) throw new Error(`unknown visual attribute "${attribute}"`);
  const forms = name === undefined ? VISUAL_SENTENCES[attribute].unnamed : VISUAL_SENTENCES[attribute].named;
  const form = forms[variant % forms.length] as string;
  return form.replace("{S}", name ?? "").replace("{V}", value);
}

/** The caption that states exactly what the picture shows, in its type's attribute order. */
export function trueCaption(truth: PictureTruth, withName = true): string {
  const name = withName ? truth.entity.name : undefined;
  return ATTRIBUTES_OF_TYPE[truth.look.type]
    .map((a) => visualSentence(a, truth.look.values[a] as string, name))
    .join(" ");
}
