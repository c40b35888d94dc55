/**
 * One GRPO update on a batch of scored groups — the part of the learner a researcher holds against
 * the paper. The math lives in grpo.ts; this composes it with the policy and the optimiser. The
 * batch may go through in micro-batches (`microBatchAnswers`): their gradients are summed and the
 * optimiser steps once, the same update as the whole batch in one pass.
 *
 * Non-finite numbers never reach the weights: an update whose advantages, loss or gradient norm is
 * not finite is not applied, and the stats say why (`skipped`).
 */
import * as tf from "@tensorflow/tfjs";
import { accumulateGradients, eventLoopYielder, type Policy, type PromptAnswerBatch } from "../models/index.ts";
import { groupAdvantages, grpoLoss, type LossAggregation } from "./grpo.ts";

export interface GrpoBatch {
  /** Answers group after group, `groupSize` per group; prompts repeated per answer. */
  readonly prompts: readonly Int32Array[];
  readonly answers: readonly Int32Array[];
  /**
   * log π_old per answer token, ρ's denominator: what the rollout actor recorded (for an off-policy
   * answer under TIS, the sampling policy's own log-probs, not the guided decoder's).
   */
  readonly behaviourLogProbs: readonly Float32Array[];
  /** Per answer token, the TIS weight of off-policy answers (1 for on-policy ones); absent: all 1. */
  readonly importanceWeights?: readonly Float32Array[];
  readonly rewards: readonly number[];
  readonly groupSize: number;
}

export interface GrpoSettings {
  readonly learningRate: number;
  readonly clipNorm: number;
  readonly epsLow: number;
  readonly epsHigh: number;
  readonly klBeta: number;
  readonly aggregation: LossAggregation;
  readonly normalizeStd: boolean;
  readonly updatesPerBatch: number;
  /** The sampling temperature: log-probs are taken under softmax(logits / T), as the rollout did. */
  readonly temperature: number;
  /** Constant normaliser of seq-mean-token-sum-norm (the answer-token budget). */
  readonly horizon: number;
  /**
   * Answers per forward/backward pass: gradients of micro-batches this size are summed and the
   * optimiser steps once (the same update up to float rounding, with one micro-batch's activations
   * in memory); 0: the whole batch in one pass.
   */
  readonly microBatchAnswers: number;
}

export interface GrpoStats {
  readonly loss: number;
  readonly gradNorm: number;
  readonly clipFraction: number;
  readonly meanRatio: number;
  readonly kl: number;
  readonly meanAdvantageAbs: number;
  /**
   * Why (part of) the update was not applied: non-finite advantages, loss or gradient norm. Updates
   * of `updatesPerBatch` before it were applied (theirs were finite); none after it ran.
   */
  readonly skipped?: string;
}

/** Right-pads rows to `[rows, width]` (padding 0 is masked out by the policy's answer mask). */
function padRows(rows: readonly Float32Array[], width: number): tf.Tensor2D {
  const out = new Float32Array(rows.length * width);
  for (const [i, row] of rows.entries()) out.set(row.subarray(0, width), i * width);
  return tf.tensor2d(out, [rows.length, width]);
}

/** One forward/backward's share of the batch, padded only to its own longest answer. */
interface MicroBatch {
  readonly pairs: PromptAnswerBatch;
  readonly behaviourLogProbs: tf.Tensor2D;
  readonly importanceWeights: tf.Tensor2D | undefined;
  readonly advantages: tf.Tensor1D;
  /** The frozen reference's log-probs, for β·KL (computed once, outside any gradient). */
  readonly refLogProbs: tf.Tensor2D | undefined;
}

/** Consecutive [start, end) ranges of `size` answers (the last may be shorter); size 0: one range. */
export function microBatchRanges(answers: number, size: number): [number, number][] {
  if (!Number.isInteger(size) || size < 0) throw new Error(`microBatchAnswers must be an integer ≥ 0, got ${size}`);
  const step = size === 0 ? Math.max(1, answers) : size;
  const ranges: [number, number][] = [];
  for (let start = 0; start < answers; start += step) ranges.push([start, Math.min(answers, start + step)]);
  return ranges;
}

export async function grpoUpdate(
  policy: Policy,
  optimizer: tf.AdamOptimizer,
  reference: Policy | undefined,
  batch: GrpoBatch,
  s: GrpoSettings,
): Promise<GrpoStats> {
  // A_i = (r_i − mean) / (std + ε) within each group, shared by every token of answer i.
  const advantageValues = groupAdvantages(batch.rewards, batch.groupSize, { normalizeStd: s.normalizeStd });
  const meanAdvantageAbs = advantageValues.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, advantageValues.length);
  const badAdvantage = advantageValues.findIndex((a) => !Number.isFinite(a));
  if (badAdvantage >= 0) {
    // Finite rewards can still overflow the group's mean or variance (|r| near 1e308).
    const skipped = `advantage of answer ${badAdvantage} is ${advantageValues[badAdvantage]}`;
    return { loss: Number.NaN, gradNorm: Number.NaN, clipFraction: 0, meanRatio: 0, kl: 0, meanAdvantageAbs, skipped };
  }
  const microBatches: MicroBatch[] = microBatchRanges(batch.answers.length, s.microBatchAnswers).map(([from, to]) => {
    const pairs = { prompts: batch.prompts.slice(from, to), answers: batch.answers.slice(from, to) };
    const width = Math.max(1, ...pairs.answers.map((a) => a.length));
    return {
      pairs,
      behaviourLogProbs: padRows(batch.behaviourLogProbs.slice(from, to), width),
      importanceWeights: batch.importanceWeights && padRows(batch.importanceWeights.slice(from, to), width),
      advantages: tf.tensor1d(advantageValues.slice(from, to)),
      refLogProbs:
        s.klBeta > 0 && reference
          ? tf.tidy(() => reference.answerLogProbs(pairs, { temperature: s.temperature }).logProbs)
          : undefined,
    };
  });
  // Every micro-batch is normalised by the whole batch's counts, so their losses sum to its loss.
  const answerTokens = batch.answers.reduce((n, a) => n + a.length, 0);
  const opts = {
    epsLow: s.epsLow,
    epsHigh: s.epsHigh,
    klBeta: s.klBeta,
    aggregation: s.aggregation,
    denominators: {
      tokens: Math.max(1, answerTokens),
      answers: batch.answers.length,
      horizon: s.horizon,
    },
  };

  let last = { loss: 0, gradNorm: 0 };
  let skipped: string | undefined;
  let diagnostics: tf.Scalar[][] = [];
  // A long update (BLT: seconds per micro-batch) must not starve the learner's heartbeats and keep-alives.
  const letOthersRun = eventLoopYielder();
  for (let update = 0; update < s.updatesPerBatch; update++) {
    tf.dispose(diagnostics.flat());
    diagnostics = [];
    const gradients = accumulateGradients(policy);
    for (const m of microBatches) {
      await letOthersRun();
      gradients.add(() => {
        // ρ = π_θ / π_behaviour per token; loss = aggregate(max(−A·ρ, −A·clip(ρ)) + β·k3).
        const { logProbs, mask } = policy.answerLogProbs(m.pairs, { temperature: s.temperature });
        const { behaviourLogProbs, advantages, refLogProbs, importanceWeights } = m;
        const out = grpoLoss(
          {
            logProbs,
            behaviourLogProbs,
            advantages,
            mask,
            ...(refLogProbs ? { refLogProbs } : {}),
            ...(importanceWeights ? { importanceWeights } : {}),
          },
          opts,
        );
        diagnostics.push([tf.keep(out.clipFraction), tf.keep(out.meanRatio), ...(out.kl ? [tf.keep(out.kl)] : [])]);
        return out.loss;
      });
    }
    const applied = gradients.apply(optimizer, s.learningRate, s.clipNorm, { onlyIfFinite: true });
    last = { loss: applied.loss, gradNorm: applied.gradNorm };
    if (!applied.applied) {
      skipped = `update ${update + 1} of ${s.updatesPerBatch}: loss ${applied.loss}, gradient norm ${applied.gradNorm}`;
      break;
    }
  }
  // Each micro-batch's diagnostics are its share of the whole batch's token means.
  const total = (k: number) => diagnostics.reduce((sum, d) => sum + (d[k]?.dataSync()[0] ?? 0), 0);
  const stats = { clipFraction: total(0), meanRatio: total(1), kl: total(2) };
  tf.dispose([
    ...diagnostics.flat(),
    ...microBatches.flatMap((m) => [
      m.behaviourLogProbs,
      m.advantages,
      ...(m.refLogProbs ? [m.refLogProbs] : []),
      ...(m.importanceWeights ? [m.importanceWeights] : []),
    ]),
  ]);
  return { ...last, ...stats, meanAdvantageAbs, ...(skipped === undefined ? {} : { skipped }) };
}
