/**
 * Versioned blobs (policy weights) in the experiment's JetStream Object Store bucket. The store
 * chunks each blob and records its SHA-256; the client checks it while reading, and we check it
 * again over the assembled bytes, so a blob is either returned bit-exact or not at all.
 */
import { createHash } from "node:crypto";
import { StorageType } from "@nats-io/jetstream";
import { type ObjectStore, Objm } from "@nats-io/obj";
import { Data, Effect } from "effect";
import { Nats } from "./connection.ts";
import { Experiment } from "./experiment.ts";

export class BlobError extends Data.TaggedError("BlobError")<{
  readonly name: string;
  readonly kind: "not-found" | "corrupt" | "store";
  readonly reason: string;
}> {
  override get message(): string {
    return `blob ${this.name}: ${this.kind}: ${this.reason}`;
  }
}

export interface BlobInfo {
  readonly name: string;
  readonly size: number;
  readonly chunks: number;
  /** `SHA-256=<base64url>`, as the Object Store records it. */
  readonly digest: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The name under which policy weights of `version` are stored. */
export const weightsBlobName = (version: number): string => `policy-v${version}`;

const digestOf = (bytes: Uint8Array): string => `SHA-256=${createHash("sha256").update(bytes).digest("base64url")}`;
// The store pads base64url with '='; compare without padding.
const sameDigest = (a: string, b: string) => a.replace(/=+$/, "") === b.replace(/=+$/, "");

const openStore = (name: string) =>
  Effect.gen(function* () {
    const { jetstream } = yield* Nats;
    const { subjects } = yield* Experiment;
    return yield* Effect.tryPromise({
      // create() opens the bucket when it already exists.
      try: () => new Objm(jetstream).create(subjects.weightsBucket, { storage: StorageType.File }),
      catch: (error) =>
        new BlobError({ name, kind: "store", reason: `opening ${subjects.weightsBucket}: ${String(error)}` }),
    });
  });

const toInfo = (info: Awaited<ReturnType<ObjectStore["putBlob"]>>): BlobInfo => ({
  name: info.name,
  size: info.size,
  chunks: info.chunks,
  digest: info.digest,
  metadata: info.metadata ?? {},
});

/** Stores `bytes` under `name` (replacing an older blob of that name). */
export const putBlob = (
  name: string,
  bytes: Uint8Array,
  metadata: Record<string, string> = {},
): Effect.Effect<BlobInfo, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const store = yield* openStore(name);
    const info = yield* Effect.tryPromise({
      try: () => store.putBlob({ name, metadata }, bytes, { timeout: 30_000 }),
      catch: (error) => new BlobError({ name, kind: "store", reason: String(error) }),
    });
    return toInfo(info);
  });

/** Reads the blob `name`, verified against its recorded SHA-256. */
export const getBlob = (name: string): Effect.Effect<Uint8Array, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const store = yield* openStore(name);
    const info = yield* Effect.tryPromise({
      try: () => store.info(name),
      catch: (error) => new BlobError({ name, kind: "store", reason: String(error) }),
    });
    if (info === null || info.deleted) return yield* new BlobError({ name, kind: "not-found", reason: "no such blob" });
    const bytes = yield* Effect.tryPromise({
      try: () => store.getBlob(name),
      catch: (error) => {
        const reason = error instanceof Error ? error.message : String(error);
        return new BlobError({ name, kind: /digest|corrupt/i.test(reason) ? "corrupt" : "store", reason });
      },
    });
    if (bytes === null) return yield* new BlobError({ name, kind: "not-found", reason: "removed while reading" });
    if (bytes.byteLength !== info.size || !sameDigest(digestOf(bytes), info.digest)) {
      return yield* new BlobError({
        name,
        kind: "corrupt",
        reason: `read ${bytes.byteLength} bytes with ${digestOf(bytes)}, stored ${info.size} bytes with ${info.digest}`,
      });
    }
    return bytes;
  });

/** Lists the blobs in the bucket. */
export const listBlobs = (): Effect.Effect<ReadonlyArray<BlobInfo>, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const store = yield* openStore("*");
    const infos = yield* Effect.tryPromise({
      try: () => store.list(),
      catch: (error) => new BlobError({ name: "*", kind: "store", reason: String(error) }),
    });
    return infos.filter((info) => !info.deleted).map(toInfo);
  });

/** Deletes the blob `name` (no error when it is already gone). */
export const deleteBlob = (name: string): Effect.Effect<void, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const store = yield* openStore(name);
    yield* Effect.tryPromise({
      try: async () => {
        if ((await store.info(name)) !== null) await store.delete(name);
      },
      catch: (error) => new BlobError({ name, kind: "store", reason: String(error) }),
    });
  });
