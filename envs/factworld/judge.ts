/**
 * The relevance judge: compares an answer with a reference answer to the same prompt and returns
 * win / tie / loss with reasons, deterministically. Criteria (docs/factworld.md, "The judge"):
 *   coverage  = share of the prompt's asked aspects the answer makes at least one claim about
 *               (about the focus entity; "W was created by X" counts as X's works);
 *   off-topic = share of the answer's distinct claims about other entities or aspects not asked;
 *   score     = coverage × (1 − off-topic).
 * The answer wins when its score beats the reference's by more than the margin, loses when it is
 * worse by more than the margin, and ties otherwise. Truth is not judged here — precision does that.
 */
import type { ParsedClaim } from "./grammar.ts";
import { inverseOf, type Relation, relationInfo } from "./schema.ts";

export interface JudgeFocus {
  readonly entity: string;
  readonly aspects: readonly string[];
}

export interface RelevanceProfile {
  readonly covered: readonly string[];
  readonly missing: readonly string[];
  /** Distinct claims, and how many of them are about another entity or an aspect not asked. */
  readonly claims: number;
  readonly offEntity: number;
  readonly offAspect: number;
  readonly score: number;
}

export type JudgeOutcome = "win" | "tie" | "loss";

export interface RelevanceVerdict {
  readonly outcome: JudgeOutcome;
  /** win 1, tie 0.5, loss 0: the relevance reward R. */
  readonly value: number;
  readonly answer: RelevanceProfile;
  readonly reference: RelevanceProfile;
  readonly reasons: readonly string[];
}

export const DEFAULT_JUDGE_MARGIN = 0.05;
const OUTCOME_VALUE: Record<JudgeOutcome, number> = { win: 1, tie: 0.5, loss: 0 };

/** The relation a claim states about the focus entity, or null when the claim is about something else. */
function relationAboutFocus(claim: ParsedClaim, entity: string): Relation | null {
  if (claim.subject === entity) return claim.relation;
  if (claim.object === entity && relationInfo(claim.relation).objectKind === "entity")
    return inverseOf(claim.relation) ?? null;
  return null;
}

export function relevanceProfile(focus: JudgeFocus, claims: readonly ParsedClaim[]): RelevanceProfile {
  const asked = new Set(focus.aspects);
  const covered = new Set<string>();
  const seen = new Set<string>();
  let offEntity = 0;
  let offAspect = 0;
  for (const claim of claims) {
    const key = `${claim.subject}\u0000${claim.relation}\u0000${claim.object}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const relation = relationAboutFocus(claim, focus.entity);
    if (relation === null) offEntity++;
    else if (asked.has(relation)) covered.add(relation);
    else offAspect++;
  }
  const aspects = focus.aspects;
  const coverage = aspects.length === 0 ? 0 : covered.size / aspects.length;
  const offShare = seen.size === 0 ? 0 : (offEntity + offAspect) / seen.size;
  return {
    covered: aspects.filter((a) => covered.has(a)),
    missing: aspects.filter((a) => !covered.has(a)),
    claims: seen.size,
    offEntity,
    offAspect,
    score: coverage * (1 - offShare),
  };
}

const describe = (who: string, p: RelevanceProfile, asked: number): string[] => {
  const lines = [
    `${who} covers ${p.covered.length}/${asked} asked aspects` +
      (p.missing.length ? ` (missing: ${p.missing.join(", ")})` : ""),
  ];
  if (p.offEntity > 0) lines.push(`${who}: ${p.offEntity} of ${p.claims} claims are about other entities`);
  if (p.offAspect > 0) lines.push(`${who}: ${p.offAspect} of ${p.claims} claims are about aspects not asked`);
  return lines;
};

export function judgeRelevance(
  focus: JudgeFocus,
  answerClaims: readonly ParsedClaim[],
  referenceClaims: readonly ParsedClaim[],
  margin = DEFAULT_JUDGE_MARGIN,
): RelevanceVerdict {
  const answer = relevanceProfile(focus, answerClaims);
  const reference = relevanceProfile(focus, referenceClaims);
  const delta = answer.score - reference.score;
  const outcome: JudgeOutcome = delta > margin ? "win" : delta < -margin ? "loss" : "tie";
  const asked = focus.aspects.length;
  const reasons = [
    ...describe("answer", answer, asked),
    ...describe("reference", reference, asked),
    `relevance score ${answer.score.toFixed(2)} vs reference ${reference.score.toFixed(2)} (margin ${margin}) → ${outcome}`,
  ];
  return { outcome, value: OUTCOME_VALUE[outcome], answer, reference, reasons };
}
