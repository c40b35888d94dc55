/**
 * Who is alive in an experiment, from the NATS services protocol: every actor answers `$SRV.STATS`
 * with its heartbeat snapshot (see runtime.ts), so one request round finds them all — on any host —
 * without waiting for the next heartbeat.
 *
 * An actor whose event loop is blocked (a learner inside a GRPO update) cannot answer in time, so the
 * round is merged with the status records actors keep in KV (their last heartbeat): an actor that
 * did not answer is listed from its record — busy since when, or silent since its last heartbeat —
 * unless that record says it stopped cleanly.
 */
import { Svcm } from "@nats-io/services";
import { Effect, Schema } from "effect";
import {
  ACTOR_STATUS_PREFIX,
  ActorStatusRecord,
  Experiment,
  experimentSubjects,
  Heartbeat,
  listState,
  Nats,
} from "../messaging/index.ts";

export interface ActorStatus extends Heartbeat {
  /** How long ago the actor's last heartbeat was sent (ms). */
  readonly heartbeatAgeMs: number;
  /**
   * True when the actor answered this round itself; false when it is listed from its last recorded
   * heartbeat (it is busy, hung, or died without stopping).
   */
  readonly answered: boolean;
}

const StatsData = Schema.Struct({ ...Heartbeat.fields, heartbeatAgeMs: Schema.Number });
const decodeStats = Schema.decodeUnknownOption(StatsData);

/**
 * The actors that answered `$SRV.STATS` within the wait: every service on the server, or — given
 * `roles` — only the services of those roles of this experiment (`$SRV.STATS.factrl-<exp>-<role>`),
 * the only ones a user with `factrl nats auth`'s permissions may ask.
 */
const answeringActors = (experiment: string, maxWaitMs: number, roles: readonly string[] | undefined) =>
  Effect.gen(function* () {
    const { connection } = yield* Nats;
    const replies = yield* Effect.promise(async () => {
      // @nats-io/services bundles its own nats-core types; the connection is the same at run time.
      const client = new Svcm(connection as unknown as ConstructorParameters<typeof Svcm>[0]).client({
        maxWait: maxWaitMs,
        strategy: "stall",
        stall: 300,
      });
      const ask = async (name?: string) => {
        const found = [];
        try {
          for await (const stats of await client.stats(name)) found.push(stats);
        } catch {
          // no responders: nobody is running
        }
        return found;
      };
      const services = roles?.map((role) => experimentSubjects(experiment).service(role));
      return services === undefined ? ask() : (await Promise.all(services.map(ask))).flat();
    });
    const actors: ActorStatus[] = [];
    for (const reply of replies) {
      if (reply.metadata?.experiment !== experiment) continue;
      for (const endpoint of reply.endpoints ?? []) {
        const data = decodeStats(endpoint.data);
        if (data._tag === "None") continue;
        actors.push({ ...data.value, answered: true });
      }
    }
    return actors;
  });

/** An actor listed from its record: its age and uptime as of now (on this host's clock). */
function fromRecord(record: ActorStatusRecord, now: number): ActorStatus {
  const { sentAt, ...beat } = record;
  const heartbeatAgeMs = Math.max(0, now - sentAt);
  return { ...beat, uptimeMs: beat.uptimeMs + heartbeatAgeMs, heartbeatAgeMs, answered: false };
}

/**
 * The actors of `experiment` (asking only `roles`' services when given), sorted by role then id: those that answer, and those that do not but
 * whose record says they have not stopped. Waits up to `maxWaitMs` for the first answer and stops once
 * answers stall (the services client's "stall" strategy).
 */
export const listActors = (
  experiment: string,
  maxWaitMs = 1_500,
  roles?: readonly string[],
): Effect.Effect<ActorStatus[], never, Nats> =>
  Effect.gen(function* () {
    const [answered, records] = yield* Effect.all(
      [
        answeringActors(experiment, maxWaitMs, roles),
        listState(ACTOR_STATUS_PREFIX, ActorStatusRecord).pipe(
          Effect.provideService(Experiment, { subjects: experimentSubjects(experiment), sender: "status" }),
          // Without records, status still lists every actor that answers.
          Effect.tapError((error) => Effect.logWarning(`status records unreadable: ${error.message}`)),
          Effect.orElseSucceed(() => []),
        ),
      ],
      { concurrency: "unbounded" },
    );
    const now = Date.now();
    const seen = new Set(answered.map((actor) => actor.id));
    const silent = records
      .map((entry) => entry.value)
      .filter((record) => !seen.has(record.id) && record.state !== "stopped")
      .map((record) => fromRecord(record, now));
    return [...answered, ...silent].sort(
      (a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id, "en", { numeric: true }),
    );
  });
