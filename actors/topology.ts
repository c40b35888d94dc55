/**
 * The pipeline's topology: what its roles say to each other, and where. messaging/ offers the generic
 * parts (defineMessage, defineWorkQueue, defineStateKey); the pipeline's vocabulary is declared here, once:
 *
 *   curator ─PromptGroup→ prompts → rollout ─RolloutGroup→ rollouts → reward ─ScoredGroup→ scored → learner
 *   learner → weights (blobs) + KV `policy` → rollout, evaluator;  KV `learner-progress` → curator, evaluator
 *
 * A role that brings its own queue declares it in its own file (docs/pipeline.md, "Adding a role").
 *
 * Messages: each has an Effect Schema (checked on receipt) and a version (bump it when the shape
 * changes or its bytes do; receivers reject versions they do not know). Token ids are Int32Array and
 * log-probs Float32Array, never number arrays (msgpack would send those as float64); on the wire each
 * is a plain msgpack `{dtype, data}` map (messaging/wire.ts, docs/protocol.md), so every message is
 * readable by any language's msgpack library.
 */
import { Schema } from "effect";
import {
  defineMessage,
  defineStateKey,
  defineWorkQueue,
  type MessageType,
  type WorkQueue,
} from "../messaging/index.ts";

const Int32Tokens = Schema.instanceOf(Int32Array, { identifier: "Int32Array" });
const Float32Values = Schema.instanceOf(Float32Array, { identifier: "Float32Array" });
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative());
const EpochMillis = Schema.Number.pipe(Schema.finite(), Schema.nonNegative());
const MetaValue = Schema.Union(Schema.String, Schema.Number, Schema.Boolean);

// ── messages ────────────────────────────────────────────────────────────────────────────────────

/** An RGB picture, row-major, 3 bytes a pixel (msgpack `bin`). Its size is checked with its prompt's id. */
export const PromptPicture = Schema.Struct({
  width: Schema.Int,
  height: Schema.Int,
  pixels: Schema.instanceOf(Uint8Array, { identifier: "Uint8Array" }),
});
export type PromptPicture = typeof PromptPicture.Type;

/** One prompt to be answered G times (GRPO's group). */
export const PromptGroup = Schema.Struct({
  /** Unique per group (also the JetStream msgID: re-publishing a group is a no-op). */
  groupId: Schema.String,
  /** The prompt's id in its suite (the same prompt may be asked in many groups). */
  promptId: Schema.String,
  /** The prompt set it comes from (e.g. `factworld-train`). */
  suite: Schema.String,
  /** The prompt's text: the rollout actor tokenizes it with its policy's tokenizer (environments speak text). */
  prompt: Schema.String,
  /** What the prompt asks about (e.g. the FactWorld entity), for the reward and the metrics. */
  focus: Schema.optional(Schema.String),
  /** Free-form small facts about the prompt (popularity bucket, split…). */
  meta: Schema.Record({ key: Schema.String, value: MetaValue }),
  /** G: how many answers to sample. */
  groupSize: Schema.Int.pipe(Schema.positive()),
  createdAt: EpochMillis,
  /** The picture the prompt is about (`factworld-vision`): the policy reads its image tokens before the text. */
  picture: Schema.optional(PromptPicture),
}).pipe(
  Schema.filter(({ picture, promptId }) => {
    if (picture === undefined) return undefined;
    const { width, height, pixels } = picture;
    if (width < 1 || height < 1) return `prompt ${promptId}: its picture is empty (${width}×${height})`;
    return pixels.length === width * height * 3
      ? undefined
      : `prompt ${promptId}: its ${width}×${height} picture has ${pixels.length} bytes of pixels, expected ${width * height * 3}`;
  }),
);
export type PromptGroup = typeof PromptGroup.Type;

/** One sampled answer with the behaviour policy's log-prob of each of its tokens. */
export const Answer = Schema.Struct({
  tokens: Int32Tokens,
  /** log π_behaviour(token) for each token, as recorded while sampling: used in GRPO's ratio. */
  logProbs: Float32Values,
  text: Schema.String,
  /** `stop`: end-of-sequence sampled; `length`: cut at the token limit. */
  finishReason: Schema.Literal("stop", "length"),
  /**
   * Guided answers only (the group's `decoding` is set): log π(token) under the sampling policy itself,
   * while `logProbs` are the guided decoder's; truncated importance sampling weighs by their ratio.
   */
  policyLogProbs: Schema.optional(Float32Values),
}).pipe(
  Schema.filter((answer) =>
    answer.tokens.length !== answer.logProbs.length
      ? `tokens (${answer.tokens.length}) and logProbs (${answer.logProbs.length}) must have the same length`
      : answer.policyLogProbs !== undefined && answer.policyLogProbs.length !== answer.tokens.length
        ? `tokens (${answer.tokens.length}) and policyLogProbs (${answer.policyLogProbs.length}) must have the same length`
        : undefined,
  ),
);
export type Answer = typeof Answer.Type;

/** A prompt group with its G answers, from one policy version. */
export const RolloutGroup = Schema.Struct({
  group: PromptGroup,
  /** The prompt as the sampling policy read it (its tokenizer's tokens): the learner's GRPO context. */
  promptTokens: Int32Tokens,
  answers: Schema.Array(Answer),
  /** The policy version that sampled every answer (the learner's staleness check reads it). */
  policyVersion: NonNegativeInt,
  timings: Schema.Struct({
    /** When the rollout actor took the prompt group, and when it finished sampling. */
    startedAt: EpochMillis,
    finishedAt: EpochMillis,
  }),
  /** The rollout actor's id. */
  actor: Schema.String,
  /**
   * The reference answer the relevance judge compares against: the initial policy's answer to the
   * same prompt (docs/rewards.md); absent when the reward uses the knowledge base's.
   */
  reference: Schema.optional(Schema.String),
  /**
   * The mark of an off-policy group: its answers were decoded by CFG or CD-K, not sampled from the
   * policy (absent: plain sampling). The learner never treats a marked group as on-policy
   * (`learner.offPolicy`: dropped, or weighed by truncated importance sampling).
   */
  decoding: Schema.optional(
    Schema.Union(
      Schema.Struct({ kind: Schema.Literal("cfg"), scale: Schema.Number }),
      Schema.Struct({ kind: Schema.Literal("cd-k"), alpha: Schema.Number, k: Schema.Number }),
    ),
  ),
}).pipe(
  Schema.filter((rollout) =>
    rollout.answers.length !== rollout.group.groupSize
      ? `expected groupSize=${rollout.group.groupSize} answers, got ${rollout.answers.length}`
      : rollout.decoding !== undefined && rollout.answers.some((a) => a.policyLogProbs === undefined)
        ? `a ${rollout.decoding.kind} group needs policyLogProbs on every answer`
        : undefined,
  ),
);
export type RolloutGroup = typeof RolloutGroup.Type;

/** A reward module's failure on one answer (the answer still gets a reward from the others). */
export const RewardFailure = Schema.Struct({
  module: Schema.String,
  /** e.g. `timeout`, `error`, `malformed`. */
  kind: Schema.String,
  message: Schema.String,
});
export type RewardFailure = typeof RewardFailure.Type;

export const AnswerScore = Schema.Struct({
  /** The total reward r used for the advantage. */
  reward: Schema.Number,
  /** Each reward component by module name (precision, detail, relevance, format…). */
  components: Schema.Record({ key: Schema.String, value: Schema.Number }),
  failures: Schema.Array(RewardFailure),
});
export type AnswerScore = typeof AnswerScore.Type;

/** A rollout group with a score per answer, ready for the learner. */
export const ScoredGroup = Schema.Struct({
  rollout: RolloutGroup,
  /** One per answer, in the same order. */
  scores: Schema.Array(AnswerScore),
  /** The reward actor's id, and when it finished scoring. */
  scorer: Schema.String,
  scoredAt: EpochMillis,
}).pipe(
  Schema.filter((scored) =>
    scored.scores.length === scored.rollout.answers.length
      ? undefined
      : `expected ${scored.rollout.answers.length} scores (one per answer), got ${scored.scores.length}`,
  ),
);
export type ScoredGroup = typeof ScoredGroup.Type;

// PromptGroup 3, RolloutGroup 5, ScoredGroup 5: plain msgpack (typed arrays as dtype maps, no msgpackr
// extensions) and the prompt's optional picture (the other two embed a PromptGroup). RolloutGroup and
// ScoredGroup 5 add the off-policy mark (`decoding`, `policyLogProbs`): a version 4 reader would train on
// a marked group as if it were on-policy, so the version is bumped and old readers refuse it.
export const PromptGroupMessage = defineMessage({ name: "PromptGroup", version: 3, schema: PromptGroup });
export const RolloutGroupMessage = defineMessage({ name: "RolloutGroup", version: 5, schema: RolloutGroup });
export const ScoredGroupMessage = defineMessage({ name: "ScoredGroup", version: 5, schema: ScoredGroup });

/** Every message type the pipeline sends on its queues. */
export const PIPELINE_MESSAGES: readonly MessageType<unknown>[] = [
  PromptGroupMessage,
  RolloutGroupMessage,
  ScoredGroupMessage,
];

// ── work queues ─────────────────────────────────────────────────────────────────────────────────

/** Prompt groups from the curator to the rollout actors. */
export const PROMPTS_QUEUE = defineWorkQueue({
  name: "prompts",
  message: PromptGroupMessage,
  groupIdPath: ["groupId"],
});

/** Rollout groups from the rollout actors to the reward actors. */
export const ROLLOUTS_QUEUE = defineWorkQueue({
  name: "rollouts",
  message: RolloutGroupMessage,
  groupIdPath: ["group", "groupId"],
});

/** Scored groups from the reward actors to the learner. */
export const SCORED_QUEUE = defineWorkQueue({
  name: "scored",
  message: ScoredGroupMessage,
  groupIdPath: ["rollout", "group", "groupId"],
});

/** The pipeline's queues, in the order work flows: the launcher creates them before any actor starts. */
export const PIPELINE_QUEUES: readonly WorkQueue<unknown>[] = [PROMPTS_QUEUE, ROLLOUTS_QUEUE, SCORED_QUEUE];

// ── shared state ────────────────────────────────────────────────────────────────────────────────
// In the experiment's KV bucket, beside the policy pointer (messaging/state.ts): the policy's
// architecture (so any process can build the policy the weights belong to), the learner's progress
// (the curator's credits and the evaluator's end signal), the curator's cursor (a restarted curator
// continues where it stopped) and the evaluator's end; and the blob the policy's tokenizer is in.

const Count = Schema.Int.pipe(Schema.nonNegative());

/** The policy config (models' PolicyConfigBase and its backbone's fields), as JSON. */
export const PolicyArchitecture = Schema.Record({ key: Schema.String, value: Schema.Unknown });
export type PolicyArchitecture = typeof PolicyArchitecture.Type;

export const POLICY_ARCHITECTURE_KEY = defineStateKey({ key: "policy-architecture", schema: PolicyArchitecture });

/** What the learner has done with the scored groups it received. Every group ends in exactly one count. */
export const LearnerProgress = Schema.Struct({
  /** Optimiser steps taken (the learner's step counter). */
  step: Count,
  /** The newest published policy version. */
  policyVersion: Count,
  /** Groups whose answers entered a GRPO update. */
  consumed: Count,
  /** Groups dropped because their policy was more than max_policy_lag versions old. */
  stale: Count,
  /** Groups whose rewards were all equal (no signal), dropped. */
  zeroVariance: Count,
  /** Deliveries of a group already used or dropped (redelivered after a crash), dropped. */
  duplicates: Count,
  /** Groups that failed validation (token ids, lengths, non-finite numbers, an unpublished version): dead-lettered. */
  invalid: Schema.optionalWith(Count, { default: () => 0 }),
  /** Groups decoded by CFG or CD-K (marked off-policy), dropped under `learner.offPolicy.mode: drop`. */
  offPolicy: Schema.optionalWith(Count, { default: () => 0 }),
  /** Steps whose update was not applied because its loss or gradient was not finite. */
  skippedSteps: Schema.optionalWith(Count, { default: () => 0 }),
  /** Set while no step has completed for learner.stallWarnMs: when the last one did (epoch ms). */
  stalledSince: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  /** True once the last step is taken and the final policy published. */
  done: Schema.Boolean,
});
export type LearnerProgress = typeof LearnerProgress.Type;

/** A learner that has done nothing yet (a fresh run's progress; older checkpoints' missing counts). */
export const NO_LEARNER_PROGRESS: LearnerProgress = {
  step: 0,
  policyVersion: 0,
  consumed: 0,
  stale: 0,
  zeroVariance: 0,
  duplicates: 0,
  invalid: 0,
  offPolicy: 0,
  skippedSteps: 0,
  done: false,
};

export const LEARNER_PROGRESS_KEY = defineStateKey({ key: "learner-progress", schema: LearnerProgress });

/** The curator's cursor: prompt groups published so far (group ids are `g<sequence>`). */
export const CuratorCursor = Schema.Struct({ published: Count });
export type CuratorCursor = typeof CuratorCursor.Type;

export const CURATOR_CURSOR_KEY = defineStateKey({ key: "curator-cursor", schema: CuratorCursor });

/** Written by the evaluator once the final policy is evaluated and the report is on disk. */
export const EvaluationDone = Schema.Struct({
  /** The policy version of the final evaluation. */
  finalVersion: Count,
  /** Where the report was written (on the evaluator's host). */
  report: Schema.String,
});
export type EvaluationDone = typeof EvaluationDone.Type;

export const EVALUATION_DONE_KEY = defineStateKey({ key: "evaluation-done", schema: EvaluationDone });

/** A cached verdict as stored (rewards/verdict-cache.ts): the verifier's label for one claim and evidence set. */
export const CachedVerdict = Schema.Struct({ v: Schema.Literal(1), label: Schema.String });

/**
 * The verification cache: one key per verdict, `verdict.<hash of (verifier version, claim, evidence
 * ids)>`, written and read by every reward pipeline of the experiment (reward actors, the evaluator),
 * so a verifier — an `http:` judge above all — never verifies the same claim twice in a run.
 */
export const VERDICT_CACHE_PREFIX = "verdict";
export const VERDICT_CACHE_KEYS = defineStateKey({ key: `${VERDICT_CACHE_PREFIX}.*`, schema: CachedVerdict });

/**
 * The blob holding the policy's tokenizer record (the learner writes it at start): rollout actors and
 * evaluators tokenize prompts with it, so environments never deal in token ids.
 */
export const POLICY_TOKENIZER_BLOB = "policy-tokenizer";
