/**
 * FACTORY-style prompt checks (Chen et al., "FACTORY"), with the knowledge base as the verifier. A
 * prompt passes when it is
 *   fact-seeking  a request for information (a question, or tell / describe / explain / give / write
 *                 about …), not for fiction or opinion, about an entity the knowledge base has;
 *   unambiguous   it names one entity (others only when a fact links them to it), and when that
 *                 entity has a look-alike name it says something that tells the two apart;
 *   answerable    the entity has at least `minFacts` facts of the asked kinds, and one of every kind
 *                 asked by name.
 * The checks read the prompt's text only, so generated prompts and prompts loaded from a file are
 * judged alike (the asked kinds are the relation phrases the text names, all of the entity's when it
 * names none). The first check that fails is the prompt's reason.
 */
import { RELATION_NAMES, type Relation, relationInfo } from "../factworld/schema.ts";
import type { Entity, World } from "../factworld/world.ts";
import { CurationArgumentError, substringMatches } from "./balance.ts";

export const CHECK_REASONS = ["not-fact-seeking", "unknown-entity", "ambiguous", "unanswerable"] as const;
export type CheckReason = (typeof CHECK_REASONS)[number];

export type PromptCheck =
  | {
      readonly ok: true;
      /** The entity asked about. */
      readonly entity: string;
      /** The kinds of fact asked (relations), in canonical order. */
      readonly aspects: readonly Relation[];
      /** Facts the knowledge base holds of those kinds. */
      readonly facts: number;
    }
  | { readonly ok: false; readonly reason: CheckReason; readonly detail: string };

export interface CheckOptions {
  /** Facts of the asked kinds the entity must have (FACTORY's "answerable with enough facts"). */
  readonly minFacts: number;
}

/** Words a request for information opens with. */
const REQUEST_OPENERS = new Set([
  "Tell",
  "What",
  "Who",
  "When",
  "Where",
  "Which",
  "How",
  "Describe",
  "Explain",
  "Give",
  "Write",
  "List",
  "Name",
  "Summarise",
  "Summarize",
  "Outline",
]);

/** Requests for fiction or opinion: nothing a knowledge base can verify. Matched on the lower-cased text. */
const NOT_FACTUAL =
  /\b(write|compose|invent) (a|an|me a) (poem|story|song|joke|limerick|haiku|tale)\b|\b(imagine|pretend|make up)\b|\b(do|would|should) (you|i|we) (think|feel|believe|like|prefer)\b|\b(your|an) opinion\b|\bfavou?rite\b/;

/** "the <phrase>" for every relation (no phrase is a prefix of another, so each names one relation). */
const ASPECT_PHRASES: readonly { readonly relation: Relation; readonly entry: string }[] = RELATION_NAMES.map(
  (relation) => ({ relation, entry: `the ${relationInfo(relation).phrase}` }),
);

/** Entities whose name occurs in `text`, in order of first occurrence; a name inside a longer matched name is not counted. */
function namedEntities(world: World, text: string): Entity[] {
  const names = world.entities.map((e) => e.name);
  const matched = substringMatches(text, names).map((i) => world.entities[i]!);
  const kept = matched.filter(
    (e) => !matched.some((other) => other !== e && substringMatches(other.name, [e.name]).length > 0),
  );
  const position = (e: Entity) => ` ${text} `.indexOf(` ${e.name}`);
  return kept.sort((a, b) => position(a) - position(b));
}

/** Whether a fact links the two entities (either side). */
const linked = (a: Entity, b: Entity) =>
  a.facts.some((f) => f.objectId === b.id) || b.facts.some((f) => f.objectId === a.id);

/** The values of `entity`'s facts its look-alike does not share, as they would be written. */
function distinguishingValues(entity: Entity, lookAlike: Entity): string[] {
  const theirs = new Set(lookAlike.facts.map((f) => `${f.relation}:${f.object}`));
  return [...new Set(entity.facts.filter((f) => !theirs.has(`${f.relation}:${f.object}`)).map((f) => f.object))];
}

/** Checks one prompt against the knowledge base (see the module comment for the rules). */
export function checkPrompt(world: World, text: string, options: CheckOptions): PromptCheck {
  if (!Number.isInteger(options.minFacts) || options.minFacts < 1)
    throw new CurationArgumentError("minFacts", `${options.minFacts}; expected an integer ≥ 1`);
  const words = text.trim().split(/\s+/);
  const fail = (reason: CheckReason, detail: string): PromptCheck => ({ ok: false, reason, detail });

  if (!REQUEST_OPENERS.has(words[0] ?? "") && !text.trimEnd().endsWith("?"))
    return fail("not-fact-seeking", `"${words[0] ?? ""}…" is neither a question nor a request for information`);
  const creative = NOT_FACTUAL.exec(text.toLowerCase());
  if (creative) return fail("not-fact-seeking", `asks for fiction or opinion ("${creative[0]}")`);

  const named = namedEntities(world, text);
  const subject = named[0];
  if (!subject) return fail("unknown-entity", "names no entity of the knowledge base");
  const unrelated = named.slice(1).filter((e) => !linked(subject, e));
  if (unrelated.length > 0)
    return fail(
      "ambiguous",
      `names ${[subject, ...unrelated].map((e) => e.name).join(", ")}, which no fact links: which one is asked about?`,
    );
  if (subject.confusableWith !== null) {
    const lookAlike = world.entities[subject.confusableWith]!;
    const values = distinguishingValues(subject, lookAlike);
    const tells = values.length > 0 && substringMatches(text, values).length > 0;
    if (!tells)
      return fail(
        "ambiguous",
        `${subject.name} has a look-alike (${lookAlike.name}) and the prompt says nothing that tells them apart`,
      );
  }

  const askedByName = substringMatches(
    text,
    ASPECT_PHRASES.map((a) => a.entry),
  ).map((i) => ASPECT_PHRASES[i]!.relation);
  const known = new Set(subject.facts.map((f) => f.relation));
  const missing = askedByName.filter((a) => !known.has(a));
  if (missing.length > 0)
    return fail(
      "unanswerable",
      `the knowledge base has no ${missing.map((a) => relationInfo(a).phrase).join(", ")} of ${subject.name}`,
    );
  const aspects = askedByName.length > 0 ? askedByName : RELATION_NAMES.filter((r) => known.has(r));
  const facts = subject.facts.filter((f) => aspects.includes(f.relation)).length;
  if (facts < options.minFacts)
    return fail(
      "unanswerable",
      `${subject.name} has ${facts} fact${facts === 1 ? "" : "s"} of the asked kinds, fewer than ${options.minFacts}`,
    );
  return { ok: true, entity: subject.name, aspects: RELATION_NAMES.filter((r) => aspects.includes(r)), facts };
}

export interface CheckedPrompt<P> {
  readonly prompt: P;
  readonly reason: CheckReason;
  readonly detail: string;
}

export interface PromptCheckReport<P> {
  readonly passed: readonly P[];
  readonly rejected: readonly CheckedPrompt<P>[];
  /** Rejections per reason (every reason present, 0 when none). */
  readonly counts: Readonly<Record<CheckReason, number>>;
}

/** Checks every prompt: the ones that pass (in order), the rejected ones with their reason, counts per reason. */
export function checkPrompts<P extends { readonly text: string }>(
  world: World,
  prompts: readonly P[],
  options: CheckOptions,
): PromptCheckReport<P> {
  const passed: P[] = [];
  const rejected: CheckedPrompt<P>[] = [];
  const counts = Object.fromEntries(CHECK_REASONS.map((r) => [r, 0])) as Record<CheckReason, number>;
  for (const prompt of prompts) {
    const check = checkPrompt(world, prompt.text, options);
    if (check.ok) passed.push(prompt);
    else {
      rejected.push({ prompt, reason: check.reason, detail: check.detail });
      counts[check.reason] += 1;
    }
  }
  return { passed, rejected, counts };
}
