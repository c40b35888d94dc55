/**
 * The actor runtime's own shared state in the experiment's KV bucket: each actor's last heartbeat
 * (so `factrl status` lists an actor that cannot answer right now) and how the experiment ended (so
 * actors that joined from other hosts leave with it). What a system built on the runtime shares
 * besides (factrl's pipeline: actors/topology.ts) it declares itself with `defineStateKey`.
 */
import { Schema } from "effect";
import { Heartbeat } from "./messages.ts";
import { defineStateKey, type StateKey } from "./state.ts";
import { validateToken } from "./subjects.ts";

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

export const EXPERIMENT_OUTCOME_KEY = defineStateKey({ key: "experiment-outcome", schema: ExperimentOutcome });
