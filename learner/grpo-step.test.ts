import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend, loadCheckpoint, mulberry32, type Policy } from "../models/index.ts";
import { LOSS_AGGREGATIONS } from "./grpo.ts";
import { type GrpoBatch, type GrpoSettings, grpoUpdate, microBatchRanges } from "./grpo-step.ts";

const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("microBatchRanges", () => {
  it("splits answers into consecutive runs of the size, the last one shorter", () => {
    expect(microBatchRanges(8, 3)).toEqual([
      [0, 3],
      [3, 6],
      [6, 8],
    ]);
    expect(microBatchRanges(8, 8)).toEqual([[0, 8]]);
    expect(microBatchRanges(8, 20)).toEqual([[0, 8]]);
  });
  it("0 means the whole batch at once", () => {
    expect(microBatchRanges(8, 0)).toEqual([[0, 8]]);
  });
  it("rejects a size that is not an integer ≥ 0", () => {
    expect(() => microBatchRanges(8, -1)).toThrow(/microBatchAnswers must be an integer ≥ 0, got -1/);
    expect(() => microBatchRanges(8, 1.5)).toThrow(/got 1.5/);
  });
});

/**
 * 2 groups × 4 answers sampled from the policy and cut to uneven lengths (so micro-batches of 3
 * split a group and pad to different widths); behaviour log-probs are the sampler's, shifted by up
 * to ±0.4 so ratios move and clip.
 */
async function scoredBatch(policy: Policy, temperature: number): Promise<GrpoBatch> {
  const random = mulberry32(5);
  const lengths = [9, 3, 14, 6, 11, 1, 7, 12];
  const groupPrompts = [Int32Array.of(1, 40, 41, 42, 43), Int32Array.of(1, 50, 51, 52)];
  const prompts = lengths.map((_, i) => groupPrompts[Math.floor(i / 4)]!);
  const { sequences } = await policy.sample(prompts, { temperature, maxNewTokens: 14, stopTokens: [], seed: 3 });
  const answers = sequences.map((q, i) => q.tokens.slice(0, lengths[i]));
  const behaviourLogProbs = sequences.map((q, i) =>
    q.logProbs.slice(0, lengths[i]).map((lp) => lp + 0.8 * (random() - 0.5)),
  );
  return { prompts, answers, behaviourLogProbs, rewards: [0.1, 0.9, 0.4, 0.2, 1, 0, 0.5, 0.7], groupSize: 4 };
}

/**
 * The fixture with every weight jittered (σ 0.02): a reference unlike the policy, so KL and its
 * gradient are not 0. Seeds start at 1: tfjs takes a seed of 0 as "none" and draws a random one.
 */
async function nearbyReference(): Promise<Policy> {
  const { policy } = await loadCheckpoint(TINY_POLICY);
  policy.trainableVariables.forEach((v, i) => {
    tf.tidy(() => v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.02, "float32", i + 1))));
  });
  return policy;
}

const weightsOf = (policy: Policy) => policy.trainableVariables.map((v) => Float32Array.from(v.dataSync()));
const maxAbsDiff = (a: readonly Float32Array[], b: readonly Float32Array[]) =>
  Math.max(...a.map((x, i) => Math.max(...x.map((v, j) => Math.abs(v - b[i]![j]!)))));

describe("grpoUpdate with micro-batches", () => {
  const settings = (overrides: Partial<GrpoSettings>): GrpoSettings => ({
    learningRate: 1e-3,
    clipNorm: 1,
    epsLow: 0.2,
    epsHigh: 0.28,
    klBeta: 0,
    aggregation: "token-mean",
    normalizeStd: true,
    updatesPerBatch: 2,
    temperature: 0.9,
    horizon: 16,
    microBatchAnswers: 0,
    ...overrides,
  });

  const cases = LOSS_AGGREGATIONS.flatMap((aggregation) => [0, 0.05].map((klBeta) => ({ aggregation, klBeta })));
  it.each(cases)("3 answers at a time ($aggregation, β $klBeta) = the whole batch at once", async (c) => {
    const [whole, split] = await Promise.all([loadCheckpoint(TINY_POLICY), loadCheckpoint(TINY_POLICY)]);
    const reference = await nearbyReference();
    const s = settings(c);
    const batch = await scoredBatch(whole.policy, s.temperature);
    const initial = weightsOf(whole.policy);
    // Adam's ε at 1e-3: a gradient component at rounding level then moves a weight by ≈ 0, not by
    // ±lr as with ε = 1e-8 (where float rounding alone could flip its step).
    const adam = () => tf.train.adam(s.learningRate, 0.9, 0.95, 1e-3);
    const [wholeOptimizer, splitOptimizer] = [adam(), adam()];
    for (let step = 0; step < 2; step++) {
      const a = await grpoUpdate(whole.policy, wholeOptimizer, reference, batch, s);
      const b = await grpoUpdate(split.policy, splitOptimizer, reference, batch, { ...s, microBatchAnswers: 3 });
      for (const key of ["loss", "gradNorm", "clipFraction", "meanRatio", "kl"] as const) {
        expect(Math.abs(b[key] - a[key]), key).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(a[key])));
      }
      expect(b.meanAdvantageAbs).toBe(a.meanAdvantageAbs);
      // The checks bite: tokens clip (so ratios left the trust band), the KL term is on when β > 0.
      // (Not "mean ratio ≠ 1": ratios move both ways, so their mean can sit near 1 by chance.)
      expect(a.clipFraction).toBeGreaterThan(0);
      if (c.klBeta > 0) expect(a.kl).toBeGreaterThan(0.1);
    }
    const [wholeWeights, splitWeights] = [weightsOf(whole.policy), weightsOf(split.policy)];
    expect(maxAbsDiff(wholeWeights, initial)).toBeGreaterThan(1e-3);
    expect(maxAbsDiff(splitWeights, wholeWeights)).toBeLessThanOrEqual(1e-5);
    for (const p of [whole.policy, split.policy, reference]) p.dispose();
    wholeOptimizer.dispose();
    splitOptimizer.dispose();
  });

  it("frees every tensor it makes", async () => {
    const { policy } = await loadCheckpoint(TINY_POLICY);
    const reference = await nearbyReference();
    const s = settings({ klBeta: 0.05, aggregation: "seq-mean-token-sum-norm", microBatchAnswers: 3 });
    const batch = await scoredBatch(policy, s.temperature);
    const optimizer = tf.train.adam(s.learningRate);
    await grpoUpdate(policy, optimizer, reference, batch, s); // Adam makes its moment variables on the first step
    const before = tf.memory().numTensors;
    await grpoUpdate(policy, optimizer, reference, batch, s);
    await grpoUpdate(policy, optimizer, reference, batch, { ...s, microBatchAnswers: 0, klBeta: 0 });
    expect(tf.memory().numTensors).toBe(before);
    policy.dispose();
    reference.dispose();
    optimizer.dispose();
  });
});

describe("grpoUpdate never applies non-finite numbers", () => {
  const s: GrpoSettings = {
    learningRate: 1e-2,
    clipNorm: 1,
    epsLow: 0.2,
    epsHigh: 0.28,
    klBeta: 0,
    aggregation: "token-mean",
    normalizeStd: true,
    updatesPerBatch: 1,
    temperature: 1,
    horizon: 16,
    microBatchAnswers: 0,
  };

  it.each([
    {
      poison: "an infinite behaviour log-prob (ρ = exp(log π − (−∞)) = ∞)",
      poisoned: (b: GrpoBatch): GrpoBatch => ({
        ...b,
        behaviourLogProbs: b.behaviourLogProbs.map((lp) => lp.map(() => Number.NEGATIVE_INFINITY)),
      }),
      reason: /update 1 of 1: loss (NaN|-?Infinity)/,
    },
    {
      poison: "a NaN reward (the group's advantages)",
      poisoned: (b: GrpoBatch): GrpoBatch => ({ ...b, rewards: b.rewards.map((r, i) => (i === 2 ? Number.NaN : r)) }),
      reason: /advantage of answer 0 is NaN/,
    },
  ])("skips the update on $poison: weights unchanged, the skip reported", async ({ poisoned, reason }) => {
    const { policy } = await loadCheckpoint(TINY_POLICY);
    const batch = await scoredBatch(policy, s.temperature);
    const optimizer = tf.train.adam(s.learningRate);
    const initial = weightsOf(policy);
    const skipped = await grpoUpdate(policy, optimizer, undefined, poisoned(batch), s);
    expect(skipped.skipped).toMatch(reason);
    expect(maxAbsDiff(weightsOf(policy), initial)).toBe(0);
    // The check bites: the same batch without the poison moves the weights, and they stay finite.
    const applied = await grpoUpdate(policy, optimizer, undefined, batch, s);
    expect(applied.skipped).toBeUndefined();
    const after = weightsOf(policy);
    expect(maxAbsDiff(after, initial)).toBeGreaterThan(1e-4);
    expect(after.every((w) => w.every(Number.isFinite))).toBe(true);
    policy.dispose();
    optimizer.dispose();
  });
});
