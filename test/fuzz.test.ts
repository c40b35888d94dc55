/**
 * The fuzz suite (docs/security.md, "The fuzz suite"): seeded, structure-aware mutations
 * (test/fuzz/mutations.ts) of real messages of every type factrl reads, on every subject it reads,
 * at least MUTANTS_PER_SUBJECT each, through the readers the actors use, against a real nats-server.
 * Good messages are interleaved with the mutants. For every subject: nothing throws or crashes; every
 * mutant the reader refuses is dead-lettered (work queues) or counted and logged with its subject and
 * reason (core subjects, control requests, the policy pointer); every good message is processed.
 *
 * Whether a mutant is "bad" is the codec's verdict (a mutant may still be a valid message: an extra
 * field, a huge but well-typed string); what is checked is that each message ends up in exactly one
 * place and that the readers survive all of them.
 */
import { Kvm } from "@nats-io/kv";
import { Deferred, Effect, Either, Exit, Fiber, Queue, type Scope } from "effect";
import pino from "pino";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { echoRole } from "../actors/echo.ts";
import { followPolicy } from "../actors/policy-sync.ts";
import { runActor } from "../actors/runtime.ts";
import {
  CURATOR_CURSOR_KEY,
  EVALUATION_DONE_KEY,
  LEARNER_PROGRESS_KEY,
  NO_LEARNER_PROGRESS,
  POLICY_ARCHITECTURE_KEY,
  PROMPTS_QUEUE,
  ROLLOUTS_QUEUE,
  SCORED_QUEUE,
} from "../actors/topology.ts";
import { decodeConfig } from "../configs/index.ts";
import {
  ControlReplyMessage,
  ControlRequestMessage,
  consumeWork,
  decodeEnvelope,
  Experiment,
  type ExperimentSubjects,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  getState,
  HeartbeatMessage,
  type MessageType,
  MetricsEventMessage,
  Nats,
  newWorkCounters,
  openWorkFetcher,
  POLICY_KEY,
  pendingWork,
  publishPolicy,
  putState,
  readDeadLetters,
  type StateKey,
  subscribe,
  WorkOutcome,
  type WorkQueue,
  watchState,
} from "../messaging/index.ts";
import { initBackend, loadCheckpoint } from "../models/index.ts";
import { type Mutant, mutants } from "./fuzz/mutations.ts";
import {
  freshExperiment,
  runWith,
  samplePromptGroup,
  sampleRolloutGroup,
  sampleScoredGroup,
} from "./messaging/fixtures.ts";

const natsUrl = inject("natsUrl");
const SEED = 19_003;
const MUTANTS_PER_SUBJECT = 1_000;
/** One good message after every this many mutants. */
const GOOD_EVERY = 10;
const META = { experiment: "fuzz", sender: "fuzzer" };

/** Log lines of the readers' connection, to check that refusals are logged with subject and reason. */
const captured: string[] = [];
const captureLogger = pino({ level: "warn" }, { write: (line: string) => captured.push(line) });
const withFuzzConnection = <A, E>(experiment: string, program: Effect.Effect<A, E, Nats | Experiment | Scope.Scope>) =>
  runWith(natsUrl, experiment, program, { logger: captureLogger });

/** Mutants and good messages interleaved; each says which it is. */
const interleave = (bad: readonly Mutant[], good: (index: number) => Uint8Array) => {
  const out: { bytes: Uint8Array; good: string | undefined }[] = [];
  bad.forEach((mutant, i) => {
    if (i % GOOD_EVERY === 0) out.push({ bytes: good(i / GOOD_EVERY), good: `good-${i / GOOD_EVERY}` });
    out.push({ bytes: mutant.bytes, good: undefined });
  });
  return out;
};

const accepts = <A>(type: MessageType<A>, bytes: Uint8Array) =>
  Either.isRight(decodeEnvelope(bytes, { accept: [type] }));

/** A sample of each queue's message with its group id set to `id`. */
const goodWork = (queue: WorkQueue<unknown>, id: string): unknown =>
  queue === PROMPTS_QUEUE
    ? samplePromptGroup(id)
    : queue === ROLLOUTS_QUEUE
      ? sampleRolloutGroup(id, 4, 24)
      : sampleScoredGroup(id, 4, 24);
const groupIdOf = (queue: WorkQueue<unknown>, body: unknown): string => {
  let node = body;
  for (const key of queue.groupIdPath ?? []) node = (node as Record<string, unknown>)[key];
  return node as string;
};

describe("work queues under fuzzing", () => {
  // prompts and scored are read with a fetcher (rollout actor, learner), rollouts by consumeWork (reward actor).
  it.each([PROMPTS_QUEUE, ROLLOUTS_QUEUE, SCORED_QUEUE] as WorkQueue<unknown>[])(
    "$name: every good message processed, every refused mutant dead-lettered with its reason, the queue empty",
    async (queue) => {
      const experiment = freshExperiment("fz");
      const original = encodeEnvelope(envelope(queue.message, goodWork(queue, "g-orig"), META));
      const stream = interleave(mutants(SEED + queue.name.length, [original], "msgpack", MUTANTS_PER_SUBJECT), (i) =>
        encodeEnvelope(envelope(queue.message, goodWork(queue, `good-${i}`), META)),
      );
      const result = await withFuzzConnection(
        experiment,
        Effect.gen(function* () {
          const nats = yield* Nats;
          const { subjects } = yield* Experiment;
          yield* ensureWorkQueues([queue], { ackWaitMs: 3_000 });
          let sent = 0;
          let refusedBySender = 0;
          let expectedAccepted = 0;
          for (const message of stream) {
            if (message.bytes.byteLength > nats.maxPayload) {
              refusedBySender += 1; // the client refuses it before sending: it never reaches a reader
              continue;
            }
            yield* Effect.promise(() => nats.jetstream.publish(subjects.work(queue.name), message.bytes));
            sent += 1;
            if (accepts(queue.message, message.bytes)) expectedAccepted += 1;
          }
          const processed: string[] = [];
          const counters = newWorkCounters();
          const settledAll = () => counters.done + counters.deadLettered >= sent;
          if (queue === ROLLOUTS_QUEUE) {
            const worker = yield* Effect.fork(
              consumeWork(
                queue,
                (item) =>
                  Effect.sync(() => {
                    processed.push(groupIdOf(queue, item.body));
                    return WorkOutcome.done;
                  }),
                { concurrency: 4, counters, pullExpiresMs: 1_000 },
              ),
            );
            while (!settledAll()) yield* Effect.sleep("100 millis");
            yield* Fiber.interrupt(worker);
          } else {
            const fetcher = yield* openWorkFetcher(queue, counters);
            while (!settledAll()) {
              const items = yield* fetcher.fetch({ max: 64, expiresMs: 1_000 });
              yield* fetcher.keepingAlive(
                () => items,
                Effect.forEach(items, (item) =>
                  Effect.zipRight(
                    Effect.sync(() => processed.push(groupIdOf(queue, item.body))),
                    item.settle(WorkOutcome.done),
                  ),
                ),
              );
            }
          }
          const deadLetters = yield* readDeadLetters(queue, 2 * MUTANTS_PER_SUBJECT);
          return {
            sent,
            refusedBySender,
            expectedAccepted,
            processed,
            counters,
            deadLetters,
            pending: yield* pendingWork(queue),
          };
        }),
      );
      const goodIds = stream.flatMap((m) => (m.good ? [m.good] : []));
      expect(result.sent + result.refusedBySender).toBe(stream.length);
      // Every good message processed, exactly once.
      expect(result.processed.filter((id) => id.startsWith("good-")).sort()).toEqual(goodIds.sort());
      expect(result.processed.length).toBe(result.expectedAccepted);
      // Every other message dead-lettered, with its reason and queue.
      expect(result.counters.deadLettered).toBe(result.sent - result.expectedAccepted);
      expect(result.deadLetters.length).toBe(result.sent - result.expectedAccepted);
      for (const letter of result.deadLetters) expect(letter.reason).toMatch(/^undecodable: \S/);
      expect(result.pending).toBe(0);
    },
    120_000,
  );
});

describe("core subscriptions under fuzzing", () => {
  const cases: [string, MessageType<unknown>, (subjects: ExperimentSubjects) => [string, string], unknown][] = [
    [
      "metrics",
      MetricsEventMessage,
      (s) => [s.allMetrics, s.metrics("rollout-1")],
      { source: "rollout-1", values: { "rollout.groups": 4 }, tags: { role: "rollout" } },
    ],
    [
      "heartbeats",
      HeartbeatMessage,
      (s) => [s.allHeartbeats, s.heartbeat("rollout", "rollout-1")],
      { role: "rollout", id: "rollout-1", host: "h", pid: 1, uptimeMs: 5, processed: 1, failed: 0, state: "running" },
    ],
  ];
  it.each(cases)(
    "%s: every good message received, every refused mutant counted and logged with its subject",
    async (_, type, subjectsFor, body) => {
      const experiment = freshExperiment("fz");
      const original = encodeEnvelope(envelope(type, body, META));
      const stream = interleave(mutants(SEED + 7, [original], "msgpack", MUTANTS_PER_SUBJECT), (i) =>
        encodeEnvelope(envelope(type, body, { ...META, id: `good-${i}` })),
      );
      const logStart = captured.length;
      const result = await withFuzzConnection(
        experiment,
        Effect.gen(function* () {
          const nats = yield* Nats;
          const { subjects } = yield* Experiment;
          const [pattern, subject] = subjectsFor(subjects);
          // The monitor's subscription, as it makes it.
          const subscription = yield* subscribe(pattern, [type]);
          let sent = 0;
          let expectedAccepted = 0;
          for (const message of stream) {
            if (message.bytes.byteLength > nats.maxPayload) continue;
            nats.connection.publish(subject, message.bytes);
            sent += 1;
            if (accepts(type, message.bytes)) expectedAccepted += 1;
            // Core NATS has no flow control: keep the sender within what a reader can take.
            if (sent % 50 === 0) yield* Effect.promise(() => nats.connection.flush());
          }
          yield* Effect.promise(() => nats.connection.flush());
          const { counters } = subscription;
          const deadline = Date.now() + 30_000;
          while (counters.accepted + counters.rejected < sent && Date.now() < deadline)
            yield* Effect.sleep("50 millis");
          const received = yield* Queue.takeAll(subscription.messages);
          return { sent, expectedAccepted, counters, ids: [...received].map((m) => m.id) };
        }),
      );
      const goodIds = stream.flatMap((m) => (m.good ? [m.good] : []));
      expect(result.ids.filter((id) => id.startsWith("good-")).sort()).toEqual(goodIds.sort());
      expect(result.counters.accepted).toBe(result.expectedAccepted);
      expect(result.counters.rejected).toBe(result.sent - result.expectedAccepted);
      expect(result.counters.dropped).toBe(0);
      const kinds = Object.values(result.counters.rejectedByKind).reduce((a, n) => a + (n ?? 0), 0);
      expect(kinds).toBe(result.counters.rejected);
      const logged = captured.slice(logStart).filter((line) => line.includes('"rejected message"'));
      expect(logged.length).toBeGreaterThan(0);
      for (const line of logged)
        expect(JSON.parse(line)).toMatchObject({ subject: expect.stringContaining(experiment) });
    },
    120_000,
  );
});

describe("control requests under fuzzing", () => {
  it("an actor answers every control request, refuses and counts every bad one, and keeps serving", async () => {
    const config = Either.getOrThrow(
      decodeConfig({ experiment: freshExperiment("fz"), nats: { url: natsUrl }, runtime: { heartbeatMs: 200 } }),
    );
    const status = (id: string) =>
      encodeEnvelope(envelope(ControlRequestMessage, { command: "status", args: {} }, { ...META, id }));
    const stream = interleave(mutants(SEED + 13, [status("orig")], "msgpack", MUTANTS_PER_SUBJECT), (i) =>
      status(`good-${i}`),
    );
    const result = await withFuzzConnection(
      config.experiment,
      Effect.gen(function* () {
        const nats = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* ensureWorkQueues(echoRole.takes ?? []);
        yield* ensureWorkQueues(echoRole.gives ?? []);
        const drain = yield* Deferred.make<string>();
        const actor = yield* Effect.fork(runActor({ role: echoRole, config, id: "echo-fz", drain }));
        const subject = subjects.control("echo", "echo-fz");
        const ask = (bytes: Uint8Array) =>
          Effect.promise(async () => {
            for (;;) {
              try {
                const reply = await nats.connection.request(subject, bytes, { timeout: 2_000 });
                return Either.getOrThrow(decodeEnvelope(reply.data, { accept: [ControlReplyMessage] })).body;
              } catch (error) {
                if (!/no responders/i.test(`${error} ${(error as Error).cause}`)) throw error;
                await new Promise((resolve) => setTimeout(resolve, 50)); // not announced yet
              }
            }
          });
        let goodAnswered = 0;
        let refused = 0;
        let expectedRefused = 0;
        for (const message of stream) {
          if (message.bytes.byteLength > nats.maxPayload) continue;
          const decoded = decodeEnvelope(message.bytes, { accept: [ControlRequestMessage] });
          const command = Either.isRight(decoded) ? decoded.right.body.command : undefined;
          if (command === "drain") continue; // a valid drain would (rightly) stop the actor
          if (command !== "status") expectedRefused += 1;
          const reply = yield* ask(message.bytes);
          if (message.good && reply.ok) goodAnswered += 1;
          if (!reply.ok) refused += 1;
        }
        const last = yield* ask(status("last"));
        yield* Deferred.succeed(drain, "fuzzed");
        const exit = yield* Fiber.await(actor);
        return { goodAnswered, refused, expectedRefused, last, exit };
      }),
    );
    expect(result.goodAnswered).toBe(stream.filter((m) => m.good).length);
    expect(result.refused).toBe(result.expectedRefused);
    // The actor's own count of what it refused, as its heartbeats and `factrl status` show it.
    expect(result.last).toMatchObject({ ok: true, data: { rejectedRequests: result.expectedRefused } });
    expect(Exit.isSuccess(result.exit)).toBe(true);
  }, 120_000);
});

describe("state keys under fuzzing", () => {
  // The keys roles read besides the pointer: the learner's progress (curator credits, launcher,
  // evaluator), the curator's cursor (a restarted curator), the evaluator's end (the launcher).
  const cases: [StateKey<unknown, unknown>, (i: number) => unknown][] = [
    [LEARNER_PROGRESS_KEY as StateKey<unknown, unknown>, (i) => ({ ...NO_LEARNER_PROGRESS, step: i, consumed: 8 * i })],
    [CURATOR_CURSOR_KEY as StateKey<unknown, unknown>, (i) => ({ published: 24 + i })],
    [EVALUATION_DONE_KEY as StateKey<unknown, unknown>, (i) => ({ finalVersion: i, report: `runs/x/report-${i}.md` })],
  ];
  it.each(cases)(
    "$key: a watcher follows every good value in order and refuses each bad one with the key and reason; a read never dies",
    async (key, good) => {
      const mutantCount = MUTANTS_PER_SUBJECT / 4; // a KV write per mutant: the watch is the same code for every key
      const original = new TextEncoder().encode(JSON.stringify(good(0)));
      const bad = mutants(SEED + key.key.length, [original], "json", mutantCount);
      const logStart = captured.length;
      const result = await withFuzzConnection(
        freshExperiment("fz"),
        Effect.gen(function* () {
          const nats = yield* Nats;
          const { subjects } = yield* Experiment;
          yield* putState(key, good(0));
          const updates = yield* watchState(key);
          const kv = yield* Effect.promise(() => new Kvm(nats.jetstream).open(subjects.stateBucket));
          let goods = 0;
          let badReads = 0;
          let expectedRefused = 0;
          for (const [i, mutant] of bad.entries()) {
            if (mutant.bytes.byteLength > nats.maxPayload - 1_024) continue;
            yield* Effect.promise(() => kv.put(key.key, mutant.bytes));
            // The read a (re)starting role makes: a value, or a StateError saying the value is bad.
            const read = yield* Effect.either(getState(key));
            if (Either.isLeft(read)) {
              expect(read.left.badValue).toBeDefined();
              badReads += 1;
            }
            if (i % GOOD_EVERY === GOOD_EVERY - 1) {
              goods += 1;
              yield* putState(key, good(goods));
            }
          }
          expectedRefused = badReads;
          goods += 1;
          yield* putState(key, good(goods));
          // Everything the watch delivers decodes; the good values arrive in order, the last one included.
          const seen: unknown[] = [];
          const deadline = Date.now() + 30_000;
          while (Date.now() < deadline) {
            const entry = yield* Queue.take(updates);
            seen.push(entry.value);
            if (JSON.stringify(entry.value) === JSON.stringify(good(goods))) break;
          }
          return { seen, goods, expectedRefused };
        }),
      );
      // Every good value written after the watch began arrives, in order (a mutant may equal a good
      // value too: a subsequence, not the whole of what arrived).
      const wanted = Array.from({ length: result.goods }, (_, i) => JSON.stringify(good(i + 1)));
      let next = 0;
      for (const value of result.seen) if (JSON.stringify(value) === wanted[next]) next += 1;
      expect(next).toBe(wanted.length);
      expect(result.expectedRefused).toBeGreaterThan(mutantCount / 4);
      const refusals = captured
        .slice(logStart)
        .map((line) => JSON.parse(line))
        .filter((line) => line.msg === "bad state value");
      expect(refusals.length).toBe(result.expectedRefused);
      for (const line of refusals) expect(line).toMatchObject({ key: key.key, reason: expect.any(String) });
    },
    120_000,
  );
});

describe("the policy pointer under fuzzing", () => {
  beforeAll(async () => {
    await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
  });

  it("a follower refuses and counts every garbage or forged pointer and follows every real version", async () => {
    const { policy } = await loadCheckpoint(`${import.meta.dirname}/fixtures/tiny-policy`);
    const weights = await policy.exportWeights();
    const realPointer = new TextEncoder().encode(
      JSON.stringify({ version: 1, weights: "policy-v1", publishedAt: 1_764_000_000_000 }),
    );
    const bad = mutants(SEED + 11, [realPointer], "json", MUTANTS_PER_SUBJECT);
    const result = await withFuzzConnection(
      freshExperiment("fz"),
      Effect.gen(function* () {
        const nats = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
        yield* putState(LEARNER_PROGRESS_KEY, { ...NO_LEARNER_PROGRESS, policyVersion: 1 });
        yield* publishPolicy(1, weights);
        const follower = yield* followPolicy;
        const versions = [(yield* follower.current).version];
        const kv = yield* Effect.promise(() => new Kvm(nats.jetstream).open(subjects.stateBucket));
        let real = 1;
        for (const [i, mutant] of bad.entries()) {
          // One over max_payload is refused by the client before it is sent: it never reaches a follower.
          if (mutant.bytes.byteLength < nats.maxPayload - 1_024)
            yield* Effect.promise(() => kv.put(POLICY_KEY.key, mutant.bytes));
          if (i % 100 === 99) {
            // A real announcement among the forgeries: progress first, then weights and pointer.
            real += 1;
            yield* putState(LEARNER_PROGRESS_KEY, { ...NO_LEARNER_PROGRESS, policyVersion: real });
            yield* publishPolicy(real, weights);
            versions.push((yield* follower.current).version);
          }
        }
        // The last mutants are followed by one more real version, which the follower must reach.
        real += 1;
        yield* putState(LEARNER_PROGRESS_KEY, { ...NO_LEARNER_PROGRESS, policyVersion: real });
        yield* publishPolicy(real, weights);
        const deadline = Date.now() + 30_000;
        let last = yield* follower.current;
        while (last.version < real && Date.now() < deadline) {
          yield* Effect.sleep("50 millis");
          last = yield* follower.current;
        }
        return { versions, last: last.version, real, refused: follower.refused() };
      }),
    );
    policy.dispose();
    expect(result.last).toBe(result.real);
    // Never behind a real version by more than the watch's delay, never ahead of one.
    for (const [i, version] of result.versions.entries()) expect(version).toBeLessThanOrEqual(i + 1);
    // Every mutant that is not an older-or-equal well-formed pointer is refused and counted.
    expect(result.refused).toBeGreaterThan(MUTANTS_PER_SUBJECT / 2);
  }, 120_000);
});
