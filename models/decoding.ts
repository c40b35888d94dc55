/**
 * Decoding rules that contrast two streams of the same policy (CM3Leon): classifier-free guidance
 * and contrastive decoding with a top-k plausibility head (CD-K). Pure functions over one row of
 * logits or probabilities; the sampling loop that calls them runs two forward passes per token.
 */

/** A bad decoding parameter or mismatched rows: says which and why. */
export class DecodingParameterError extends Error {
  override readonly name = "DecodingParameterError";
}

const sameLength = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
  if (a.length !== b.length)
    throw new DecodingParameterError(
      `${what}: the two rows must have the same length, got ${a.length} and ${b.length}`,
    );
  if (a.length === 0) throw new DecodingParameterError(`${what}: the rows are empty`);
};

/**
 * Classifier-free guidance: `uncond + scale · (cond − uncond)` per token. Scale 1 gives `cond`,
 * 0 gives `uncond`, above 1 pushes away from the unconditioned stream.
 */
export function guidedLogits(cond: ArrayLike<number>, uncond: ArrayLike<number>, scale: number): number[] {
  if (!Number.isFinite(scale)) throw new DecodingParameterError(`guidedLogits: scale must be finite, got ${scale}`);
  sameLength("guidedLogits", cond, uncond);
  const out = new Array<number>(cond.length);
  // scale 1 returns cond exactly (no rounding through uncond + (cond − uncond)).
  for (let t = 0; t < cond.length; t++) out[t] = scale === 1 ? cond[t]! : uncond[t]! + scale * (cond[t]! - uncond[t]!);
  return out;
}

/** The k-th largest value of `values` (k from 1). */
const kthLargest = (values: ArrayLike<number>, k: number): number => Array.from(values).sort((a, b) => b - a)[k - 1]!;

/**
 * CD-K scores: `log pExpert[t] − log pAmateur[t]` for every token whose expert probability is at
 * least `alpha` times the k-th largest expert probability, `-Infinity` for the rest. k = 1 is
 * classic contrastive decoding's plausibility head (relative to the top token); a larger k keeps
 * the head from shrinking to the single greedy token when the expert is confident.
 */
export function contrastiveScores(
  pExpert: ArrayLike<number>,
  pAmateur: ArrayLike<number>,
  opts: { readonly alpha: number; readonly k: number },
): number[] {
  const { alpha, k } = opts;
  if (!(alpha > 0 && alpha <= 1))
    throw new DecodingParameterError(`contrastiveScores: alpha must be in (0, 1], got ${alpha}`);
  sameLength("contrastiveScores", pExpert, pAmateur);
  if (!Number.isInteger(k) || k < 1 || k > pExpert.length)
    throw new DecodingParameterError(
      `contrastiveScores: k must be an integer from 1 to the vocabulary size ${pExpert.length}, got ${k}`,
    );
  const threshold = alpha * kthLargest(pExpert, k);
  const out = new Array<number>(pExpert.length);
  for (let t = 0; t < pExpert.length; t++)
    out[t] = pExpert[t]! >= threshold ? Math.log(pExpert[t]!) - Math.log(pAmateur[t]!) : Number.NEGATIVE_INFINITY;
  return out;
}

/**
 * How the next token is chosen: `plain` samples the policy; `cfg` and `cd-k` contrast the expert stream
 * (the prompt with its evidence) with the amateur stream (the prompt alone) of the same policy.
 */
export type Decoding =
  | { readonly kind: "plain" }
  | { readonly kind: "cfg"; readonly scale: number }
  | { readonly kind: "cd-k"; readonly alpha: number; readonly k: number };

/** A decoding that needs the amateur stream. */
export type GuidedDecoding = Exclude<Decoding, { readonly kind: "plain" }>;

/**
 * Checks a decoding's parameters against a vocabulary of `vocabSize` tokens; the error names the
 * field under `path` (e.g. `rollout.decoding.alpha`), so a config mistake reads as one.
 */
export function checkDecoding(decoding: Decoding, vocabSize: number, path = "decoding"): void {
  switch (decoding.kind) {
    case "plain":
      return;
    case "cfg":
      if (!Number.isFinite(decoding.scale))
        throw new DecodingParameterError(`${path}.scale must be a finite number, got ${decoding.scale}`);
      return;
    case "cd-k":
      if (!(decoding.alpha > 0 && decoding.alpha <= 1))
        throw new DecodingParameterError(`${path}.alpha must be in (0, 1], got ${decoding.alpha}`);
      if (!Number.isInteger(decoding.k) || decoding.k < 1 || decoding.k > vocabSize)
        throw new DecodingParameterError(
          `${path}.k must be an integer from 1 to the policy's vocabulary size ${vocabSize}, got ${decoding.k}`,
        );
  }
}
