/**
 * FACTORY's hard split, model in the loop: answer every prompt with the current policy, verify the
 * claims (here the knowledge base is the human verifier), and keep the prompts whose answers were
 * least precise. Pure: precisions in, the hard prompts' ids out.
 */
import { CurationArgumentError } from "./balance.ts";

export interface PromptPrecisions {
  readonly id: string;
  /** Claim precision S / (S + U) of each answer that made a claim (empty: none did). */
  readonly precisions: readonly number[];
}

/**
 * The ids of the round(share · n) prompts with the lowest mean precision (ties by id), in that order.
 * A prompt none of whose answers made a claim cannot be ranked and is never hard, so fewer may come
 * back when few were ranked.
 */
export function hardSplit(prompts: readonly PromptPrecisions[], share: number): string[] {
  if (!(share >= 0 && share <= 1)) throw new CurationArgumentError("share", `${share}; expected a number in [0, 1]`);
  prompts.forEach((p, i) => {
    const bad = p.precisions.findIndex((x) => !(x >= 0 && x <= 1));
    if (bad >= 0)
      throw new CurationArgumentError(
        "prompts",
        `prompts[${i}].precisions[${bad}] is ${p.precisions[bad]}, expected a number in [0, 1]`,
      );
  });
  const ranked = prompts
    .filter((p) => p.precisions.length > 0)
    .map((p) => ({ id: p.id, mean: p.precisions.reduce((a, b) => a + b, 0) / p.precisions.length }))
    .sort((a, b) => a.mean - b.mean || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return ranked.slice(0, Math.round(share * prompts.length)).map((p) => p.id);
}
