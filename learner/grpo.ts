/**
 * GRPO's math, as pure functions (README.md, "How it works": GRPO).
 *
 * Shapes: B answers (group after group, G per group), T answer-token positions (padded), so
 * per-token tensors are [B, T] with a 0/1 `mask` marking real answer tokens. Symbols follow the
 * papers: A advantages, ρ = π_θ / π_behaviour, ε_low / ε_high the clip range (DAPO's decoupled
 * clip), β the KL coefficient, k3 Schulman's KL estimator.
 */
import * as tf from "@tensorflow/tfjs";

export interface AdvantageOptions {
  /** Divide by the group's sample std (GRPO); false gives Dr. GRPO's r − mean. */
  readonly normalizeStd?: boolean;
  readonly eps?: number;
}

/**
 * Group-relative advantages. `rewards` are laid out group after group; A_i = (r_i − mean) / (std + eps)
 * with the sample std (N − 1). A zero-variance group, or a group of one, carries no signal: all zeros.
 */
export function groupAdvantages(rewards: readonly number[], groupSize: number, opts: AdvantageOptions = {}): number[] {
  const { normalizeStd = true, eps = 1e-6 } = opts;
  if (!Number.isInteger(groupSize) || groupSize < 1)
    throw new Error(`groupSize must be a positive integer, got ${groupSize}`);
  if (rewards.length % groupSize !== 0) {
    throw new Error(`rewards length ${rewards.length} is not a multiple of groupSize ${groupSize}`);
  }
  const advantages = new Array<number>(rewards.length).fill(0);
  for (let start = 0; start < rewards.length; start += groupSize) {
    const group = rewards.slice(start, start + groupSize);
    if (groupSize < 2 || isZeroVariance(group)) continue;
    const mean = group.reduce((a, b) => a + b, 0) / groupSize;
    const std = Math.sqrt(group.reduce((a, r) => a + (r - mean) ** 2, 0) / (groupSize - 1));
    for (let i = 0; i < groupSize; i++) {
      const centred = group[i]! - mean;
      advantages[start + i] = normalizeStd ? centred / (std + eps) : centred;
    }
  }
  return advantages;
}

function isZeroVariance(group: readonly number[]): boolean {
  return group.every((r) => r === group[0]);
}

/**
 * Truncated importance sampling (TIS, as in verl and slime) for an answer decoded by something other
 * than the policy — CFG or CD-K here: per token, w = min(π_old / μ, cap) = min(exp(log π_old − log μ), cap),
 * π_old the sampling policy's own probability of the token and μ the decoder's. The clipped surrogate then
 * uses ρ = π_θ / π_old (the policy's own ratio) and each token's loss is multiplied by w, a constant: an
 * unbiased correction up to the cap, whose variance the cap bounds.
 */
export function truncatedImportanceWeights(
  policyLogProbs: Float32Array,
  behaviourLogProbs: Float32Array,
  cap: number,
): Float32Array {
  if (!(cap >= 1 && Number.isFinite(cap))) throw new Error(`the TIS cap must be a finite number ≥ 1, got ${cap}`);
  if (policyLogProbs.length !== behaviourLogProbs.length)
    throw new Error(`${policyLogProbs.length} policy log-probs for ${behaviourLogProbs.length} behaviour log-probs`);
  return policyLogProbs.map((lp, t) => Math.min(Math.exp(lp - behaviourLogProbs[t]!), cap));
}

export interface ClipOptions {
  readonly epsLow: number;
  readonly epsHigh: number;
}

/**
 * The clipped surrogate per token: max(−A·ρ, −A·clip(ρ, 1−ε_low, 1+ε_high)), ρ = exp(log π_θ − log π_behaviour).
 * `advantages` is [B] (every token of an answer shares it). Returns the [B, T] loss and the [B, T] clip indicator.
 */
export function clippedSurrogate(
  logProbs: tf.Tensor2D,
  behaviourLogProbs: tf.Tensor2D,
  advantages: tf.Tensor1D,
  { epsLow, epsHigh }: ClipOptions,
): { loss: tf.Tensor2D; clipped: tf.Tensor2D; ratio: tf.Tensor2D } {
  return tf.tidy(() => {
    const ratio = tf.exp(tf.sub(logProbs, behaviourLogProbs)) as tf.Tensor2D;
    const A = advantages.expandDims(1);
    const unclipped = tf.neg(tf.mul(A, ratio));
    const clippedRatio = tf.clipByValue(ratio, 1 - epsLow, 1 + epsHigh);
    const clippedLoss = tf.neg(tf.mul(A, clippedRatio));
    const loss = tf.maximum(unclipped, clippedLoss) as tf.Tensor2D;
    // Data-only mask (no gradient flows through comparisons in tfjs).
    const clipped = tf.cast(tf.greater(clippedLoss, unclipped), "float32") as tf.Tensor2D;
    return { loss, clipped, ratio };
  });
}

/** Schulman's k3 estimator of KL(π_θ ‖ π_ref) per token: exp(ref − θ) − (ref − θ) − 1 ≥ 0. */
export function k3KL(logProbs: tf.Tensor2D, refLogProbs: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const delta = tf.sub(refLogProbs, logProbs);
    return tf.sub(tf.sub(tf.exp(delta), delta), 1) as tf.Tensor2D;
  });
}

export const LOSS_AGGREGATIONS = ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] as const;
export type LossAggregation = (typeof LOSS_AGGREGATIONS)[number];

/**
 * The counts a loss is normalised by. A micro-batch passes its whole batch's, so that the
 * micro-batches' losses (and gradients) sum to the whole batch's exactly; each count defaults to
 * the tensor's own, which is the whole-batch case.
 */
export interface LossDenominators {
  /** Real tokens, Σ mask (token-mean and the token-mean diagnostics); default this mask's, at least 1. */
  readonly tokens?: number;
  /** Answers, B (the seq-mean aggregations); default this tensor's rows. */
  readonly answers?: number;
  /** seq-mean-token-sum-norm's constant per-answer normaliser; default T, this tensor's padded width. */
  readonly horizon?: number;
}

/**
 * Reduce a [B, T] per-token loss to a scalar over the tokens the mask keeps.
 * - token-mean: Σ loss / tokens (DAPO: every token weighs the same, long answers are not discounted)
 * - seq-mean-token-mean: Σ over answers of each answer's token mean / answers (the original GRPO)
 * - seq-mean-token-sum-norm: Σ over answers of token sum / (horizon · answers) (Dr. GRPO: a constant
 *   normaliser, no length bias)
 * with `tokens`, `answers`, `horizon` from `denominators` (default: this tensor's own).
 */
export function aggregateLoss(
  perToken: tf.Tensor2D,
  mask: tf.Tensor2D,
  mode: LossAggregation,
  denominators: LossDenominators = {},
): tf.Scalar {
  const [rows, width] = perToken.shape;
  const answers = denominators.answers ?? rows;
  return tf.tidy(() => {
    const masked = tf.mul(perToken, mask);
    switch (mode) {
      case "token-mean": {
        const tokens = denominators.tokens ?? tf.maximum(tf.sum(mask), 1);
        return tf.div(tf.sum(masked), tokens) as tf.Scalar;
      }
      case "seq-mean-token-mean": {
        const perAnswer = tf.div(tf.sum(masked, 1), tf.maximum(tf.sum(mask, 1), 1));
        return tf.div(tf.sum(perAnswer), answers) as tf.Scalar;
      }
      case "seq-mean-token-sum-norm":
        return tf.div(tf.sum(masked), (denominators.horizon ?? width) * answers) as tf.Scalar;
    }
  });
}

export interface GrpoLossOptions extends ClipOptions {
  /** KL coefficient β to the frozen reference policy; 0 turns the KL term off. */
  readonly klBeta: number;
  readonly aggregation: LossAggregation;
  /** The whole batch's counts when these inputs are one micro-batch of it (see `LossDenominators`). */
  readonly denominators?: LossDenominators;
}

export interface GrpoLossInputs {
  readonly logProbs: tf.Tensor2D;
  readonly behaviourLogProbs: tf.Tensor2D;
  readonly advantages: tf.Tensor1D;
  readonly mask: tf.Tensor2D;
  /** Log-probs under the frozen reference policy; required when klBeta > 0. */
  readonly refLogProbs?: tf.Tensor2D;
  /** [B, T] constant weights of each token's surrogate (TIS for off-policy answers); absent: all 1. */
  readonly importanceWeights?: tf.Tensor2D;
}

/**
 * The full GRPO objective to minimise: aggregate(clipped surrogate + β·k3). Also returns diagnostics,
 * token means normalised like the loss (a micro-batch's sum to the whole batch's).
 */
export function grpoLoss(
  inputs: GrpoLossInputs,
  opts: GrpoLossOptions,
): { loss: tf.Scalar; clipFraction: tf.Scalar; meanRatio: tf.Scalar; kl: tf.Scalar | undefined } {
  const { logProbs, behaviourLogProbs, advantages, mask, refLogProbs, importanceWeights } = inputs;
  if (opts.klBeta > 0 && !refLogProbs) throw new Error("klBeta > 0 needs reference log-probs");
  return tf.tidy(() => {
    const surrogate = clippedSurrogate(logProbs, behaviourLogProbs, advantages, opts);
    const kl = opts.klBeta > 0 && refLogProbs ? k3KL(logProbs, refLogProbs) : undefined;
    const weighted = importanceWeights ? (tf.mul(surrogate.loss, importanceWeights) as tf.Tensor2D) : surrogate.loss;
    const perToken = kl ? (tf.add(weighted, tf.mul(opts.klBeta, kl)) as tf.Tensor2D) : weighted;
    const tokenMean = (t: tf.Tensor2D) => aggregateLoss(t, mask, "token-mean", opts.denominators);
    return {
      loss: aggregateLoss(perToken, mask, opts.aggregation, opts.denominators),
      clipFraction: tokenMean(surrogate.clipped),
      meanRatio: tokenMean(surrogate.ratio),
      kl: kl ? tokenMean(kl) : undefined,
    };
  });
}
