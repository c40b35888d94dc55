import { Effect } from "effect";
import { describe, expect, inject, it } from "vitest";
import { PIPELINE_QUEUES, PROMPTS_QUEUE, ROLLOUTS_QUEUE, SCORED_QUEUE } from "../../actors/topology.ts";
import {
  decodeEnvelope,
  ensureWorkQueues,
  MessageTooLargeError,
  pendingWork,
  publishWorkAll,
  type WorkQueue,
} from "../../messaging/index.ts";
import { Experiment, freshExperiment, Nats, runWith, samplePromptGroup, sampleRolloutGroup } from "./fixtures.ts";

const url = () => inject("natsUrl");

/** The envelope id of the message stored at `seq` in `queue`'s stream. */
const storedId = (queue: WorkQueue<unknown>, seq: number) =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const stored = yield* Effect.promise(() => manager.streams.getMessage(subjects.stream(queue.name), { seq }));
    const decoded = decodeEnvelope(stored!.data, { accept: [queue.message] });
    if (decoded._tag === "Left") throw decoded.left;
    return decoded.right.id;
  });

describe("publishWorkAll", () => {
  it("stores every item of a batch once and returns each item's ack in the items' order", async () => {
    const ids = ["g-a", "g-b", "g-c", "g-d", "g-e"];
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const acks = yield* publishWorkAll(
          PROMPTS_QUEUE,
          ids.map((id) => ({ body: samplePromptGroup(id), msgId: id })),
        );
        const stored = yield* Effect.forEach(acks, (ack) => storedId(PROMPTS_QUEUE, ack.seq));
        // The same batch again with one new item: only the new one is stored.
        const again = yield* publishWorkAll(
          PROMPTS_QUEUE,
          [...ids, "g-f"].map((id) => ({ body: samplePromptGroup(id), msgId: id })),
        );
        return { acks, stored, again, pending: yield* pendingWork(PROMPTS_QUEUE) };
      }),
    );
    expect(result.acks.map((a) => a.duplicate)).toEqual([false, false, false, false, false]);
    expect(new Set(result.acks.map((a) => a.seq)).size).toBe(ids.length);
    expect(result.stored).toEqual(ids);
    expect(result.again.map((a) => a.duplicate)).toEqual([true, true, true, true, true, false]);
    expect(result.again.slice(0, 5).map((a) => a.seq)).toEqual(result.acks.map((a) => a.seq));
    expect(result.pending).toBe(6);
  });

  it("returns no acks for an empty batch", async () => {
    const acks = await runWith(url(), freshExperiment(), publishWorkAll(SCORED_QUEUE, []));
    expect(acks).toEqual([]);
  });

  it("fails with the clear too-large error when one item of the batch cannot be sent", async () => {
    const result = await runWith(
      url(),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const error = yield* Effect.flip(
          publishWorkAll(ROLLOUTS_QUEUE, [
            { body: sampleRolloutGroup("g-ok"), msgId: "g-ok" },
            { body: sampleRolloutGroup("g-huge", 8, 40_000), msgId: "g-huge" },
          ]),
        );
        return { error, pending: yield* pendingWork(ROLLOUTS_QUEUE) };
      }),
    );
    expect(result.error).toBeInstanceOf(MessageTooLargeError);
    expect(result.error.message).toMatch(/RolloutGroup message is \d+ bytes, over the 1048576-byte limit/);
    // The huge item was never sent; the small one may or may not have been stored before the failure.
    expect(result.pending).toBeLessThanOrEqual(1);
  });
});
