/**
 * Who is alive in an experiment, from the NATS services protocol: every actor answers `$SRV.STATS`
 * with its heartbeat snapshot (see runtime.ts), so one request round finds them all — on any host —
 * without waiting for the next heartbeat.
 */
import { Svcm } from "@nats-io/services";
import { Effect, Schema } from "effect";
import { Heartbeat, Nats } from "../messaging/index.ts";

export interface ActorStatus extends Heartbeat {
  /** How long ago the actor's last heartbeat was sent (ms). */
  readonly heartbeatAgeMs: number;
}

const StatsData = Schema.Struct({ ...Heartbeat.fields, heartbeatAgeMs: Schema.Number });
const decodeStats = Schema.decodeUnknownOption(StatsData);

/**
 * The live actors of `experiment`, sorted by role then id. Waits up to `maxWaitMs` for the first
 * answer and stops once answers stall (the services client's "stall" strategy).
 */
export const listActors = (experiment: string, maxWaitMs = 1_500): Effect.Effect<ActorStatus[], never, Nats> =>
  Effect.gen(function* () {
    const { connection } = yield* Nats;
    const replies = yield* Effect.promise(async () => {
      // @nats-io/services bundles its own nats-core types; the connection is the same at run time.
      const client = new Svcm(connection as unknown as ConstructorParameters<typeof Svcm>[0]).client({
        maxWait: maxWaitMs,
        strategy: "stall",
        stall: 300,
      });
      const found = [];
      try {
        for await (const stats of await client.stats()) found.push(stats);
      } catch {
        // no responders: nobody is running
      }
      return found;
    });
    const actors: ActorStatus[] = [];
    for (const reply of replies) {
      if (reply.metadata?.experiment !== experiment) continue;
      for (const endpoint of reply.endpoints ?? []) {
        const data = decodeStats(endpoint.data);
        if (data._tag === "None") continue;
        actors.push(data.value);
      }
    }
    return actors.sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id, "en", { numeric: true }));
  });
