import { Kvm } from "@nats-io/kv";
import { Effect, Queue } from "effect";
import { describe, expect, inject, it } from "vitest";
import {
  BlobError,
  deleteBlob,
  getBlob,
  getState,
  listBlobs,
  POLICY_KEY,
  publishPolicy,
  putBlob,
  StateError,
  watchState,
  weightsBlobName,
} from "../../messaging/index.ts";
import { Experiment, freshExperiment, Nats, runWith } from "./fixtures.ts";

describe("blobs", () => {
  it("round-trips a 20 MB Float32Array bit-exact through the Object Store", async () => {
    const weights = new Float32Array(5 * 1024 * 1024);
    for (let i = 0; i < weights.length; i++) weights[i] = Math.sin(i * 0.001) * 1e-3 + (i % 7) * 1e6;
    weights[0] = Number.NaN;
    weights[1] = -0;
    weights[2] = Number.POSITIVE_INFINITY;
    const bytes = new Uint8Array(weights.buffer);
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        const info = yield* putBlob("policy-v1", bytes, { version: "1" });
        const back = yield* getBlob("policy-v1");
        return { info, back };
      }),
    );
    expect(result.info.size).toBe(20 * 1024 * 1024);
    expect(result.info.chunks).toBeGreaterThan(1);
    expect(result.info.digest).toMatch(/^SHA-256=/);
    expect(result.info.metadata).toEqual({ version: "1" });
    expect(Buffer.compare(Buffer.from(result.back), Buffer.from(bytes))).toBe(0);
    const floats = new Float32Array(result.back.slice().buffer);
    expect(Number.isNaN(floats[0])).toBe(true);
    expect(Object.is(floats[1], -0)).toBe(true);
  });

  it("says a missing blob is not found, and lists and deletes blobs", async () => {
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        const missing = yield* Effect.flip(getBlob("policy-v404"));
        yield* putBlob("a", new Uint8Array([1, 2, 3]));
        yield* putBlob("b", new Uint8Array([4]));
        yield* deleteBlob("a");
        yield* deleteBlob("a"); // already gone: no error
        return { missing, names: (yield* listBlobs()).map((info) => info.name) };
      }),
    );
    expect(result.missing).toBeInstanceOf(BlobError);
    expect(result.missing.kind).toBe("not-found");
    expect(result.names).toEqual(["b"]);
  });
});

describe("state", () => {
  it("reports the current policy and then each new revision exactly once", async () => {
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        const before = yield* getState(POLICY_KEY);
        yield* publishPolicy(1, new Uint8Array([1]));
        const updates = yield* watchState(POLICY_KEY);
        const first = yield* Queue.take(updates);
        yield* publishPolicy(2, new Uint8Array([2]));
        yield* publishPolicy(3, new Uint8Array([3]));
        const second = yield* Queue.take(updates);
        const third = yield* Queue.take(updates);
        yield* Effect.sleep("300 millis");
        const extra = yield* Queue.size(updates);
        const current = yield* getState(POLICY_KEY);
        const weights = yield* getBlob(current?.value.weights ?? "");
        return { before, seen: [first, second, third], extra, current, weights };
      }),
    );
    expect(result.before).toBeUndefined();
    expect(result.seen.map((entry) => entry.value.version)).toEqual([1, 2, 3]);
    expect(new Set(result.seen.map((entry) => entry.revision)).size).toBe(3);
    expect(result.extra).toBe(0);
    expect(result.current?.value).toMatchObject({ version: 3, weights: weightsBlobName(3) });
    expect(Array.from(result.weights)).toEqual([3]);
  });

  it("skips a value that does not match the schema, and says why on read", async () => {
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        const { jetstream } = yield* Nats;
        const { subjects } = yield* Experiment;
        const updates = yield* watchState(POLICY_KEY);
        const kv = yield* Effect.promise(() => new Kvm(jetstream).open(subjects.stateBucket));
        yield* Effect.promise(() => kv.put("policy", JSON.stringify({ version: -1, weights: 7 })));
        const error = yield* Effect.flip(getState(POLICY_KEY));
        yield* publishPolicy(4, new Uint8Array([4]));
        const next = yield* Queue.take(updates);
        return { error, next };
      }),
    );
    expect(result.error).toBeInstanceOf(StateError);
    expect(result.error.message).toMatch(/state policy: .*\["version"\]/s);
    expect(result.error.message).toMatch(/\["weights"\]/);
    expect(result.next.value.version).toBe(4);
  });
});
