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
import { type ParsedClaim, sameClaim } from "./grammar.ts";
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

/** Counts distinct claims by what they say about the focus; `coveredMask` has bit i set when aspect i is covered. */
function tally(focus: JudgeFocus, claims: readonly ParsedClaim[]) {
  const distinct: ParsedClaim[] = [];
  let coveredMask = 0;
  let offEntity = 0;
  let offAspect = 0;
  for (const claim of claims) {
    // Answers hold a handful of claims: a linear scan beats building string keys.
    if (distinct.some((d) => sameClaim(d, claim))) continue;
    distinct.push(claim);
    const relation = relationAboutFocus(claim, focus.entity);
    const aspect = relation === null ? -2 : focus.aspects.indexOf(relation);
    if (aspect === -2) offEntity++;
    else if (aspect === -1) offAspect++;
    else coveredMask |= 1 << aspect;
  }
  let covered = 0;
  for (let m = coveredMask; m !== 0; m &= m - 1) covered++;
  const coverage = focus.aspects.length === 0 ? 0 : covered / focus.aspects.length;
  const offShare = distinct.length === 0 ? 0 : (offEntity + offAspect) / distinct.length;
  return { coveredMask, claims: distinct.length, offEntity, offAspect, score: coverage * (1 - offShare) };
}

/** coverage × (1 − off-topic share): the number the judge compares. */
export const relevanceScore = (focus: JudgeFocus, claims: readonly ParsedClaim[]): number => tally(focus, claims).score;

export function relevanceProfile(focus: JudgeFocus, claims: readonly ParsedClaim[]): RelevanceProfile {
  const t = tally(focus, claims);
  const isCovered = (i: number) => (t.coveredMask & (1 << i)) !== 0;
  return {
    covered: focus.aspects.filter((_, i) => isCovered(i)),
    missing: focus.aspects.filter((_, i) => !isCovered(i)),
    claims: t.claims,
    offEntity: t.offEntity,
    offAspect: t.offAspect,
    score: t.score,
  };
}

/** win / tie / loss from the two scores. */
export function judgeOutcome(answerScore: number, referenceScore: number, margin = DEFAULT_JUDGE_MARGIN): JudgeOutcome {
  const delta = answerScore - referenceScore;
  return delta > margin ? "win" : delta < -margin ? "loss" : "tie";
}

export const outcomeValue = (outcome: JudgeOutcome): number => OUTCOME_VALUE[outcome];

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
  const outcome = judgeOutcome(answer.score, reference.score, margin);
  const asked = focus.aspects.length;
  const reasons = [
    ...describe("answer", answer, asked),
    ...describe("reference", reference, asked),
    `relevance score ${answer.score.toFixed(2)} vs reference ${reference.score.toFixed(2)} (margin ${margin}) → ${outcome}`,
  ];
  return { outcome, value: OUTCOME_VALUE[outcome], answer, reference, reasons };
}
