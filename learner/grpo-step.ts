/**
 * One GRPO update on a batch of scored groups — the part of the learner a researcher holds against
 * the paper. The math lives in grpo.ts; this composes it with the policy and the optimiser.
 */
import * as tf from "@tensorflow/tfjs";
import type { Policy } from "../models/index.ts";
import { groupAdvantages, grpoLoss, type LossAggregation } from "./grpo.ts";
import { optimizerStep } from "./pretrain.ts";

export interface GrpoBatch {
  /** Answers group after group, `groupSize` per group; prompts repeated per answer. */
  readonly prompts: readonly Int32Array[];
  readonly answers: readonly Int32Array[];
  /** log π_behaviour per answer token, as the rollout actor recorded it. */
  readonly behaviourLogProbs: readonly Float32Array[];
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
}

export interface GrpoStats {
  readonly loss: number;
  readonly gradNorm: number;
  readonly clipFraction: number;
  readonly meanRatio: number;
  readonly kl: number;
  readonly meanAdvantageAbs: number;
}

/** Right-pads rows to `[rows, width]` (padding 0 is masked out by the policy's answer mask). */
function padRows(rows: readonly Float32Array[], width: number): tf.Tensor2D {
  const out = new Float32Array(rows.length * width);
  for (const [i, row] of rows.entries()) out.set(row.subarray(0, width), i * width);
  return tf.tensor2d(out, [rows.length, width]);
}

export function grpoUpdate(
  policy: Policy,
  optimizer: tf.AdamOptimizer,
  reference: Policy | undefined,
  batch: GrpoBatch,
  s: GrpoSettings,
): GrpoStats {
  const pairs = { prompts: batch.prompts, answers: batch.answers };
  const width = Math.max(1, ...batch.answers.map((a) => a.length));
  // A_i = (r_i − mean) / (std + ε) within each group, shared by every token of answer i.
  const advantageValues = groupAdvantages(batch.rewards, batch.groupSize, { normalizeStd: s.normalizeStd });
  const advantages = tf.tensor1d(advantageValues);
  const behaviourLogProbs = padRows(batch.behaviourLogProbs, width);
  // The frozen reference's log-probs, for β·KL (computed once, outside any gradient).
  const refLogProbs =
    s.klBeta > 0 && reference
      ? tf.tidy(() => reference.answerLogProbs(pairs, { temperature: s.temperature }).logProbs)
      : undefined;
  const opts = {
    epsLow: s.epsLow,
    epsHigh: s.epsHigh,
    klBeta: s.klBeta,
    aggregation: s.aggregation,
    horizon: s.horizon,
  };

  let last = { loss: 0, gradNorm: 0 };
  let diagnostics: tf.Scalar[] = [];
  for (let update = 0; update < s.updatesPerBatch; update++) {
    tf.dispose(diagnostics);
    last = optimizerStep(
      policy,
      optimizer,
      () => {
        // ρ = π_θ / π_behaviour per token; loss = aggregate(max(−A·ρ, −A·clip(ρ)) + β·k3).
        const { logProbs, mask } = policy.answerLogProbs(pairs, { temperature: s.temperature });
        const out = grpoLoss(
          { logProbs, behaviourLogProbs, advantages, mask, ...(refLogProbs ? { refLogProbs } : {}) },
          opts,
        );
        diagnostics = [tf.keep(out.clipFraction), tf.keep(out.meanRatio), ...(out.kl ? [tf.keep(out.kl)] : [])];
        return out.loss;
      },
      s.learningRate,
      s.clipNorm,
    );
  }
  const [clipFraction, meanRatio, kl] = diagnostics.map((t) => t.dataSync()[0]!);
  tf.dispose([advantages, behaviourLogProbs, ...(refLogProbs ? [refLogProbs] : []), ...diagnostics]);
  return {
    ...last,
    clipFraction: clipFraction ?? 0,
    meanRatio: meanRatio ?? 1,
    kl: kl ?? 0,
    meanAdvantageAbs: advantageValues.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, advantageValues.length),
  };
}
