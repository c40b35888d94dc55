import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Chunk, Effect, Fiber, Queue } from "effect";
import { describe, expect, it } from "vitest";
import { PIPELINE_QUEUES, PROMPTS_QUEUE, ROLLOUTS_QUEUE } from "../../actors/topology.ts";
import {
  consumeWork,
  ensureWorkQueues,
  experimentSubjects,
  MessageTooLargeError,
  MetricsEventMessage,
  Nats,
  openWorkFetcher,
  POLICY_KEY,
  publishMessage,
  publishPolicy,
  publishWork,
  startLocalServer,
  subscribe,
  WorkOutcome,
  watchState,
} from "../../messaging/index.ts";
import { freshExperiment, runWith, samplePromptGroup, sampleRolloutGroup } from "./fixtures.ts";

const TOTAL = 300;

describe("nats-server restarted mid-stream", () => {
  it("clients reconnect by themselves and no JetStream-published message is lost", async () => {
    const first = await startLocalServer();
    let second: Awaited<ReturnType<typeof startLocalServer>> | undefined;
    const experiment = freshExperiment("restart");
    const subjects = experimentSubjects(experiment);
    try {
      const result = await runWith(
        first.url,
        experiment,
        Effect.gen(function* () {
          yield* ensureWorkQueues(PIPELINE_QUEUES, { ackWaitMs: 2_000 });
          yield* publishPolicy(1, new Uint8Array([1]));
          const policies = yield* watchState(POLICY_KEY);
          const initial = yield* Queue.take(policies);
          const received = new Set<string>();
          let deliveries = 0;
          const consumer = yield* Effect.fork(
            consumeWork(
              PROMPTS_QUEUE,
              (item) =>
                Effect.sync(() => {
                  deliveries += 1;
                  received.add(item.body.groupId);
                  return WorkOutcome.done;
                }),
              { concurrency: 2, pullExpiresMs: 1_000 },
            ),
          );
          const metrics = yield* subscribe(subjects.allMetrics, [MetricsEventMessage]);
          const publisher = yield* Effect.fork(
            Effect.forEach(
              Array.from({ length: TOTAL }, (_, i) => i),
              (i) =>
                publishWork(PROMPTS_QUEUE, samplePromptGroup(`g-${i}`), { msgId: `g-${i}` }).pipe(
                  Effect.zipRight(Effect.sleep("5 millis")),
                ),
              { discard: true },
            ),
          );
          while (received.size < TOTAL / 3) yield* Effect.sleep("20 millis");
          // Kill hard mid-stream, keep the store, come back on the same port.
          yield* Effect.promise(() => first.kill());
          yield* Effect.sleep("1 second");
          second = yield* Effect.promise(() => startLocalServer({ port: first.port, storeDir: first.storeDir }));
          yield* Fiber.join(publisher);
          const deadline = Date.now() + 30_000;
          while (received.size < TOTAL && Date.now() < deadline) yield* Effect.sleep("50 millis");
          yield* Fiber.interrupt(consumer);
          // The core subscription was re-made by the client after the reconnect.
          yield* publishMessage(subjects.metrics("learner"), MetricsEventMessage, {
            source: "learner",
            values: { after: 1 },
            tags: {},
          });
          const metric = yield* Queue.take(metrics.messages).pipe(Effect.timeout("5 seconds"));
          // The KV watch re-made itself after the restart (replaying the latest entry): still once per revision.
          yield* publishPolicy(2, new Uint8Array([2]));
          const next = yield* Queue.take(policies).pipe(Effect.timeout("10 seconds"));
          yield* Effect.sleep("500 millis");
          const policyVersions = [
            initial.value.version,
            next.value.version,
            ...Chunk.toArray(yield* Queue.takeAll(policies)).map((entry) => entry.value.version),
          ];
          return { received: received.size, deliveries, metric: metric.body.values, policyVersions };
        }),
      );
      expect(result.received).toBe(TOTAL);
      expect(result.deliveries).toBeGreaterThanOrEqual(TOTAL);
      expect(result.metric).toEqual({ after: 1 });
      expect(result.policyVersions).toEqual([1, 2]);
    } finally {
      await second?.stop();
      await first.stop();
    }
  });

  it("a fetch-only reader (the learner, rollouts) keeps going: a fetch during an outage returns what arrived instead of failing", async () => {
    const first = await startLocalServer();
    let second: Awaited<ReturnType<typeof startLocalServer>> | undefined;
    try {
      const result = await runWith(
        first.url,
        freshExperiment("fetch-restart"),
        Effect.gen(function* () {
          yield* ensureWorkQueues(PIPELINE_QUEUES, { ackWaitMs: 2_000 });
          for (let i = 0; i < 5; i++)
            yield* publishWork(PROMPTS_QUEUE, samplePromptGroup(`f-${i}`), { msgId: `f-${i}` });
          const fetcher = yield* openWorkFetcher(PROMPTS_QUEUE);
          const received = new Set<string>();
          const take = (max: number) =>
            Effect.gen(function* () {
              const items = yield* fetcher.fetch({ max, expiresMs: 1_000 });
              for (const item of items) {
                received.add(item.body.groupId);
                yield* item.settle(WorkOutcome.done);
              }
              return items.length;
            });
          const beforeKill = yield* take(2);
          yield* Effect.promise(() => first.kill());
          // The pull is made while the server is away; the server comes back while it may still wait
          // (a client that has not noticed the outage yet waits for the reconnect instead of failing).
          const duringOutage = yield* Effect.fork(take(3));
          yield* Effect.sleep("3 seconds");
          second = yield* Effect.promise(() => startLocalServer({ port: first.port, storeDir: first.storeDir }));
          const whileDown = yield* Fiber.join(duringOutage);
          const deadline = Date.now() + 30_000;
          while (received.size < 5 && Date.now() < deadline) yield* take(3);
          return { beforeKill, whileDown, received: received.size };
        }),
      );
      expect(result.beforeKill).toBe(2);
      expect(result.whileDown).toBeLessThanOrEqual(3); // a count, not a failure
      expect(result.received).toBe(5);
    } finally {
      await second?.stop();
      await first.stop();
    }
  });

  it("a reconnect to a server with a smaller max_payload lowers the limit: a group over it is refused at once", async () => {
    const first = await startLocalServer();
    let second: Awaited<ReturnType<typeof startLocalServer>> | undefined;
    try {
      const dir = await mkdtemp(join(tmpdir(), "factrl-conf-"));
      const smaller = join(dir, "nats.conf");
      await writeFile(smaller, "max_payload: 262144\n");
      const result = await runWith(
        first.url,
        freshExperiment(),
        Effect.gen(function* () {
          yield* ensureWorkQueues(PIPELINE_QUEUES);
          const nats = yield* Nats;
          const before = nats.maxPayload;
          yield* Effect.promise(() => first.kill());
          second = yield* Effect.promise(() =>
            startLocalServer({ port: first.port, storeDir: first.storeDir, extraArgs: ["-c", smaller] }),
          );
          const deadline = Date.now() + 15_000;
          while (nats.maxPayload === before && Date.now() < deadline) yield* Effect.sleep("50 millis");
          // ≈ 400 kB: under the first server's limit, over the second's.
          const group = sampleRolloutGroup("g-big", 8, 4_000);
          const started = Date.now();
          const error = yield* Effect.flip(publishWork(ROLLOUTS_QUEUE, group, { msgId: "g-big" }));
          return { before, after: nats.maxPayload, error, elapsedMs: Date.now() - started };
        }),
      );
      expect(result.before).toBe(1_048_576);
      expect(result.after).toBe(262_144);
      expect(result.error).toBeInstanceOf(MessageTooLargeError);
      expect(result.error.message).toMatch(/over the 262144-byte limit; nothing was sent/);
      expect(result.elapsedMs).toBeLessThan(5_000); // not the 60 s of retries an outage gets
    } finally {
      await second?.stop();
      await first.stop();
    }
  }, 60_000);
});
