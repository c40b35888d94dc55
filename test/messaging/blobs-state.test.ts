import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
  RETAINED_POLICY_VERSIONS,
  StateError,
  startLocalServer,
  watchState,
  weightsBlobName,
} from "../../messaging/index.ts";
import { Experiment, freshExperiment, Nats, runWith } from "./fixtures.ts";

describe("blobs", () => {
  it("round-trips a 20 MB Float32Array bit-exact (in chunks under max_payload)", async () => {
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

  it("stores a blob on a server whose max_payload is under the usual chunk size, in chunks that fit it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-conf-"));
    await writeFile(join(dir, "nats.conf"), "max_payload: 131072\n");
    const server = await startLocalServer({ extraArgs: ["-c", join(dir, "nats.conf")] });
    try {
      const bytes = Uint8Array.from({ length: 1_000_000 }, (_, i) => (i * 31) % 251);
      const result = await runWith(
        server.url,
        freshExperiment(),
        Effect.gen(function* () {
          const info = yield* putBlob("policy-v1", bytes);
          return { info, back: yield* getBlob("policy-v1") };
        }),
      );
      expect(result.info.chunks).toBe(Math.ceil(1_000_000 / 131_072));
      expect(Buffer.compare(Buffer.from(result.back), Buffer.from(bytes))).toBe(0);
    } finally {
      await server.stop();
    }
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

  it("replaces a blob whole: readers see the old bytes or the new, and the old chunks are gone", async () => {
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        const { manager } = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* putBlob("w", new Uint8Array(1_200_000).fill(1)); // 3 chunks
        const info = yield* putBlob("w", new Uint8Array([9, 9]), { round: "2" });
        const back = yield* getBlob("w");
        const stream = yield* Effect.promise(() => manager.streams.info(subjects.weightsStream));
        return { info, back, messages: stream.state.messages };
      }),
    );
    expect(result.info).toMatchObject({ name: "w", size: 2, chunks: 1, metadata: { round: "2" } });
    expect([...result.back]).toEqual([9, 9]);
    expect(result.messages).toBe(2); // the new chunk and manifest only
  });

  it("reports a blob whose stored bytes changed as corrupt, and a bad name before touching the server", async () => {
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        const { jetstream, manager } = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* putBlob("w", new Uint8Array([1, 2, 3]));
        // Rewrite the manifest to point at a chunk with other bytes (what a bit flip on disk would look like).
        const manifest = (yield* Effect.promise(() =>
          manager.direct.getMessage(subjects.weightsStream, { last_by_subj: `${subjects.blobs}.meta.w` }),
        ))!.json<{ sequences: number[] }>();
        const other = yield* Effect.promise(() =>
          jetstream.publish(`${subjects.blobs}.data.w`, new Uint8Array([1, 2, 4])),
        );
        yield* Effect.promise(() =>
          jetstream.publish(`${subjects.blobs}.meta.w`, JSON.stringify({ ...manifest, sequences: [other.seq] })),
        );
        return { corrupt: yield* Effect.flip(getBlob("w")), badName: yield* Effect.flip(getBlob("policy.v1")) };
      }),
    );
    expect(result.corrupt.kind).toBe("corrupt");
    expect(result.corrupt.message).toMatch(/read 3 bytes with SHA-256=.*stored 3 bytes with SHA-256=/);
    expect(result.badName.kind).toBe("store");
    expect(result.badName.message).toMatch(/must not contain dots/);
  });

  it("keeps version 0 and the newest policy versions' weights, and drops the rest as versions are published", async () => {
    const names = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        for (let version = 0; version <= RETAINED_POLICY_VERSIONS + 3; version++) {
          yield* publishPolicy(version, new Uint8Array([version]));
        }
        return (yield* listBlobs()).map((info) => info.name);
      }),
    );
    const newest = RETAINED_POLICY_VERSIONS + 3;
    const kept = [
      0,
      ...Array.from({ length: RETAINED_POLICY_VERSIONS }, (_, i) => newest - RETAINED_POLICY_VERSIONS + 1 + i),
    ];
    expect(names.sort()).toEqual(kept.map(weightsBlobName).sort());
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
