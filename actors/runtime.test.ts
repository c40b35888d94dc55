import { Svcm } from "@nats-io/services";
import { Deferred, Effect, Either, Exit, Fiber, Layer } from "effect";
import { describe, expect, inject, it } from "vitest";
import { decodeConfig, type ExperimentConfig } from "../configs/index.ts";
import {
  actorStatusKey,
  ControlReplyMessage,
  ControlRequestMessage,
  connectNats,
  deadLetterCount,
  decodeEnvelope,
  EXPERIMENT_OUTCOME_KEY,
  Experiment,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  experimentSubjects,
  getState,
  type Heartbeat,
  HeartbeatMessage,
  Nats,
  openWorkFetcher,
  publishWork,
  putState,
} from "../messaging/index.ts";
import { echoRole, makeEchoRole } from "./echo.ts";
import { type RoleDefinition, runActor } from "./runtime.ts";
import { listActors } from "./runtime-status.ts";
import { PIPELINE_QUEUES, PROMPTS_QUEUE, type PromptGroup, ROLLOUTS_QUEUE } from "./topology.ts";

const natsUrl = inject("natsUrl");
let experimentCounter = 0;

const testConfig = (overrides: Record<string, unknown> = {}): ExperimentConfig =>
  Either.getOrThrow(
    decodeConfig({
      experiment: `rt-${process.pid}-${++experimentCounter}`,
      nats: { url: natsUrl },
      runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000, restart: { baseDelayMs: 10, maxDelayMs: 50 } },
      ...overrides,
    }),
  );

/** A client connection for the test itself, with the experiment's names. */
const client = (config: ExperimentConfig) =>
  Layer.merge(
    Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "test" })),
    Layer.succeed(Experiment, { subjects: experimentSubjects(config.experiment), sender: "test" }),
  );

const promptGroup = (index: number, sleepMs: number): PromptGroup => ({
  groupId: `g${index}`,
  promptId: `p${index}`,
  suite: "test",
  prompt: `prompt ${index}`,
  meta: { sleepMs },
  groupSize: 2,
  createdAt: Date.now(),
});

/** Every heartbeat of the experiment from now on, decoded, in arrival order. */
const collectHeartbeats = (config: ExperimentConfig) =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const heartbeats: Heartbeat[] = [];
    nats.connection.subscribe(experimentSubjects(config.experiment).allHeartbeats, {
      callback: (_error, msg) => {
        const decoded = decodeEnvelope(msg.data, { accept: [HeartbeatMessage] });
        if (Either.isRight(decoded)) heartbeats.push(decoded.right.body);
      },
    });
    yield* Effect.promise(() => nats.connection.flush());
    return heartbeats;
  });

/** Takes every rollout waiting in the queue (acking them) and returns their group ids. */
const drainRollouts = Effect.gen(function* () {
  const fetcher = yield* openWorkFetcher(ROLLOUTS_QUEUE);
  const ids: string[] = [];
  for (;;) {
    const batch = yield* fetcher.fetch({ max: 100, expiresMs: 1_000 });
    if (batch.length === 0) return ids;
    for (const item of batch) {
      ids.push(item.body.group.groupId);
      yield* item.settle({ _tag: "Done" });
    }
  }
});

const waitFor = async (check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
};

describe("actor runtime", () => {
  it("announces itself (heartbeats, $SRV STATS) and works its queue", async () => {
    const config = testConfig();
    const program = Effect.gen(function* () {
      yield* ensureWorkQueues(PIPELINE_QUEUES, { ackWaitMs: 5_000 });
      const nats = yield* Nats;
      const heartbeats: { state: string; processed: number; id: string }[] = [];
      nats.connection.subscribe(experimentSubjects(config.experiment).allHeartbeats, {
        callback: (_error, msg) => {
          const decoded = decodeEnvelope(msg.data, { accept: [HeartbeatMessage] });
          if (Either.isRight(decoded)) heartbeats.push(decoded.right.body);
        },
      });
      yield* Effect.promise(() => nats.connection.flush());
      const drain = yield* Deferred.make<string>();
      const actor = yield* Effect.fork(runActor({ role: echoRole, config, id: "echo-a", drain }));
      for (let i = 0; i < 5; i++) yield* publishWork(PROMPTS_QUEUE, promptGroup(i, 0));
      yield* Effect.promise(() => waitFor(() => heartbeats.some((h) => h.processed === 5)));
      expect(heartbeats[0]).toMatchObject({ id: "echo-a", state: "running" });

      const stats = yield* Effect.promise(async () => {
        const svc = new Svcm(nats.connection as unknown as ConstructorParameters<typeof Svcm>[0]);
        const found = [];
        for await (const s of await svc.client({ maxWait: 1_000, strategy: "stall" }).stats()) found.push(s);
        return found.filter((s) => s.metadata?.experiment === config.experiment);
      });
      expect(stats).toHaveLength(1);
      expect(stats[0]?.metadata).toMatchObject({ role: "echo", actor: "echo-a" });
      expect(stats[0]?.endpoints?.[0]?.data).toMatchObject({ processed: 5, failed: 0, state: "running" });

      yield* Deferred.succeed(drain, "test");
      const exit = yield* Fiber.await(actor);
      expect(Exit.isSuccess(exit)).toBe(true);
      expect(heartbeats.at(-1)).toMatchObject({ state: "stopped", processed: 5 });
      expect((yield* drainRollouts).sort()).toEqual(["g0", "g1", "g2", "g3", "g4"]);
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });

  it("draining loses nothing: work in hand finishes or goes to another actor", async () => {
    const config = testConfig();
    const groups = 21;
    const program = Effect.gen(function* () {
      yield* ensureWorkQueues(PIPELINE_QUEUES, { ackWaitMs: 30_000 });
      const drainA = yield* Deferred.make<string>();
      const drainB = yield* Deferred.make<string>();
      const options = { config } as const;
      // A works 3 items at once: while it drains, its idle workers must not bounce items back and forth.
      const a = yield* Effect.fork(runActor({ ...options, role: makeEchoRole(3), id: "echo-a", drain: drainA }));
      const b = yield* Effect.fork(runActor({ ...options, role: echoRole, id: "echo-b", drain: drainB }));
      // One long item keeps A's drain waiting while its other workers are idle.
      for (let i = 0; i < groups; i++) yield* publishWork(PROMPTS_QUEUE, promptGroup(i, i === 0 ? 1_500 : 50));
      // Let both actors get going, then drain A while it has work in hand.
      yield* Effect.sleep(300);
      yield* Deferred.succeed(drainA, "test");
      expect(Exit.isSuccess(yield* Fiber.await(a))).toBe(true);
      // B finishes everything else; ack_wait (30 s) is far beyond this wait, so no redelivery by timeout helps.
      const done = new Set<string>();
      yield* Effect.promise(() =>
        waitFor(async () => {
          for (const id of await Effect.runPromise(Effect.scoped(Effect.provide(drainRollouts, client(config))))) {
            done.add(id);
          }
          return done.size === groups;
        }, 20_000),
      );
      yield* Deferred.succeed(drainB, "test");
      expect(Exit.isSuccess(yield* Fiber.await(b))).toBe(true);
      expect(done.size).toBe(groups);
      expect(yield* deadLetterCount(PROMPTS_QUEUE)).toBe(0);
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });

  it("a crashing role is restarted with backoff, and gives up loudly after too many restarts", async () => {
    let starts = 0;
    const flaky: RoleDefinition = {
      name: "flaky",
      description: "dies on its first two starts",
      start: () =>
        Effect.sync(() => {
          starts += 1;
          if (starts <= 2) throw new Error(`boom ${starts}`);
          return Effect.void; // third start: its job is done at once
        }),
    };
    const config = testConfig({ runtime: { restart: { baseDelayMs: 10, maxRestarts: 3, windowMs: 60_000 } } });
    await Effect.runPromise(runActor({ role: flaky, config, id: "flaky-1" }));
    expect(starts).toBe(3);

    let attempts = 0;
    const broken: RoleDefinition = {
      name: "broken",
      description: "always dies while working",
      start: () =>
        Effect.succeed(
          Effect.suspend(() => {
            attempts += 1;
            return Effect.die(new Error("always broken"));
          }),
        ),
    };
    const exit = await Effect.runPromiseExit(runActor({ role: broken, config, id: "broken-1" }));
    expect(attempts).toBe(4); // the first run and 3 restarts
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error).toMatchObject({
      _tag: "ActorGaveUp",
      restarts: 3,
      reason: "always broken",
    });
  });

  it("counts the role's in-process restarts in heartbeats, $SRV STATS and the status record", async () => {
    let starts = 0;
    const crashesTwice: RoleDefinition = {
      name: "flaky",
      description: "dies on its first two starts, then runs",
      start: () =>
        Effect.sync(() => {
          starts += 1;
          if (starts <= 2) throw new Error(`boom ${starts}`);
          return Effect.never;
        }),
    };
    const config = testConfig();
    const program = Effect.gen(function* () {
      const heartbeats = yield* collectHeartbeats(config);
      const drain = yield* Deferred.make<string>();
      const actor = yield* Effect.fork(runActor({ role: crashesTwice, config, id: "flaky-2", drain }));
      const listed = yield* Effect.promise(async () => {
        for (;;) {
          const found = (
            await Effect.runPromise(Effect.provide(listActors(config.experiment, 500), client(config)))
          ).filter((a) => a.id === "flaky-2" && a.answered && a.state === "running");
          if (found.length > 0) return found[0]!;
        }
      });
      expect(listed).toMatchObject({ state: "running", restarts: 2 });
      expect(heartbeats.at(-1)).toMatchObject({ id: "flaky-2", restarts: 2 });
      yield* Deferred.succeed(drain, "test");
      expect(Exit.isSuccess(yield* Fiber.await(actor))).toBe(true);
      expect((yield* getState(actorStatusKey("flaky-2")))?.value).toMatchObject({ state: "stopped", restarts: 2 });
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });

  it("busy() announces a blocking section before entering it: a heartbeat and the status record say so", async () => {
    const config = testConfig();
    const program = Effect.gen(function* () {
      const heartbeats = yield* collectHeartbeats(config);
      let recordInside: Heartbeat | undefined;
      const blocking: RoleDefinition = {
        name: "blocker",
        description: "blocks its event loop once, announced",
        start: (actor) =>
          Effect.succeed(
            Effect.zipRight(
              actor.busy(
                "a blocking update",
                Effect.gen(function* () {
                  recordInside = (yield* getState(actorStatusKey(actor.id)))?.value;
                  const end = Date.now() + 300;
                  while (Date.now() < end) {
                    // blocking on purpose
                  }
                }),
              ),
              Effect.never,
            ),
          ),
      };
      const drain = yield* Deferred.make<string>();
      const before = Date.now();
      const actor = yield* Effect.fork(runActor({ role: blocking, config, id: "blocker-1", drain }));
      yield* Effect.promise(() => waitFor(() => heartbeats.some((h) => h.busy === undefined && h.state === "running")));
      // Written before the section ran, so a reader sees it while the actor cannot answer.
      expect(recordInside?.busy).toMatchObject({ what: "a blocking update" });
      expect(recordInside!.busy!.since).toBeGreaterThanOrEqual(before);
      const busyAt = heartbeats.findIndex((h) => h.busy !== undefined);
      expect(busyAt).toBeGreaterThanOrEqual(0);
      expect(heartbeats[busyAt]?.busy?.what).toBe("a blocking update");
      // …and the section's end is announced too.
      expect(heartbeats.slice(busyAt + 1).some((h) => h.busy === undefined)).toBe(true);
      yield* Deferred.succeed(drain, "test");
      expect(Exit.isSuccess(yield* Fiber.await(actor))).toBe(true);
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });

  it("an actor without a launcher drains when the experiment completes and fails when it failed; one with a launcher ignores it", async () => {
    const config = testConfig();
    const program = Effect.gen(function* () {
      yield* ensureWorkQueues(PIPELINE_QUEUES);
      const joined = yield* Effect.fork(runActor({ role: echoRole, config, id: "echo-joined" }));
      const launched = yield* Deferred.make<string>();
      const child = yield* Effect.fork(
        runActor({ role: echoRole, config, id: "echo-launched", parentPid: process.ppid, drain: launched }),
      );
      yield* Effect.promise(() =>
        waitFor(async () => {
          const actors = await Effect.runPromise(Effect.provide(listActors(config.experiment, 500), client(config)));
          return actors.filter((a) => a.answered && a.state === "running").length === 2;
        }),
      );
      yield* putState(EXPERIMENT_OUTCOME_KEY, {
        outcome: "completed" as const,
        reason: "learner-1 reached step 4 of 4",
        at: 0,
      });
      expect(Exit.isSuccess(yield* Fiber.await(joined))).toBe(true);
      expect((yield* getState(actorStatusKey("echo-joined")))?.value.reason).toBe(
        `experiment ${config.experiment} completed (learner-1 reached step 4 of 4)`,
      );

      // Joining a failed experiment: drained at once, and a failure of its own kind.
      yield* putState(EXPERIMENT_OUTCOME_KEY, { outcome: "failed" as const, reason: "reward-1 gave up", at: 0 });
      const late = yield* Effect.exit(runActor({ role: echoRole, config, id: "echo-late" }));
      expect(Exit.isFailure(late) && late.cause._tag === "Fail" && late.cause.error).toMatchObject({
        _tag: "JoinedExperimentFailed",
        reason: "reward-1 gave up",
      });

      // The launcher's own actors are stopped by the launcher, not by the outcome.
      const stillThere = yield* Effect.promise(() =>
        Effect.runPromise(Effect.provide(listActors(config.experiment, 500), client(config))),
      );
      expect(stillThere.filter((a) => a.answered).map((a) => a.id)).toEqual(["echo-launched"]);
      yield* Deferred.succeed(launched, "test");
      expect(Exit.isSuccess(yield* Fiber.await(child))).toBe(true);
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });

  it("a drain control request stops the actor", async () => {
    const config = testConfig();
    const program = Effect.gen(function* () {
      yield* ensureWorkQueues(PIPELINE_QUEUES);
      const actor = yield* Effect.fork(runActor({ role: echoRole, config, id: "echo-c" }));
      const nats = yield* Nats;
      const { subjects } = yield* Experiment;
      const request = encodeEnvelope(
        envelope(
          ControlRequestMessage,
          { command: "drain", args: {} },
          { experiment: config.experiment, sender: "forger" },
        ),
      );
      const reply = yield* Effect.promise(async () => {
        for (;;) {
          try {
            return await nats.connection.request(subjects.control("echo", "echo-c"), request, { timeout: 1_000 });
          } catch {
            await new Promise((resolve) => setTimeout(resolve, 50)); // not announced yet
          }
        }
      });
      const decoded = decodeEnvelope(reply.data, { accept: [ControlReplyMessage] });
      expect(Either.getOrThrow(decoded).body).toMatchObject({ ok: true, message: "echo-c draining" });
      expect(Exit.isSuccess(yield* Fiber.await(actor))).toBe(true);
      // Who asked is on record (the launcher reads it to say why a learner stopped).
      expect((yield* getState(actorStatusKey("echo-c")))?.value).toMatchObject({
        state: "stopped",
        reason: 'drain control request from "forger"',
      });
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });
});
