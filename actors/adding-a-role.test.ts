/**
 * Adding a role with its own work queue is one role file plus one line in a registry
 * (docs/pipeline.md, "Adding a role"). The role below is such a file: it declares its message type
 * and its queue and works the queue; the registry line is all the launcher needs to create the queue
 * before any actor starts. Against a real nats-server, its messages go through that queue —
 * published, delivered, acked — and a malformed one is dead-lettered naming the queue and its group.
 */
import { Deferred, Effect, Either, Exit, Fiber, Schema } from "effect";
import { describe, expect, inject, it } from "vitest";
import { decodeConfig } from "../configs/index.ts";
import {
  deadLetterCount,
  defineMessage,
  defineWorkQueue,
  Experiment,
  encodeEnvelope,
  envelope,
  Nats,
  pendingWork,
  publishWork,
  readDeadLetteredGroups,
  readDeadLetters,
  WorkOutcome,
} from "../messaging/index.ts";
import { eventually, freshExperiment, runWith } from "../test/messaging/fixtures.ts";
import { ensureExperimentQueues, QueueConflict } from "./launcher.ts";
import { ACTOR_ROLES, makeRoleRegistry } from "./roles.ts";
import { type RoleDefinition, runActor } from "./runtime.ts";
import { PIPELINE_QUEUES } from "./topology.ts";

// ── the role file (actors/countdown.ts, say) ────────────────────────────────────────────────────

/** A countdown to pass on: `remaining` more times, under one group id. */
const Countdown = Schema.Struct({ groupId: Schema.String, remaining: Schema.Int.pipe(Schema.nonNegative()) });
type Countdown = typeof Countdown.Type;

const CountdownMessage = defineMessage({ name: "Countdown", version: 1, schema: Countdown });
const COUNTDOWNS_QUEUE = defineWorkQueue({ name: "countdowns", message: CountdownMessage, groupIdPath: ["groupId"] });

/** Takes a countdown from its queue and puts it back with one less, until zero. `seen` records each it takes. */
const makeCountdownRole = (seen: Countdown[]): RoleDefinition => ({
  name: "countdown",
  description: "passes each countdown on with one less, through its own queue, until zero",
  takes: [COUNTDOWNS_QUEUE],
  gives: [COUNTDOWNS_QUEUE],
  start: (actor) =>
    Effect.succeed(
      actor.consume(COUNTDOWNS_QUEUE, (item) =>
        Effect.gen(function* () {
          const { groupId, remaining } = item.body;
          if (remaining > 0) {
            const next = { groupId, remaining: remaining - 1 };
            yield* publishWork(COUNTDOWNS_QUEUE, next, { msgId: `${groupId}-${next.remaining}` });
          }
          seen.push(item.body);
          return WorkOutcome.done;
        }),
      ),
    ),
});

// ── the test ────────────────────────────────────────────────────────────────────────────────────

const natsUrl = inject("natsUrl");

const testConfig = (experiment: string) =>
  Either.getOrThrow(
    decodeConfig({
      experiment,
      nats: { url: natsUrl },
      runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000, restart: { baseDelayMs: 10, maxDelayMs: 50 } },
    }),
  );

/** Re-runs `probe` until `done` holds for its value or 20 s pass (a loaded machine); returns the last value. */
const waitUntil = <A, E, R>(probe: Effect.Effect<A, E, R>, done: (value: A) => boolean) =>
  eventually(probe, done, 20_000);

describe("adding a role with its own queue", () => {
  it("one registry line: the launcher creates its queue, and its work goes through it", async () => {
    const experiment = freshExperiment("role");
    const config = testConfig(experiment);
    const seen: Countdown[] = [];
    // The registry line.
    const roles = makeRoleRegistry({ ...ACTOR_ROLES, countdown: async () => makeCountdownRole(seen) });

    const result = await runWith(
      natsUrl,
      experiment,
      Effect.gen(function* () {
        const { manager, jetstream } = yield* Nats;
        const { subjects } = yield* Experiment;
        // What the launcher does before it starts any actor.
        const created = yield* ensureExperimentQueues(config, roles);
        const stream = yield* Effect.promise(() => manager.streams.info(subjects.stream("countdowns")));
        const consumer = yield* Effect.promise(() =>
          manager.consumers.info(subjects.stream("countdowns"), subjects.consumer("countdowns")),
        );

        const role = yield* Effect.promise(() => roles.load("countdown"));
        const drain = yield* Deferred.make<string>();
        const actor = yield* Effect.fork(runActor({ role: role!, config, id: "countdown-1", drain }));

        // Published, delivered, acked: one countdown from 3 is four messages through the queue.
        yield* publishWork(COUNTDOWNS_QUEUE, { groupId: "c1", remaining: 3 }, { msgId: "c1-3" });
        yield* waitUntil(
          Effect.sync(() => seen.length),
          (n) => n >= 4,
        );
        const pendingAfterWork = yield* waitUntil(pendingWork(COUNTDOWNS_QUEUE), (n) => n === 0);
        const storedAfterWork = yield* Effect.promise(() => manager.streams.info(subjects.stream("countdowns")));

        // Malformed: a Countdown that counts below zero (and garbage bytes) sent around publishWork's checks.
        const good = envelope(CountdownMessage, { groupId: "c-bad", remaining: 0 }, { experiment, sender: "forger" });
        const badBytes = encodeEnvelope({ ...good, body: { groupId: "c-bad", remaining: -1 } });
        yield* Effect.promise(() => jetstream.publish(subjects.work("countdowns"), badBytes));
        yield* Effect.promise(() => jetstream.publish(subjects.work("countdowns"), Uint8Array.of(0xc1, 0x00)));
        const deadLettered = yield* waitUntil(deadLetterCount(COUNTDOWNS_QUEUE), (n) => n >= 2);
        const letters = yield* readDeadLetters(COUNTDOWNS_QUEUE);
        const stored = yield* Effect.promise(() =>
          manager.streams.getMessage(subjects.deadLetterStream, { seq: 1 }).then((message) => ({
            subject: message?.subject,
            queue: message?.header.get("Factrl-Queue"),
          })),
        );

        yield* Deferred.succeed(drain, "test");
        const exit = yield* Fiber.await(actor);
        return {
          created,
          stream: { subjects: stream.config.subjects, retention: stream.config.retention },
          consumer: { description: consumer.config.description },
          pendingAfterWork,
          storedAfterWork: { messages: storedAfterWork.state.messages, lastSeq: storedAfterWork.state.last_seq },
          deadLettered,
          letters: letters.map(({ reason, groupId }) => ({ reason, groupId })),
          stored,
          pipelineDeadLetters: yield* Effect.forEach(PIPELINE_QUEUES, deadLetterCount),
          // What the curator counts as settled (its credits) and what this queue's dead letters name.
          groupsForTheCurator: (yield* readDeadLetteredGroups(PIPELINE_QUEUES)).groupIds,
          groupsOfTheRole: (yield* readDeadLetteredGroups([COUNTDOWNS_QUEUE])).groupIds,
          exit,
        };
      }),
    );

    // The union of the registry's queues and the pipeline's, each made once.
    expect(Object.keys(result.created.strandedRemoved).sort()).toEqual(["countdowns", "prompts", "rollouts", "scored"]);
    expect(result.stream).toEqual({ subjects: [`factrl.${experiment}.countdowns`], retention: "workqueue" });
    expect(result.consumer.description).toBe(
      `factrl work queue: dead-lettered after ${config.runtime.maxDeliveries} deliveries`,
    );
    expect(seen).toEqual([3, 2, 1, 0].map((remaining) => ({ groupId: "c1", remaining })));
    expect(result.pendingAfterWork).toBe(0);
    expect(result.storedAfterWork).toEqual({ messages: 0, lastSeq: 4 });

    expect(result.deadLettered).toBe(2);
    expect(result.letters).toEqual([
      {
        reason: expect.stringMatching(/^undecodable: bad-body: Countdown v1: \["remaining"\]: Expected a non-negative/),
        groupId: "c-bad",
      },
      { reason: expect.stringMatching(/^undecodable: not-msgpack: /), groupId: undefined },
    ]);
    expect(result.stored).toEqual({ subject: `factrl.${experiment}.deadletter.countdowns`, queue: "countdowns" });
    expect(result.pipelineDeadLetters).toEqual([0, 0, 0]);
    expect(result.groupsForTheCurator).toEqual([]);
    expect(result.groupsOfTheRole).toEqual(["c-bad"]);
    expect(Exit.isSuccess(result.exit)).toBe(true);
  }, 90_000);

  it("refuses a role whose queue takes a name the pipeline uses for another message", async () => {
    const experiment = freshExperiment("role");
    const impostor = defineWorkQueue({ name: "prompts", message: CountdownMessage, groupIdPath: ["groupId"] });
    const roles = makeRoleRegistry({
      echo: ACTOR_ROLES.echo!,
      impostor: async () => ({ ...makeCountdownRole([]), name: "impostor", gives: [impostor] }),
    });
    const error = await runWith(
      natsUrl,
      experiment,
      Effect.flip(ensureExperimentQueues(testConfig(experiment), roles)),
    );
    expect(error).toBeInstanceOf(QueueConflict);
    expect(error.message).toBe(
      "the pipeline and role impostor both declare a work queue named prompts, carrying PromptGroup v3 and " +
        "Countdown v1: one stream cannot carry both; rename one of the queues",
    );
  });

  it("refuses a queue name that is not a token or that another stream of the experiment has", () => {
    expect(() => defineWorkQueue({ name: "count.downs", message: CountdownMessage })).toThrow(/must not contain dots/);
    expect(() => defineWorkQueue({ name: "deadletter", message: CountdownMessage })).toThrow(/is reserved/);
  });
});
