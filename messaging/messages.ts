/**
 * The actor runtime's own message types: metrics, heartbeats and control. Whatever a system built on
 * the runtime exchanges besides (factrl's pipeline: actors/topology.ts) it defines itself with
 * `defineMessage`. Each has an Effect Schema (checked on receipt) and a version (bump it when the
 * shape changes or its bytes do; receivers reject versions they do not know).
 */
import { Schema } from "effect";
import { defineMessage, type MessageType } from "./codec.ts";

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative());
const EpochMillis = Schema.Number.pipe(Schema.finite(), Schema.nonNegative());

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
  /** Control requests refused since start (undecodable, or an unknown command): each is logged with its subject. */
  rejectedRequests: Schema.optional(NonNegativeInt),
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

export const MetricsEventMessage = defineMessage({ name: "MetricsEvent", version: 1, schema: MetricsEvent });
export const HeartbeatMessage = defineMessage({ name: "Heartbeat", version: 1, schema: Heartbeat });
export const ControlRequestMessage = defineMessage({ name: "ControlRequest", version: 1, schema: ControlRequest });
export const ControlReplyMessage = defineMessage({ name: "ControlReply", version: 1, schema: ControlReply });

/** Every message type the runtime sends. */
export const RUNTIME_MESSAGES: readonly MessageType<unknown>[] = [
  MetricsEventMessage,
  HeartbeatMessage,
  ControlRequestMessage,
  ControlReplyMessage,
];
