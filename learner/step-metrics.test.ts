import { describe, expect, it } from "vitest";
import { type LearnerProgress, NO_LEARNER_PROGRESS, type ScoredGroup } from "../actors/index.ts";
import type { GrpoStats } from "./grpo-step.ts";
import { learnerStepMetrics, meanAndStd, sampledTokenEntropy } from "./step-metrics.ts";

const STATS: GrpoStats = { loss: 0.5, gradNorm: 2, clipFraction: 0.25, meanRatio: 1.01, kl: 0.03, meanAdvantageAbs: 1 };

interface AnswerSpec {
  readonly reward: number;
  readonly components: Record<string, number>;
  readonly logProbs: readonly number[];
  readonly finishReason?: "stop" | "length";
  readonly failures?: number;
}

function group(groupId: string, policyVersion: number, answers: readonly AnswerSpec[]): ScoredGroup {
  return {
    rollout: {
      group: {
        groupId,
        promptId: "p1",
        suite: "train",
        prompt: "who",
        meta: {},
        groupSize: answers.length,
        createdAt: 0,
      },
      promptTokens: Int32Array.of(1, 2),
      answers: answers.map((a) => ({
        tokens: Int32Array.from(a.logProbs.map((_, i) => i + 3)),
        logProbs: Float32Array.from(a.logProbs),
        text: "x",
        finishReason: a.finishReason ?? "stop",
      })),
      policyVersion,
      timings: { startedAt: 0, finishedAt: 0 },
      actor: "rollout-1",
    },
    scores: answers.map((a) => ({
      reward: a.reward,
      components: a.components,
      failures: Array.from({ length: a.failures ?? 0 }, () => ({ module: "relevance", kind: "timeout", message: "" })),
    })),
    scorer: "reward-1",
    scoredAt: 0,
  } as unknown as ScoredGroup;
}

// Two groups of two answers: version 4 and version 2, trained on by version 5.
const GROUPS = [
  group("g1", 4, [
    {
      reward: 1,
      components: { precision: 1, "precision.abstained": 0, format: 0, "format.malformed": 0 },
      logProbs: [-1, -1],
    },
    {
      reward: -1,
      components: { precision: 0, "precision.abstained": 0, format: -1, "format.malformed": 1 },
      logProbs: [-2, -2, -2, -2],
      finishReason: "length",
    },
  ]),
  group("g2", 2, [
    {
      reward: 0,
      components: { precision: 0, "precision.abstained": 1, format: 0, "format.malformed": 0, "service:judge": 0.5 },
      logProbs: [-0.5],
      failures: 1,
    },
    {
      reward: 0.5,
      components: { precision: 0.5, "precision.abstained": 0, format: 0, "format.malformed": 0 },
      logProbs: [-0.5],
    },
  ]),
];
const PROGRESS: LearnerProgress = {
  ...NO_LEARNER_PROGRESS,
  step: 7,
  policyVersion: 6,
  consumed: 14,
  stale: 3,
  zeroVariance: 5,
  duplicates: 1,
  invalid: 2,
};

describe("meanAndStd", () => {
  it("is the mean and the population standard deviation; nothing for no values", () => {
    expect(meanAndStd([1, 3])).toEqual({ mean: 2, std: 1 });
    expect(meanAndStd([2, 4, 4, 4, 5, 5, 7, 9])).toEqual({ mean: 5, std: 2 });
    expect(meanAndStd([])).toBeUndefined();
  });
});

describe("learnerStepMetrics", () => {
  const m = learnerStepMetrics(STATS, GROUPS, PROGRESS, 5);

  it("reports the reward's mean and spread over every answer", () => {
    // Rewards 1, −1, 0, 0.5: mean 0.125, variance (0.765625 + 1.265625 + 0.015625 + 0.140625) / 4.
    expect(m["learner.reward.mean"]).toBeCloseTo(0.125, 12);
    expect(m["learner.reward.std"]).toBeCloseTo(Math.sqrt(2.1875 / 4), 12);
  });

  it("reports every term and component, built-in and plug-in, over the answers that have it", () => {
    expect(m["learner.term.precision.mean"]).toBeCloseTo(0.375, 12);
    expect(m["learner.term.format.malformed.mean"]).toBe(0.25);
    expect(m["learner.term.format.mean"]).toBe(-0.25);
    // Only one answer has the plug-in's term: its spread is 0.
    expect(m["learner.term.service:judge.mean"]).toBe(0.5);
    expect(m["learner.term.service:judge.std"]).toBe(0);
  });

  it("reports answer length, the malformed / truncated / abstaining shares and the reward failures", () => {
    // Lengths 2, 4, 1, 1.
    expect(m["learner.answerTokens.mean"]).toBe(2);
    expect(m["learner.answerTokens.std"]).toBeCloseTo(Math.sqrt(1.5), 12);
    expect(m["learner.truncatedShare"]).toBe(0.25);
    expect(m["learner.malformedShare"]).toBe(0.25);
    expect(m["learner.abstainedShare"]).toBe(0.25);
    expect(m["learner.rewardFailures"]).toBe(1);
  });

  it("reports the update's figures and the sampled-token entropy estimate", () => {
    expect(m).toMatchObject({ "learner.loss": 0.5, "learner.kl": 0.03, "learner.clipFraction": 0.25 });
    // −mean log-prob over 8 tokens: (2 + 8 + 0.5 + 0.5) / 8.
    expect(m["learner.entropy"]).toBeCloseTo(11 / 8, 6);
    expect(sampledTokenEntropy([])).toBe(0);
  });

  it("reports the policy lag of the groups used against the version trained on, and the drops by reason", () => {
    // Lags 5 − 4 = 1 and 5 − 2 = 3.
    expect(m["learner.policyLag.mean"]).toBe(2);
    expect(m["learner.policyLag.std"]).toBe(1);
    expect(m["learner.policyLag.max"]).toBe(3);
    expect(m).toMatchObject({
      "learner.groups": 2,
      "learner.consumed": 14,
      "learner.drops.stale": 3,
      "learner.drops.zeroVariance": 5,
      "learner.drops.duplicates": 1,
      "learner.drops.invalid": 2,
      "learner.policyVersion": 6,
    });
  });

  it("checks bite: a different version trained on changes the lag", () => {
    expect(learnerStepMetrics(STATS, GROUPS, PROGRESS, 4)["learner.policyLag.mean"]).toBe(1);
  });
});
