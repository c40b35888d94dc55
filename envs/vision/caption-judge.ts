/**
 * The relevance judge for captions, FactWorld's judge (envs/factworld/judge.ts) read for pictures:
 *   coverage  = share of the attributes the picture's type shows that the caption states (any value:
 *               truth is precision's business);
 *   off-topic = share of the caption's distinct claims that are not about the picture: another name,
 *               an attribute its type lacks (a roof in a portrait), a fact about someone else;
 *   score     = coverage × (1 − off-topic).
 * Identity sentences and facts about the pictured entity are on topic but cover nothing.
 */
import { ATTRIBUTES_OF_TYPE } from "./attributes.ts";
import { type CaptionClaim, type PictureTruth, parseCaption, sameCaptionClaim } from "./captions.ts";

export interface CaptionRelevance {
  /** The type's attributes the caption states, in caption order. */
  readonly covered: readonly string[];
  /** Distinct claims, and how many of them are not about the picture. */
  readonly claims: number;
  readonly offTopic: number;
  readonly score: number;
}

function isAboutPicture(claim: CaptionClaim, truth: PictureTruth): boolean {
  const name = truth.entity.name;
  switch (claim.kind) {
    case "depicts":
      return claim.name === name;
    case "visual":
      return (
        (claim.subject === undefined || claim.subject === name) && truth.look.values[claim.attribute] !== undefined
      );
    case "fact":
      return claim.claim.subject === name || claim.claim.object === name;
  }
}

export function captionRelevance(truth: PictureTruth, claims: readonly CaptionClaim[]): CaptionRelevance {
  const distinct: CaptionClaim[] = [];
  for (const claim of claims) if (!distinct.some((d) => sameCaptionClaim(d, claim))) distinct.push(claim);
  const shown = ATTRIBUTES_OF_TYPE[truth.look.type];
  const covered = [
    ...new Set(
      distinct.flatMap((c) =>
        c.kind === "visual" && isAboutPicture(c, truth) && shown.includes(c.attribute) ? [c.attribute] : [],
      ),
    ),
  ];
  const offTopic = distinct.filter((c) => !isAboutPicture(c, truth)).length;
  const coverage = covered.length / shown.length;
  const offShare = distinct.length === 0 ? 0 : offTopic / distinct.length;
  return { covered, claims: distinct.length, offTopic, score: coverage * (1 - offShare) };
}

/** The claims of a caption's text (every sentence; see parseCaption). */
export const captionClaims = (caption: string): CaptionClaim[] => parseCaption(caption).flatMap((s) => s.claims);
