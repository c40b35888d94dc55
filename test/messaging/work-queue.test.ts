import { Deferred, Effect, Either, Fiber, Ref } from "effect";
import { pack } from "msgpackr";
import { describe, expect, inject, it } from "vitest";
import {
  PIPELINE_QUEUES,
  PROMPTS_QUEUE,
  ROLLOUTS_QUEUE,
  RolloutGroupMessage,
  SCORED_QUEUE,
} from "../../actors/topology.ts";
import {
  consumeWork,
  deadLetterCount,
  ensureWorkQueues,
  envelope,
  MessageTooLargeError,
  newWorkCounters,
  openWorkFetcher,
  pendingWork,
  publishWork,
  readDeadLetteredGroups,
  readDeadLetters,
  WorkOutcome,
} from "../../messaging/index.ts";
import {
  Experiment,
  eventually,
  freshExperiment,
  Nats,
  paddedRolloutGroup,
  runWith,
  samplePromptGroup,
  sampleRolloutGroup,
} from "./fixtures.ts";

const url = () => inject("natsUrl");

/** Collects dead letters published on a queue's dead-letter subject (core subscription). */
const watchDeadLetters = (queue: "prompts" | "rollouts" | "scored") =>
  Effect.gen(function* () {
    const { connection } = yield* Nats;
    const { subjects } = yield* Experiment;
    const seen: { reason: string; seq: string }[] = [];
    const sub = connection.subscribe(subjects.deadLetter(queue), {
      callback: (_err, msg) => {
        seen.push({
          reason: msg.headers?.get("Factrl-Reason") ?? "",
          seq: msg.headers?.get("Factrl-Stream-Seq") ?? "",
        });
      },
    });
    yield* Effect.promise(() => connection.flush());
    yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()));
    return seen;
  });

describe("work queues", () => {
  it("round-trips a rollout group with typed arrays through publish and consume", async () => {
    const received = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        yield* publishWork(ROLLOUTS_QUEUE, sampleRolloutGroup("g-rt"));
        const got = yield* Deferred.make<ReturnType<typeof sampleRolloutGroup>>();
        const fiber = yield* Effect.fork(
          consumeWork(ROLLOUTS_QUEUE, (item) => Deferred.succeed(got, item.body).pipe(Effect.as(WorkOutcome.done))),
        );
        const body = yield* Deferred.await(got);
        yield* Fiber.interrupt(fiber);
        return { body, pending: yield* pendingWork(ROLLOUTS_QUEUE) };
      }),
    );
    expect(received.body.group.groupId).toBe("g-rt");
    expect(received.body.answers[0]?.tokens).toBeInstanceOf(Int32Array);
    expect(received.body.answers[0]?.logProbs).toBeInstanceOf(Float32Array);
    expect(received.body.answers[0]?.logProbs).toEqual(sampleRolloutGroup().answers[0]?.logProbs);
    expect(received.pending).toBe(0);
  });

  it("stores a message published twice with one id once", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const first = yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-dup"), { msgId: "g-dup" });
        const second = yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-dup"), { msgId: "g-dup" });
        const other = yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-other"), { msgId: "g-other" });
        return { first, second, other, pending: yield* pendingWork(PROMPTS_QUEUE) };
      }),
    );
    expect(result.first.duplicate).toBe(false);
    expect(result.second.duplicate).toBe(true);
    expect(result.second.seq).toBe(result.first.seq);
    expect(result.other.duplicate).toBe(false);
    expect(result.pending).toBe(2);
  });

  it("redelivers to another consumer the message of a consumer that died without acking", async () => {
    const experiment = freshExperiment();
    await runWith(
      url(),
      experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES, { ackWaitMs: 1_000 });
        yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-crash"));
      }),
    );
    // The first consumer takes the message, then its process "dies": the connection closes, no ack.
    const taken = await runWith(
      url(),
      experiment,
      Effect.gen(function* () {
        const fetcher = yield* openWorkFetcher(PROMPTS_QUEUE);
        return (yield* fetcher.fetch({ max: 1 })).map((item) => item.body.groupId);
      }),
    );
    expect(taken).toEqual(["g-crash"]);
    const redelivered = await runWith(
      url(),
      experiment,
      Effect.gen(function* () {
        const fetcher = yield* openWorkFetcher(PROMPTS_QUEUE);
        const items = yield* fetcher.fetch({ max: 1, expiresMs: 3_000 });
        for (const item of items) yield* item.settle(WorkOutcome.done);
        return {
          items: items.map((item) => ({ id: item.body.groupId, deliveries: item.deliveryCount })),
          pending: yield* eventually(pendingWork(PROMPTS_QUEUE), (n) => n === 0),
        };
      }),
    );
    expect(redelivered.items).toEqual([{ id: "g-crash", deliveries: 2 }]);
    expect(redelivered.pending).toBe(0);
  });

  it("dead-letters a message that keeps failing, once, and removes it from the work stream", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES, { maxDeliver: 3 });
        const deadLetters = yield* watchDeadLetters("rollouts");
        const attempts = yield* Ref.make(0);
        const counters = newWorkCounters();
        yield* publishWork(ROLLOUTS_QUEUE, sampleRolloutGroup("g-poison"));
        const fiber = yield* Effect.fork(
          consumeWork(
            ROLLOUTS_QUEUE,
            () => Ref.update(attempts, (n) => n + 1).pipe(Effect.as(WorkOutcome.retry("model not loaded", 0))),
            { counters, concurrency: 2 },
          ),
        );
        while (counters.deadLettered === 0) yield* Effect.sleep("50 millis");
        yield* Effect.sleep("1500 millis"); // room for any wrong extra delivery or dead letter
        yield* Fiber.interrupt(fiber);
        return {
          attempts: yield* Ref.get(attempts),
          counters,
          deadLetters,
          stored: yield* deadLetterCount(ROLLOUTS_QUEUE),
          pending: yield* pendingWork(ROLLOUTS_QUEUE),
        };
      }),
    );
    expect(result.attempts).toBe(3);
    expect(result.counters).toEqual({ done: 0, retried: 2, deadLettered: 1 });
    expect(result.deadLetters).toHaveLength(1);
    expect(result.deadLetters[0]?.reason).toContain("still failing after 3 deliveries: model not loaded");
    expect(result.stored).toBe(1);
    expect(result.pending).toBe(0);
  });

  it("dead-letters a message whose consumers all died without acking, on its next receipt", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES, { maxDeliver: 1, ackWaitMs: 1_000 });
        const deadLetters = yield* watchDeadLetters("prompts");
        yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-abandoned"));
        const fetcher = yield* openWorkFetcher(PROMPTS_QUEUE);
        const first = yield* fetcher.fetch({ max: 1 }); // taken and never settled: a dead consumer
        const second = yield* fetcher.fetch({ max: 1, expiresMs: 3_000 });
        yield* Effect.sleep("200 millis");
        return {
          first: first.length,
          second: second.length,
          deadLetters,
          counters: fetcher.counters,
          pending: yield* pendingWork(PROMPTS_QUEUE),
        };
      }),
    );
    expect(result.first).toBe(1);
    expect(result.second).toBe(0);
    expect(result.deadLetters).toHaveLength(1);
    expect(result.deadLetters[0]?.reason).toContain("exhausted 1 deliveries without an ack");
    expect(result.counters.deadLettered).toBe(1);
    expect(result.pending).toBe(0);
  });

  it("dead-letters rejected and undecodable items at once", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { jetstream } = yield* Nats;
        const { subjects } = yield* Experiment;
        const deadLetters = yield* watchDeadLetters("scored");
        yield* Effect.promise(() => jetstream.publish(subjects.work("scored"), new Uint8Array([0xc1, 7, 7])));
        const fetcher = yield* openWorkFetcher(SCORED_QUEUE);
        const undecodable = yield* fetcher.fetch({ max: 5 });
        yield* publishWork(SCORED_QUEUE, {
          rollout: sampleRolloutGroup("g-rej", 1, 4),
          scores: [{ reward: 1, components: {}, failures: [] }],
          scorer: "r",
          scoredAt: 1,
        });
        const [item] = yield* fetcher.fetch({ max: 5 });
        if (item) yield* item.settle(WorkOutcome.reject("answer has no claims"));
        yield* Effect.sleep("200 millis");
        return {
          undecodable: undecodable.length,
          deadLetters,
          pending: yield* pendingWork(SCORED_QUEUE),
          records: yield* readDeadLetters(SCORED_QUEUE),
        };
      }),
    );
    expect(result.undecodable).toBe(0);
    expect(result.deadLetters.map((d) => d.reason)).toEqual([
      expect.stringMatching(/^undecodable: not-msgpack/),
      "rejected: answer has no claims",
    ]);
    // Operators can read them back, with the reason and the message when it decodes.
    expect(result.records.map((record) => [record.reason.split(":")[0], record.deliveries, record.workSeq])).toEqual([
      ["undecodable", 1, 1],
      ["rejected", 1, 2],
    ]);
    expect(Either.isLeft(result.records[0]!.message)).toBe(true);
    const rejected = result.records[1]!.message;
    expect(Either.isRight(rejected) && rejected.right.type).toBe("ScoredGroup");
    expect(result.pending).toBe(0);
  });

  it("pulls on demand: never more unacked deliveries than workers", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        for (let i = 0; i < 12; i++) yield* publishWork(PROMPTS_QUEUE, samplePromptGroup(`g-${i}`));
        const { manager } = yield* Nats;
        const { subjects } = yield* Experiment;
        const counters = newWorkCounters();
        const fiber = yield* Effect.fork(
          consumeWork(PROMPTS_QUEUE, () => Effect.sleep("150 millis").pipe(Effect.as(WorkOutcome.done)), {
            concurrency: 3,
            counters,
          }),
        );
        let maxInFlight = 0;
        while (counters.done < 12) {
          const info = yield* Effect.promise(() =>
            manager.consumers.info(subjects.stream("prompts"), subjects.consumer("prompts")),
          );
          maxInFlight = Math.max(maxInFlight, info.num_ack_pending);
          yield* Effect.sleep("40 millis");
        }
        yield* Fiber.interrupt(fiber);
        return { maxInFlight, done: counters.done };
      }),
    );
    expect(result.done).toBe(12);
    expect(result.maxInFlight).toBeGreaterThan(0);
    expect(result.maxInFlight).toBeLessThanOrEqual(3);
  });

  it("refuses an oversize work item before sending it", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const huge = sampleRolloutGroup("g-huge", 8, 40_000); // 8 × 40k tokens × (4+4+16 bytes) ≫ 1 MiB
        const error = yield* Effect.flip(publishWork(ROLLOUTS_QUEUE, huge));
        return { error, pending: yield* pendingWork(ROLLOUTS_QUEUE) };
      }),
    );
    expect(result.error).toBeInstanceOf(MessageTooLargeError);
    expect(result.error.message).toMatch(
      /RolloutGroup message is \d+ bytes, over the 1048576-byte limit; nothing was sent/,
    );
    expect(result.pending).toBe(0);
  });
  it("refuses at once a work item that fits max_payload alone but not with its msgID header, and sends one that just fits", async () => {
    const experiment = freshExperiment();
    const result = await runWith(
      url(),
      experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { maxPayload } = yield* Nats;
        // The header block publishWork sends, by the NATS wire format: NATS counts it in max_payload.
        const headerFor = (msgId: string) => Buffer.byteLength(`NATS/1.0\r\nNats-Msg-Id: ${msgId}\r\n\r\n`);
        const padded = (groupId: string, size: number) => paddedRolloutGroup(experiment, groupId, size);
        const gap = padded("g-gap", maxPayload - 8); // fits alone, not with its 32 header bytes
        const started = Date.now();
        const error = yield* Effect.flip(publishWork(ROLLOUTS_QUEUE, gap, { msgId: "g-gap" }));
        const elapsedMs = Date.now() - started;
        const pendingAfterRefusal = yield* pendingWork(ROLLOUTS_QUEUE);
        const fits = padded("g-fits", maxPayload - headerFor("g-fits")); // with its headers, exactly max_payload
        const stored = yield* publishWork(ROLLOUTS_QUEUE, fits, { msgId: "g-fits" });
        return {
          maxPayload,
          header: headerFor("g-gap"),
          error,
          elapsedMs,
          pendingAfterRefusal,
          stored,
          pending: yield* pendingWork(ROLLOUTS_QUEUE),
        };
      }),
    );
    expect(result.error).toBeInstanceOf(MessageTooLargeError);
    expect(result.elapsedMs).toBeLessThan(5_000); // not the 60 s of retries an outage gets
    expect(result.pendingAfterRefusal).toBe(0);
    const error = result.error as MessageTooLargeError;
    expect(error.headerBytes).toBe(result.header);
    expect(error.bytes).toBe(result.maxPayload - 8 + result.header);
    expect(error.message).toContain(
      `RolloutGroup message is ${error.bytes} bytes, over the ${result.maxPayload}-byte limit; nothing was sent ` +
        `(${result.maxPayload - 8} bytes of envelope and ${result.header} of NATS headers`,
    );
    expect(result.stored.duplicate).toBe(false);
    expect(result.pending).toBe(1);
  }, 20_000);

  it("re-running ensureWorkQueues with new settings updates the consumers", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES, { maxDeliver: 5, ackWaitMs: 30_000 });
        yield* ensureWorkQueues(PIPELINE_QUEUES, { maxDeliver: 2, ackWaitMs: 4_000 });
        const { manager } = yield* Nats;
        const { subjects } = yield* Experiment;
        return yield* Effect.promise(() =>
          manager.consumers.info(subjects.stream("scored"), subjects.consumer("scored")),
        );
      }),
    );
    expect(result.config.max_deliver).toBe(-1); // the server never gives up; the workers count attempts
    expect(result.config.description).toBe("factrl work queue: dead-lettered after 2 deliveries");
    expect(result.config.ack_wait).toBe(4_000_000_000);
  });

  it("says what is missing when no stream stores the subject", async () => {
    const error = await runWith(
      url(),
      freshExperiment(),
      Effect.flip(publishWork(PROMPTS_QUEUE, samplePromptGroup("g-x"), { retryForMs: 300 })),
    );
    expect(error.message).toMatch(/did ensureWorkQueues run\?/);
  });
  it("the server never gives up on a message: one whose dead-lettering delivery was lost too is dead-lettered on the next receipt", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES, { maxDeliver: 1, ackWaitMs: 1_000 });
        const deadLetters = yield* watchDeadLetters("prompts");
        yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-lost"));
        // A plain JetStream reader takes two deliveries and drops them: the attempt, and the delivery
        // on which a factrl worker would have dead-lettered it.
        const { jetstream } = yield* Nats;
        const { subjects } = yield* Experiment;
        const raw = yield* Effect.promise(() =>
          jetstream.consumers.get(subjects.stream("prompts"), subjects.consumer("prompts")),
        );
        const taken: number[] = [];
        for (let pull = 0; pull < 2; pull++) {
          const msg = yield* Effect.promise(() => raw.next({ expires: 2_500 }));
          if (msg) taken.push(msg.info.deliveryCount);
        }
        const fetcher = yield* openWorkFetcher(PROMPTS_QUEUE);
        const received = yield* fetcher.fetch({ max: 1, expiresMs: 3_000 });
        const pending = yield* eventually(pendingWork(PROMPTS_QUEUE), (n) => n === 0);
        return {
          taken,
          received: received.length,
          deadLetters,
          pending,
          stored: yield* deadLetterCount(PROMPTS_QUEUE),
        };
      }),
    );
    expect(result.taken).toEqual([1, 2]);
    expect(result.received).toBe(0);
    expect(result.deadLetters).toHaveLength(1);
    expect(result.deadLetters[0]?.reason).toContain("exhausted 1 deliveries without an ack");
    expect(result.pending).toBe(0);
    expect(result.stored).toBe(1);
  });

  it("a dead letter names its group (Factrl-Group) when the message has one, even one that does not decode", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { jetstream } = yield* Nats;
        const { subjects } = yield* Experiment;
        const raw = (value: unknown) => Effect.promise(() => jetstream.publish(subjects.work("rollouts"), pack(value)));
        const good = sampleRolloutGroup("g-named", 1, 4);
        yield* raw({ ...envelope(RolloutGroupMessage, good, { experiment: "x", sender: "t" }), version: 99 });
        yield* raw({
          ...envelope(RolloutGroupMessage, good, { experiment: "x", sender: "t" }),
          body: { group: { groupId: "g-bad" } },
        });
        yield* raw({ body: { group: { groupId: "with space" } } });
        yield* raw([1, 2, 3]);
        const fetcher = yield* openWorkFetcher(ROLLOUTS_QUEUE);
        while ((yield* fetcher.fetch({ max: 10 })).length > 0 || fetcher.counters.deadLettered < 4) {
          yield* Effect.sleep("20 millis");
        }
        return {
          records: yield* readDeadLetters(ROLLOUTS_QUEUE),
          groups: yield* readDeadLetteredGroups(PIPELINE_QUEUES),
        };
      }),
    );
    expect(result.records.map((record) => record.groupId)).toEqual(["g-named", "g-bad", undefined, undefined]);
    expect(result.groups.groupIds).toEqual(["g-named", "g-bad"]);
    expect(result.groups.lastSeq).toBe(4);
  });

  it("a malformed message near 1 MiB is dead-lettered as a truncated copy, with its size, and removed", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { jetstream, maxPayload } = yield* Nats;
        const { subjects } = yield* Experiment;
        const size = maxPayload - 64; // fits alone; with the dead letter's headers it would not
        const junk = Uint8Array.from({ length: size }, (_, i) => (i * 7919) % 251);
        junk[0] = 0xc1; // never valid msgpack
        yield* Effect.promise(() => jetstream.publish(subjects.work("scored"), junk));
        const fetcher = yield* openWorkFetcher(SCORED_QUEUE);
        const received = yield* fetcher.fetch({ max: 1 });
        const pending = yield* eventually(pendingWork(SCORED_QUEUE), (n) => n === 0);
        return { size, received: received.length, pending, records: yield* readDeadLetters(SCORED_QUEUE) };
      }),
    );
    expect(result.received).toBe(0);
    expect(result.pending).toBe(0);
    expect(result.records).toHaveLength(1);
    const [record] = result.records;
    expect(record?.reason).toMatch(/^undecodable: not-msgpack/);
    expect(record?.truncatedFrom).toBe(result.size);
    expect(Either.isLeft(record!.message) && record!.message.left).toMatch(
      new RegExp(`^only the first \\d+ of ${result.size} bytes were kept`),
    );
  });
});
