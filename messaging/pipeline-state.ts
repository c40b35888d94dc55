/**
 * The pipeline's shared state in the experiment's KV bucket, beside the policy pointer (state.ts):
 * the policy's architecture (so any process can build the policy the weights belong to), the
 * learner's progress (the curator's credits and the evaluator's end signal), and the curator's
 * cursor (so a restarted curator continues where it stopped).
 */
import { Schema } from "effect";
import { Heartbeat } from "./messages.ts";
import type { StateKey } from "./state.ts";
import { validateToken } from "./subjects.ts";

/** The policy config (models' PolicyConfigBase and its backbone's fields), as JSON. */
export const PolicyArchitecture = Schema.Record({ key: Schema.String, value: Schema.Unknown });
export type PolicyArchitecture = typeof PolicyArchitecture.Type;

export const POLICY_ARCHITECTURE_KEY: StateKey<PolicyArchitecture, typeof PolicyArchitecture.Encoded> = {
  key: "policy-architecture",
  schema: PolicyArchitecture,
};

const Count = Schema.Int.pipe(Schema.nonNegative());

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
  skippedSteps: 0,
  done: false,
};

export const LEARNER_PROGRESS_KEY: StateKey<LearnerProgress, typeof LearnerProgress.Encoded> = {
  key: "learner-progress",
  schema: LearnerProgress,
};

/** The curator's cursor: prompt groups published so far (group ids are `g<sequence>`). */
export const CuratorCursor = Schema.Struct({ published: Count });
export type CuratorCursor = typeof CuratorCursor.Type;

export const CURATOR_CURSOR_KEY: StateKey<CuratorCursor, typeof CuratorCursor.Encoded> = {
  key: "curator-cursor",
  schema: CuratorCursor,
};

/** Written by the evaluator once the final policy is evaluated and the report is on disk. */
export const EvaluationDone = Schema.Struct({
  /** The policy version of the final evaluation. */
  finalVersion: Count,
  /** Where the report was written (on the evaluator's host). */
  report: Schema.String,
});
export type EvaluationDone = typeof EvaluationDone.Type;

export const EVALUATION_DONE_KEY: StateKey<EvaluationDone, typeof EvaluationDone.Encoded> = {
  key: "evaluation-done",
  schema: EvaluationDone,
};

/**
 * The blob holding the policy's tokenizer record (the learner writes it at start): rollout actors and
 * evaluators tokenize prompts with it, so environments never deal in token ids.
 */
export const POLICY_TOKENIZER_BLOB = "policy-tokenizer";

/**
 * An actor's last heartbeat, kept in KV under `actor-status.<id>`: `factrl status` lists an actor that
 * cannot answer $SRV.STATS right now (a blocking section, a hang, a hard kill) from it.
 */
export const ActorStatusRecord = Schema.Struct({
  ...Heartbeat.fields,
  /** When the actor wrote it (epoch ms, the actor's clock). */
  sentAt: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
});
export type ActorStatusRecord = typeof ActorStatusRecord.Type;

/** The key prefix of every actor's status record. */
export const ACTOR_STATUS_PREFIX = "actor-status";

export const actorStatusKey = (actorId: string): StateKey<ActorStatusRecord, typeof ActorStatusRecord.Encoded> => ({
  key: `${ACTOR_STATUS_PREFIX}.${validateToken("actor id", actorId)}`,
  schema: ActorStatusRecord,
});

/**
 * How the experiment ended, written by its launcher (`running` when it starts, then the outcome):
 * actors that joined from other hosts watch it and leave when the experiment is over.
 */
export const ExperimentOutcome = Schema.Struct({
  /**
   * `completed`: the learner reached its step budget; `failed`: an actor failed, or the learner
   * stopped short of its budget; `stopped`: the launcher was stopped (Ctrl-C / SIGTERM) and may resume it.
   */
  outcome: Schema.Literal("running", "completed", "failed", "stopped"),
  reason: Schema.String,
  /** When the launcher wrote it (epoch ms). */
  at: Schema.Number.pipe(Schema.finite(), Schema.nonNegative()),
});
export type ExperimentOutcome = typeof ExperimentOutcome.Type;

export const EXPERIMENT_OUTCOME_KEY: StateKey<ExperimentOutcome, typeof ExperimentOutcome.Encoded> = {
  key: "experiment-outcome",
  schema: ExperimentOutcome,
};
