import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import type { ScoredGroup } from "../actors/index.ts";
import {
  aggregateLoss,
  clippedSurrogate,
  groupAdvantages,
  grpoLoss,
  k3KL,
  type LossAggregation,
  type LossDenominators,
  truncatedImportanceWeights,
} from "./grpo.ts";
import { toGrpoBatch } from "./learner.ts";

const close = (actual: readonly number[], expected: readonly number[], digits = 5) => {
  expect(actual.length).toBe(expected.length);
  for (const [i, value] of actual.entries()) expect(value).toBeCloseTo(expected[i]!, digits);
};
const t2 = (rows: number[][]) => tf.tensor2d(rows, undefined, "float32");

describe("groupAdvantages", () => {
  it("normalises by the group's sample std and zeroes a zero-variance group", () => {
    // group 1: mean 2, sample std sqrt((1 + 0 + 1) / 2) = 1; group 2: all equal.
    close(groupAdvantages([1, 2, 3, 5, 5, 5], 3), [-1 / (1 + 1e-6), 0, 1 / (1 + 1e-6), 0, 0, 0]);
  });

  it("uses N−1 in the std: two answers 0 and 1 give ±1/√2", () => {
    close(groupAdvantages([0, 1], 2, { eps: 0 }), [-Math.SQRT1_2, Math.SQRT1_2]);
  });

  it("Dr. GRPO: r − mean without std normalisation", () => {
    close(groupAdvantages([1, 2, 3, 0, 4, 8], 3, { normalizeStd: false }), [-1, 0, 1, -4, 0, 4]);
  });

  it("a group of one carries no signal", () => {
    expect(groupAdvantages([0.3, 0.9], 1)).toEqual([0, 0]);
  });

  it("rejects a length that is not a multiple of the group size", () => {
    expect(() => groupAdvantages([1, 2, 3], 2)).toThrow(/not a multiple of groupSize 2/);
  });
});

describe("clippedSurrogate", () => {
  const opts = { epsLow: 0.2, epsHigh: 0.28 };
  const logProbs = t2([
    [Math.log(1.5), Math.log(0.5), Math.log(1.1)],
    [Math.log(1.5), Math.log(0.5), Math.log(1.1)],
  ]);
  const behaviour = t2([
    [0, 0, 0],
    [0, 0, 0],
  ]);

  it("clips a positive advantage above 1+ε_high and a negative one below 1−ε_low", () => {
    const { loss, clipped, ratio } = clippedSurrogate(logProbs, behaviour, tf.tensor1d([1, -1]), opts);
    close(Array.from(ratio.dataSync()), [1.5, 0.5, 1.1, 1.5, 0.5, 1.1]);
    // A = +1: max(−ρ, −clip(ρ)) = [−1.28, −0.5, −1.1]; A = −1: max(ρ, clip(ρ)) = [1.5, 0.8, 1.1].
    close(Array.from(loss.dataSync()), [-1.28, -0.5, -1.1, 1.5, 0.8, 1.1]);
    expect(Array.from(clipped.dataSync())).toEqual([1, 0, 0, 0, 1, 0]);
  });

  it("passes no gradient through clipped tokens and −A/N through the others", () => {
    const advantages = tf.tensor1d([1, -1]);
    const mask = t2([
      [1, 1, 1],
      [1, 1, 1],
    ]);
    const grad = tf.grad((lp: tf.Tensor) =>
      aggregateLoss(clippedSurrogate(lp as tf.Tensor2D, behaviour, advantages, opts).loss, mask, "token-mean"),
    )(logProbs);
    // d(−A·ρ)/d log π = −A·ρ, divided by the 6 tokens; clipped tokens (index 0 and 4) get 0.
    close(Array.from(grad.dataSync()), [0, -0.5 / 6, -1.1 / 6, 1.5 / 6, 0, 1.1 / 6]);
  });
});

describe("k3KL", () => {
  it("is exp(ref−θ) − (ref−θ) − 1 and zero where the policies agree", () => {
    const kl = k3KL(t2([[Math.log(0.5), Math.log(0.3)]]), t2([[Math.log(0.25), Math.log(0.3)]]));
    close(Array.from(kl.dataSync()), [0.5 + Math.log(2) - 1, 0]);
  });
});

describe("aggregateLoss", () => {
  const perToken = t2([
    [1, 2, 3],
    [4, 9, 9],
  ]);
  const mask = t2([
    [1, 1, 1],
    [1, 0, 0],
  ]);
  it("token-mean weighs every kept token the same", () => {
    expect(aggregateLoss(perToken, mask, "token-mean").dataSync()[0]).toBeCloseTo(10 / 4, 6);
  });
  it("seq-mean-token-mean averages each answer first", () => {
    expect(aggregateLoss(perToken, mask, "seq-mean-token-mean").dataSync()[0]).toBeCloseTo((2 + 4) / 2, 6);
  });
  it("seq-mean-token-sum-norm divides token sums by a constant horizon", () => {
    expect(aggregateLoss(perToken, mask, "seq-mean-token-sum-norm").dataSync()[0]).toBeCloseTo((6 / 3 + 4 / 3) / 2, 6);
    expect(aggregateLoss(perToken, mask, "seq-mean-token-sum-norm", { horizon: 10 }).dataSync()[0]).toBeCloseTo(
      (0.6 + 0.4) / 2,
      6,
    );
  });

  // Micro-batches: row 0 alone ([1, 2, 3], mask 1 1 1) and row 1 alone, padded only to its own
  // longest answer ([4], mask 1), each normalised by the whole batch's counts (4 tokens, 2 answers,
  // horizon 3 = the whole batch's width) must sum to the whole-batch loss.
  const first = { perToken: t2([[1, 2, 3]]), mask: t2([[1, 1, 1]]) };
  const second = { perToken: t2([[4]]), mask: t2([[1]]) };
  const whole = { tokens: 4, answers: 2, horizon: 3 };
  const split = (mode: LossAggregation, denominators: LossDenominators) =>
    [first, second].map((c) => aggregateLoss(c.perToken, c.mask, mode, denominators).dataSync()[0]!);
  it("token-mean of a micro-batch: its masked sum / the whole batch's tokens", () => {
    // 6 / 4 + 4 / 4 = 2.5 = 10 / 4
    close(split("token-mean", whole), [1.5, 1]);
  });
  it("seq-mean-token-mean of a micro-batch: its sum of answer means / the whole batch's answers", () => {
    // (6 / 3) / 2 + (4 / 1) / 2 = 1 + 2 = 3 = (2 + 4) / 2
    close(split("seq-mean-token-mean", whole), [1, 2]);
  });
  it("seq-mean-token-sum-norm of a micro-batch: its token sums / the whole batch's horizon / answers", () => {
    // 6 / 3 / 2 + 4 / 3 / 2 = 1 + 2/3 = 5/3 = (6/3 + 4/3) / 2
    close(split("seq-mean-token-sum-norm", whole), [1, 2 / 3]);
    // The second micro-batch's own width (1) as the horizon would give 4 / 1 / 2 = 2, not 2/3.
    close(split("seq-mean-token-sum-norm", { answers: 2 }), [1, 2]);
  });
});

describe("grpoLoss", () => {
  it("adds β·k3 to the surrogate before aggregating, and reports diagnostics", () => {
    const logProbs = t2([[Math.log(0.5), Math.log(0.5)]]);
    const behaviour = t2([[Math.log(0.5), Math.log(0.5)]]);
    const ref = t2([[Math.log(0.25), Math.log(0.5)]]);
    const mask = t2([[1, 1]]);
    const out = grpoLoss(
      { logProbs, behaviourLogProbs: behaviour, advantages: tf.tensor1d([2]), mask, refLogProbs: ref },
      { epsLow: 0.2, epsHigh: 0.2, klBeta: 0.1, aggregation: "token-mean" },
    );
    const k3 = 0.5 + Math.log(2) - 1;
    // ρ = 1 everywhere: surrogate −2 per token; KL only on the first token.
    expect(out.loss.dataSync()[0]).toBeCloseTo((-2 + 0.1 * k3 - 2) / 2, 6);
    expect(out.meanRatio.dataSync()[0]).toBeCloseTo(1, 6);
    expect(out.clipFraction.dataSync()[0]).toBe(0);
    expect(out.kl?.dataSync()[0]).toBeCloseTo(k3 / 2, 6);
  });

  it("a micro-batch's loss and diagnostics are its share of the whole batch's", () => {
    // The clippedSurrogate example above with β = 0.1 to a reference of log 1 (k3 = ρ − log ρ − 1
    // per token), split into its two answers; the whole batch has 6 tokens.
    const opts = { epsLow: 0.2, epsHigh: 0.28, klBeta: 0.1, aggregation: "token-mean" } as const;
    const row = [Math.log(1.5), Math.log(0.5), Math.log(1.1)];
    const k3 = row.map((lp) => Math.exp(-lp) + lp - 1);
    const sumK3 = k3.reduce((a, b) => a + b, 0);
    const answer = (advantage: number) =>
      grpoLoss(
        {
          logProbs: t2([row]),
          behaviourLogProbs: t2([[0, 0, 0]]),
          advantages: tf.tensor1d([advantage]),
          mask: t2([[1, 1, 1]]),
          refLogProbs: t2([[0, 0, 0]]),
        },
        { ...opts, denominators: { tokens: 6, answers: 2 } },
      );
    const [positive, negative] = [answer(1), answer(-1)];
    const value = (t: tf.Scalar | undefined) => t!.dataSync()[0]!;
    // Surrogates [−1.28, −0.5, −1.1] and [1.5, 0.8, 1.1] (see above), each plus 0.1·k3, over 6 tokens.
    close([value(positive.loss), value(negative.loss)], [(-2.88 + 0.1 * sumK3) / 6, (3.4 + 0.1 * sumK3) / 6]);
    // One clipped token each: 1/6 + 1/6 = 2/6 of the batch; ratios 3.1 per answer: 6.2 / 6.
    close([value(positive.clipFraction), value(negative.clipFraction)], [1 / 6, 1 / 6]);
    close([value(positive.meanRatio), value(negative.meanRatio)], [3.1 / 6, 3.1 / 6]);
    close([value(positive.kl), value(negative.kl)], [sumK3 / 6, sumK3 / 6]);
    // The whole batch in one call: the sums of the above.
    const both = grpoLoss(
      {
        logProbs: t2([row, row]),
        behaviourLogProbs: t2([
          [0, 0, 0],
          [0, 0, 0],
        ]),
        advantages: tf.tensor1d([1, -1]),
        mask: t2([
          [1, 1, 1],
          [1, 1, 1],
        ]),
        refLogProbs: t2([
          [0, 0, 0],
          [0, 0, 0],
        ]),
      },
      opts,
    );
    close(
      [value(both.loss), value(both.clipFraction), value(both.meanRatio), value(both.kl)],
      [(0.52 + 0.2 * sumK3) / 6, 2 / 6, 6.2 / 6, (2 * sumK3) / 6],
    );
  });

  it("refuses a KL term without reference log-probs", () => {
    const x = t2([[0]]);
    expect(() =>
      grpoLoss(
        { logProbs: x, behaviourLogProbs: x, advantages: tf.tensor1d([1]), mask: x },
        { epsLow: 0.2, epsHigh: 0.2, klBeta: 0.1, aggregation: "token-mean" },
      ),
    ).toThrow(/reference log-probs/);
  });
});

describe("truncatedImportanceWeights (TIS)", () => {
  it("is min(exp(log π_old − log μ), cap) per token: a worked example", () => {
    // π_old/μ = 0.5 (the decoder liked the token more), 1, 4 → capped at 2.
    const w = truncatedImportanceWeights(
      Float32Array.of(Math.log(0.2), Math.log(0.3), Math.log(0.8)),
      Float32Array.of(Math.log(0.4), Math.log(0.3), Math.log(0.2)),
      2,
    );
    expect(w[0]).toBeCloseTo(0.5, 6);
    expect(w[1]).toBeCloseTo(1, 6);
    expect(w[2]).toBe(2);
  });

  it("refuses a cap below 1 or not finite, and rows of different lengths", () => {
    expect(() => truncatedImportanceWeights(Float32Array.of(0), Float32Array.of(0), 0.5)).toThrow(/cap/);
    expect(() => truncatedImportanceWeights(Float32Array.of(0), Float32Array.of(0), Number.NaN)).toThrow(/cap/);
    expect(() => truncatedImportanceWeights(Float32Array.of(0), Float32Array.of(0, 0), 2)).toThrow(
      /1 policy log-probs/,
    );
  });

  it("weighs each token's surrogate in grpoLoss (weights 1 change nothing; 0.5 halves an unclipped token)", () => {
    const inputs = {
      logProbs: tf.tensor2d([[-1, -1]]),
      behaviourLogProbs: tf.tensor2d([[-1, -1]]),
      advantages: tf.tensor1d([2]),
      mask: tf.tensor2d([[1, 1]]),
    };
    const opts = { epsLow: 0.2, epsHigh: 0.2, klBeta: 0, aggregation: "token-mean" as const };
    const plain = grpoLoss(inputs, opts).loss.dataSync()[0]!;
    const ones = grpoLoss({ ...inputs, importanceWeights: tf.tensor2d([[1, 1]]) }, opts).loss.dataSync()[0]!;
    const half = grpoLoss({ ...inputs, importanceWeights: tf.tensor2d([[0.5, 1]]) }, opts).loss.dataSync()[0]!;
    // ρ = 1: per-token loss −A = −2; token mean −2; with weights (0.5, 1): (−1 − 2) / 2.
    expect(plain).toBeCloseTo(-2, 6);
    expect(ones).toBeCloseTo(-2, 6);
    expect(half).toBeCloseTo(-1.5, 6);
  });
});

describe("toGrpoBatch with off-policy groups", () => {
  const answer = (logProbs: number[], policyLogProbs?: number[]) => ({
    tokens: Int32Array.from(logProbs.map((_, i) => 5 + i)),
    logProbs: Float32Array.from(logProbs),
    ...(policyLogProbs ? { policyLogProbs: Float32Array.from(policyLogProbs) } : {}),
    text: "a",
    finishReason: "stop" as const,
  });
  const group = (answers: ReturnType<typeof answer>[], marked: boolean): ScoredGroup => ({
    rollout: {
      group: { groupId: "g", promptId: "p", suite: "s", prompt: "q", meta: {}, groupSize: 2, createdAt: 0 },
      promptTokens: Int32Array.of(1, 2),
      answers,
      policyVersion: 0,
      timings: { startedAt: 0, finishedAt: 0 },
      actor: "r",
      ...(marked ? { decoding: { kind: "cfg" as const, scale: 2 } } : {}),
    },
    scores: answers.map((_, i) => ({ reward: i, components: {}, failures: [] })),
    scorer: "s",
    scoredAt: 0,
  });

  it("on-policy only: no weights; a marked group: ρ over the policy's own log-probs and TIS weights, on-policy rows weigh 1", () => {
    const onPolicy = group([answer([-1, -2]), answer([-0.5])], false);
    expect(toGrpoBatch([onPolicy]).importanceWeights).toBeUndefined();
    const marked = group(
      [answer([Math.log(0.4), Math.log(0.1)], [Math.log(0.2), Math.log(0.5)]), answer([-1], [-1])],
      true,
    );
    const batch = toGrpoBatch([onPolicy, marked], 3);
    expect(Array.from(batch.behaviourLogProbs[2]!)).toEqual([Math.fround(Math.log(0.2)), Math.fround(Math.log(0.5))]);
    expect(Array.from(batch.importanceWeights![0]!)).toEqual([1, 1]);
    expect(batch.importanceWeights![2]![0]).toBeCloseTo(0.5, 5);
    expect(batch.importanceWeights![2]![1]).toBe(3); // 0.5 / 0.1 = 5, capped at 3
    expect(Array.from(batch.importanceWeights![3]!)).toEqual([1]);
  });
});
