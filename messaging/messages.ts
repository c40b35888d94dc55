/**
 * The message types: the contract between actors. Each has an Effect Schema (checked on receipt) and
 * a schema version (bump it when the shape changes or its bytes do; receivers reject versions they
 * do not know). Token ids are Int32Array and log-probs Float32Array, never number arrays (msgpack
 * would send those as float64); on the wire each is a plain msgpack `{dtype, data}` map (wire.ts,
 * docs/protocol.md), so every message is readable by any language's msgpack library.
 */
import { Schema } from "effect";

const Int32Tokens = Schema.instanceOf(Int32Array, { identifier: "Int32Array" });
const Float32Values = Schema.instanceOf(Float32Array, { identifier: "Float32Array" });
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative());
const EpochMillis = Schema.Number.pipe(Schema.finite(), Schema.nonNegative());
const MetaValue = Schema.Union(Schema.String, Schema.Number, Schema.Boolean);

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
}).pipe(
  Schema.filter((answer) =>
    answer.tokens.length === answer.logProbs.length
      ? undefined
      : `tokens (${answer.tokens.length}) and logProbs (${answer.logProbs.length}) must have the same length`,
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
}).pipe(
  Schema.filter((rollout) =>
    rollout.answers.length === rollout.group.groupSize
      ? undefined
      : `expected groupSize=${rollout.group.groupSize} answers, got ${rollout.answers.length}`,
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

/** Numbers reported by any actor; the monitor aggregates them. Sent on core NATS (may drop). */
export const MetricsEvent = Schema.Struct({
  /** Who reports: a role or actor id (`learner`, `rollout-3`). */
  source: Schema.String,
  /** The learner step these numbers belong to, when there is one. */
  step: Schema.optional(NonNegativeInt),
  values: Schema.Record({ key: Schema.String, value: Schema.Number }),
  tags: Schema.Record({ key: Schema.String, value: Schema.String }),
});
export type MetricsEvent = typeof MetricsEvent.Type;

export const ActorState = Schema.Literal("starting", "running", "draining", "stopped", "failed");
export type ActorState = typeof ActorState.Type;

/**
 * Liveness and progress of one actor, sent periodically. Fields added after version 1 are optional,
 * so the version stays 1: older readers ignore them, and heartbeats of older actors still decode.
 */
export const Heartbeat = Schema.Struct({
  role: Schema.String,
  id: Schema.String,
  host: Schema.String,
  pid: NonNegativeInt,
  uptimeMs: Schema.Number.pipe(Schema.nonNegative()),
  /** Work items done and failed since start. */
  processed: NonNegativeInt,
  failed: NonNegativeInt,
  /** The policy version the actor currently uses, when it uses one. */
  policyVersion: Schema.optional(NonNegativeInt),
  state: ActorState,
  /** Supervised restarts of the role inside this process (after a crash) since the process started. */
  restarts: Schema.optional(NonNegativeInt),
  /**
   * Set while the role runs a long section it announced (ActorContext.busy) — one that may block the
   * actor's event loop, so that heartbeats and $SRV replies stop until it ends.
   */
  busy: Schema.optional(Schema.Struct({ what: Schema.String, since: EpochMillis })),
  /** Why the actor is draining, stopped or failed (a drain request and its sender, a signal, its job done…). */
  reason: Schema.optional(Schema.String),
});
export type Heartbeat = typeof Heartbeat.Type;

/** A command to an actor or role (`scale`, `drain`, `status`…), answered by a ControlReply. */
export const ControlRequest = Schema.Struct({
  command: Schema.String,
  args: Schema.Record({ key: Schema.String, value: Schema.Unknown }),
});
export type ControlRequest = typeof ControlRequest.Type;

export const ControlReply = Schema.Struct({
  ok: Schema.Boolean,
  message: Schema.String,
  data: Schema.optional(Schema.Unknown),
});
export type ControlReply = typeof ControlReply.Type;

/**
 * The registry: message type name → its schema and current version. Actors look types up by name;
 * adding a type is one entry here.
 */
export const MESSAGE_TYPES = {
  // PromptGroup 3, RolloutGroup 4, ScoredGroup 4: plain msgpack (typed arrays as dtype maps, no
  // msgpackr extensions) and the prompt's optional picture (the other two embed a PromptGroup).
  PromptGroup: { version: 3, schema: PromptGroup },
  RolloutGroup: { version: 4, schema: RolloutGroup },
  ScoredGroup: { version: 4, schema: ScoredGroup },
  MetricsEvent: { version: 1, schema: MetricsEvent },
  Heartbeat: { version: 1, schema: Heartbeat },
  ControlRequest: { version: 1, schema: ControlRequest },
  ControlReply: { version: 1, schema: ControlReply },
} as const;

export type MessageTypeName = keyof typeof MESSAGE_TYPES;
export type MessageBody<N extends MessageTypeName> = (typeof MESSAGE_TYPES)[N]["schema"]["Type"];

export const isMessageTypeName = (name: string): name is MessageTypeName => Object.hasOwn(MESSAGE_TYPES, name);
