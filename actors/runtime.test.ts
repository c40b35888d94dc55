import { Svcm } from "@nats-io/services";
import { Deferred, Effect, Either, Exit, Fiber, Layer } from "effect";
import { describe, expect, inject, it } from "vitest";
import { decodeConfig, type ExperimentConfig } from "../configs/index.ts";
import {
  connectNats,
  deadLetterCount,
  decodeEnvelope,
  Experiment,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  experimentSubjects,
  Nats,
  openWorkFetcher,
  type PromptGroup,
  publishWork,
} from "../messaging/index.ts";
import { echoRole, makeEchoRole } from "./echo.ts";
import { type RoleDefinition, runActor } from "./runtime.ts";

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

/** Takes every rollout waiting in the queue (acking them) and returns their group ids. */
const drainRollouts = Effect.gen(function* () {
  const fetcher = yield* openWorkFetcher("rollouts");
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
      yield* ensureWorkQueues({ ackWaitMs: 5_000 });
      const nats = yield* Nats;
      const heartbeats: { state: string; processed: number; id: string }[] = [];
      nats.connection.subscribe(experimentSubjects(config.experiment).allHeartbeats, {
        callback: (_error, msg) => {
          const decoded = decodeEnvelope(msg.data, { accept: ["Heartbeat"] });
          if (Either.isRight(decoded)) heartbeats.push(decoded.right.body);
        },
      });
      yield* Effect.promise(() => nats.connection.flush());
      const drain = yield* Deferred.make<string>();
      const actor = yield* Effect.fork(runActor({ role: echoRole, config, id: "echo-a", drain }));
      for (let i = 0; i < 5; i++) yield* publishWork("prompts", promptGroup(i, 0));
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
      yield* ensureWorkQueues({ ackWaitMs: 30_000 });
      const drainA = yield* Deferred.make<string>();
      const drainB = yield* Deferred.make<string>();
      const options = { config } as const;
      // A works 3 items at once: while it drains, its idle workers must not bounce items back and forth.
      const a = yield* Effect.fork(runActor({ ...options, role: makeEchoRole(3), id: "echo-a", drain: drainA }));
      const b = yield* Effect.fork(runActor({ ...options, role: echoRole, id: "echo-b", drain: drainB }));
      // One long item keeps A's drain waiting while its other workers are idle.
      for (let i = 0; i < groups; i++) yield* publishWork("prompts", promptGroup(i, i === 0 ? 1_500 : 50));
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
      expect(yield* deadLetterCount("prompts")).toBe(0);
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

  it("a drain control request stops the actor", async () => {
    const config = testConfig();
    const program = Effect.gen(function* () {
      yield* ensureWorkQueues();
      const actor = yield* Effect.fork(runActor({ role: echoRole, config, id: "echo-c" }));
      const nats = yield* Nats;
      const { subjects } = yield* Experiment;
      const request = encodeEnvelope(
        envelope("ControlRequest", { command: "drain", args: {} }, { experiment: config.experiment, sender: "test" }),
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
      const decoded = decodeEnvelope(reply.data, { accept: ["ControlReply"] });
      expect(Either.getOrThrow(decoded).body).toMatchObject({ ok: true, message: "echo-c draining" });
      expect(Exit.isSuccess(yield* Fiber.await(actor))).toBe(true);
    });
    await Effect.runPromise(Effect.scoped(Effect.provide(program, client(config))));
  });
});
