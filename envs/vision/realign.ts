/**
 * Altogether's re-alignment rounds: alt-text is edited toward what the picture shows rather than
 * replaced. The full edit list, in order: drop each sentence the picture or the knowledge base
 * contradicts (or that states nothing checkable), keeping the right claims of a partly wrong sentence;
 * drop boilerplate; then add a sentence for each attribute the picture shows that no kept sentence
 * states — with the entity's name when the alt-text named it rightly (the picture cannot show a name).
 * Round k of R applies the first ⌈k·E/R⌉ of the E edits: round 0 is the alt-text, round R the full
 * re-alignment, and each round is at least as supported and no less correct than the one before.
 */
import { claimSentence } from "../factworld/grammar.ts";
import { ATTRIBUTES_OF_TYPE } from "./attributes.ts";
import {
  type CaptionAnalysis,
  type CaptionClaim,
  type CaptionVerifier,
  type PictureTruth,
  visualSentence,
} from "./captions.ts";

export const DEFAULT_REALIGN_ROUNDS = 3;

/** One edit: replace sentence `at` by `text` (empty: drop it), or append a sentence. */
type Edit = { readonly at: number; readonly text: string } | { readonly append: string };

function claimText(claim: CaptionClaim, name: string | undefined): string {
  switch (claim.kind) {
    case "depicts":
      return `a picture of ${claim.name} .`;
    case "visual":
      return visualSentence(claim.attribute, claim.value, claim.subject === undefined ? undefined : name);
    case "fact":
      return claimSentence(claim.claim);
  }
}

/** The edits that take this alt-text to its re-aligned caption, in the order rounds apply them. */
function edits(analysis: CaptionAnalysis, truth: PictureTruth): Edit[] {
  const rightName = analysis.claims.some(
    ({ claim, verdict }) =>
      verdict === "supported" &&
      ((claim.kind === "depicts" && claim.name === truth.entity.name) ||
        (claim.kind === "visual" && claim.subject === truth.entity.name) ||
        (claim.kind === "fact" && claim.claim.subject === truth.entity.name)),
  );
  const name = rightName ? truth.entity.name : undefined;
  const wrong: Edit[] = [];
  const boilerplate: Edit[] = [];
  analysis.sentences.forEach((sentence, at) => {
    if (sentence.claims.length === 0) {
      boilerplate.push({ at, text: "" });
      return;
    }
    const verified = analysis.claims.filter((c) => c.sentence === at);
    if (verified.every((c) => c.verdict === "supported")) return;
    const kept = verified.filter((c) => c.verdict === "supported").map((c) => claimText(c.claim, name));
    wrong.push({ at, text: kept.join(" ") });
  });
  // Visual sentences hold one claim each, so a supported one is kept as it is.
  const shown = new Set<string>();
  for (const { claim, verdict } of analysis.claims) {
    if (verdict === "supported" && claim.kind === "visual") shown.add(claim.attribute);
  }
  const additions: Edit[] = ATTRIBUTES_OF_TYPE[truth.look.type]
    .filter((a) => !shown.has(a))
    .map((a) => ({ append: visualSentence(a, truth.look.values[a] as string, name) }));
  return [...wrong, ...boilerplate, ...additions];
}

/**
 * The alt-text after `round` of `rounds` re-alignment rounds (round ≥ rounds: fully re-aligned).
 * A pure function of the picture's truth, the alt-text and the round.
 */
export function realignAltText(
  verifier: CaptionVerifier,
  truth: PictureTruth,
  altText: string,
  round: number,
  rounds = DEFAULT_REALIGN_ROUNDS,
): string {
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be an integer ≥ 1, got ${rounds}`);
  if (!Number.isInteger(round) || round < 0) throw new Error(`round must be an integer ≥ 0, got ${round}`);
  const analysis = verifier.analyze(truth, altText);
  const all = edits(analysis, truth);
  const applied = all.slice(0, Math.ceil((Math.min(round, rounds) * all.length) / rounds));
  const sentences = analysis.sentences.map((s) => s.text);
  const appended: string[] = [];
  for (const edit of applied) {
    if ("append" in edit) appended.push(edit.append);
    else sentences[edit.at] = edit.text;
  }
  return [...sentences, ...appended].filter((s) => s !== "").join(" ");
}
