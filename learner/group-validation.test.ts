import { describe, expect, it } from "vitest";
import type { ScoredGroup } from "../actors/topology.ts";
import { type GroupLimits, invalidGroupReason } from "./group-validation.ts";

/** A policy of 10 tokens and 8 positions, answers of at most 4 tokens, groups of 2, version 3 published. */
const limits: GroupLimits = { vocabSize: 10, maxSeqLen: 8, maxAnswerTokens: 4, groupSize: 2, newestVersion: 3 };

type DraftAnswer = { tokens: Int32Array; logProbs: Float32Array; policyLogProbs?: Float32Array };
type DraftScore = { reward: number };
/** The fields the cases change, writable (two answers and two scores to start with). */
interface Draft {
  rollout: {
    group: { groupId: string; groupSize: number };
    promptTokens: Int32Array;
    answers: [DraftAnswer, DraftAnswer, ...DraftAnswer[]];
    policyVersion: number;
    decoding?: { kind: "cfg"; scale: number };
  };
  scores: [DraftScore, DraftScore, ...DraftScore[]];
}

/** A valid group (prompt of 3 tokens, answers of 4 and 2), with `change` applied. */
function group(change: (g: Draft) => void = () => {}): ScoredGroup {
  const g = {
    rollout: {
      group: {
        groupId: "g7",
        promptId: "p1",
        suite: "test",
        prompt: "who",
        meta: {},
        groupSize: 2,
        createdAt: 0,
      },
      promptTokens: Int32Array.of(1, 5, 6),
      answers: [
        {
          tokens: Int32Array.of(7, 8, 9, 2),
          logProbs: Float32Array.of(-0.5, -1, 0, -3),
          text: "a",
          finishReason: "stop",
        },
        { tokens: Int32Array.of(3, 2), logProbs: Float32Array.of(-2, -0.1), text: "b", finishReason: "stop" },
      ],
      policyVersion: 3,
      timings: { startedAt: 0, finishedAt: 0 },
      actor: "rollout-1",
    },
    scores: [
      { reward: 1, components: {}, failures: [] },
      { reward: -1, components: {}, failures: [] },
    ],
    scorer: "reward-1",
    scoredAt: 0,
  };
  change(g as unknown as Draft);
  return g as unknown as ScoredGroup;
}

describe("invalidGroupReason", () => {
  it("passes a group within every limit (log-prob 0 and version = the newest included)", () => {
    expect(invalidGroupReason(group(), limits)).toBeUndefined();
  });

  it.each([
    [
      "a CFG group whose answer lacks the policy's log-probs",
      (g: Draft) => {
        g.rollout.decoding = { kind: "cfg", scale: 2 };
        g.rollout.answers[0].policyLogProbs = Float32Array.of(-1, -1, -1, -1);
      },
      "answer 1 of a cfg group has 0 policy log-probs for 2 tokens",
    ],
    [
      "a positive policy log-prob",
      (g: Draft) => {
        g.rollout.answers[1].policyLogProbs = Float32Array.of(-1, 0.5);
      },
      "answer 1 policy log-prob 1 is 0.5 (a finite number ≤ 0 expected)",
    ],
    [
      "a token id outside the vocabulary",
      (g: Draft) => {
        g.rollout.answers[1].tokens = Int32Array.of(3, 10);
      },
      "answer 1 token 1 is 10, outside the vocabulary [0, 10)",
    ],
    [
      "a negative token id",
      (g: Draft) => {
        g.rollout.answers[0].tokens = Int32Array.of(7, -1, 9, 2);
      },
      "answer 0 token 1 is -1, outside the vocabulary [0, 10)",
    ],
    [
      "a prompt token outside the vocabulary",
      (g: Draft) => {
        g.rollout.promptTokens = Int32Array.of(1, 1_000_000);
      },
      "prompt token 1 is 1000000, outside the vocabulary [0, 10)",
    ],
    [
      "an empty prompt",
      (g: Draft) => {
        g.rollout.promptTokens = new Int32Array(0);
      },
      "empty prompt (at least one token is needed)",
    ],
    [
      "an answer longer than rollout.maxNewTokens",
      (g: Draft) => {
        g.rollout.answers[1].tokens = Int32Array.of(3, 3, 3, 3, 2);
        g.rollout.answers[1].logProbs = new Float32Array(5);
      },
      "answer 1 has 5 tokens (rollout.maxNewTokens is 4)",
    ],
    [
      "prompt + answer longer than maxSeqLen",
      (g: Draft) => {
        g.rollout.promptTokens = Int32Array.of(1, 1, 1, 1, 1);
      },
      "prompt + answer 0 is 9 tokens (maxSeqLen is 8)",
    ],
    [
      "a NaN log-prob",
      (g: Draft) => {
        g.rollout.answers[0].logProbs = Float32Array.of(-0.5, Number.NaN, 0, -3);
      },
      "answer 0 log-prob 1 is NaN (a finite number ≤ 0 expected)",
    ],
    [
      "an infinite log-prob",
      (g: Draft) => {
        g.rollout.answers[1].logProbs = Float32Array.of(Number.NEGATIVE_INFINITY, -1);
      },
      "answer 1 log-prob 0 is -Infinity (a finite number ≤ 0 expected)",
    ],
    [
      "a positive log-prob",
      (g: Draft) => {
        g.rollout.answers[1].logProbs = Float32Array.of(-1, 0.5);
      },
      "answer 1 log-prob 1 is 0.5 (a finite number ≤ 0 expected)",
    ],
    [
      "log-probs that do not match the tokens",
      (g: Draft) => {
        g.rollout.answers[1].logProbs = Float32Array.of(-1);
      },
      "answer 1 has 2 tokens but 1 log-probs",
    ],
    [
      "a NaN reward",
      (g: Draft) => {
        g.scores[1].reward = Number.NaN;
      },
      "reward of answer 1 is NaN",
    ],
    [
      "an infinite reward",
      (g: Draft) => {
        g.scores[0].reward = Number.POSITIVE_INFINITY;
      },
      "reward of answer 0 is Infinity",
    ],
    [
      "a group size other than the run's",
      (g: Draft) => {
        g.rollout.group.groupSize = 3;
        g.rollout.answers.push(g.rollout.answers[0]);
        g.scores.push(g.scores[0]);
      },
      "group size 3 with 3 answers and 3 scores (rollout.groupSize is 2)",
    ],
    [
      "fewer scores than answers",
      (g: Draft) => {
        g.scores.pop();
      },
      "group size 2 with 2 answers and 1 scores (rollout.groupSize is 2)",
    ],
    [
      "a policy version the learner never published",
      (g: Draft) => {
        g.rollout.policyVersion = 1_000_000_000;
      },
      "claims policy version 1000000000, but the newest published is 3",
    ],
    [
      "a group id of 900 KB",
      (g: Draft) => {
        g.rollout.group.groupId = "x".repeat(900_000);
      },
      "group id of 900000 characters (1 to 128 allowed)",
    ],
  ])("rejects %s", (_, change, reason) => {
    expect(invalidGroupReason(group(change), limits)).toBe(reason);
  });
});
