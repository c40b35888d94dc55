/**
 * Versioned blobs (policy weights) in one JetStream stream of the experiment. A blob is its chunks
 * on `<root>.blobs.data.<name>` and, written last, one manifest on `<root>.blobs.meta.<name>` naming
 * the chunks' stream sequences, the size and the SHA-256. Readers fetch the manifest and then each
 * chunk by sequence with direct gets: no consumer per read, which is what made the Object Store's get
 * ~5× dearer in CPU (it also hashes in pure JS). A blob is returned bit-exact or not at all.
 */
import { createHash } from "node:crypto";
import { type JetStreamManager, type MsgRequest, StorageType, type StoredMsg } from "@nats-io/jetstream";
import { Data, Effect } from "effect";
import { Nats } from "./connection.ts";
import { Experiment } from "./experiment.ts";
import { upsertStream } from "./streams.ts";
import { validateToken } from "./subjects.ts";

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
  /** `SHA-256=<base64url>` of the whole blob. */
  readonly digest: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** The manifest stored on `meta.<name>`. */
interface Manifest extends BlobInfo {
  /** Stream sequences of the chunks, in order. */
  readonly sequences: readonly number[];
}

/** The name under which policy weights of `version` are stored. */
export const weightsBlobName = (version: number): string => `policy-v${version}`;

/** Chunks stay well under NATS' default 1 MiB max_payload; a server with a smaller one gets smaller chunks. */
const MAX_CHUNK_BYTES = 512 * 1024;

const digestOf = (bytes: Uint8Array): string => `SHA-256=${createHash("sha256").update(bytes).digest("base64url")}`;

const storeError = (name: string, doing: string) => (error: unknown) =>
  new BlobError({ name, kind: "store", reason: `${doing}: ${error instanceof Error ? error.message : String(error)}` });

/** The blob stream of each experiment, set up once per connection (every actor may be the first). */
const ready = new WeakMap<JetStreamManager, Map<string, Promise<void>>>();

/**
 * The experiment's blob stream, set up on first use: its manager and name. The launcher sets it up
 * before any actor starts, so readers without the right to create streams find it there.
 */
export const ensureBlobStream = Effect.gen(function* () {
  const { manager, replicas } = yield* Nats;
  const { subjects } = yield* Experiment;
  const stream = subjects.weightsStream;
  const byStream = ready.get(manager) ?? new Map<string, Promise<void>>();
  ready.set(manager, byStream);
  let setUp = byStream.get(stream);
  if (!setUp) {
    setUp = upsertStream(manager, {
      name: stream,
      subjects: [`${subjects.blobs}.>`],
      storage: StorageType.File,
      allow_direct: true,
      num_replicas: replicas,
    }).catch((error: unknown) => {
      byStream.delete(stream); // the next call tries again
      throw error;
    });
    byStream.set(stream, setUp);
  }
  yield* Effect.tryPromise({ try: () => setUp, catch: storeError(stream, "setting up the blob stream") });
  return { manager, stream };
});

/** The stream and subjects of blob `name`; a name that is not a single token fails before any I/O. */
const openBlob = (name: string) =>
  Effect.gen(function* () {
    const blobName = yield* Effect.try({
      try: () => validateToken("blob name", name),
      catch: storeError(name, "name"),
    });
    const { subjects } = yield* Experiment;
    const { manager, stream } = yield* ensureBlobStream;
    return {
      manager,
      stream,
      meta: `${subjects.blobs}.meta.${blobName}`,
      data: `${subjects.blobs}.data.${blobName}`,
    };
  });

/**
 * A stored message: a direct get (any replica answers, cheapest), confirmed by the stream's leader
 * when it finds nothing or another subject — on nats-server < 2.9.17 a replica that has just
 * restarted answers direct gets before it has caught up (nats-server#4171).
 */
const getStored = async (
  manager: JetStreamManager,
  stream: string,
  query: MsgRequest,
  subject: string,
): Promise<StoredMsg | null> => {
  const stored = await manager.direct.getMessage(stream, query);
  if (stored !== null && stored.subject === subject) return stored;
  const confirmed = await manager.streams.getMessage(stream, query);
  return confirmed !== null && confirmed.subject === subject ? confirmed : null;
};

const readManifest = (manager: JetStreamManager, stream: string, subject: string, name: string) =>
  Effect.tryPromise({
    try: () => getStored(manager, stream, { last_by_subj: subject }, subject),
    catch: storeError(name, "reading its manifest"),
  }).pipe(Effect.map((stored) => (stored === null ? undefined : (stored.json() as Manifest))));

const isNoMessage = (error: unknown) => /no message found/i.test(String(error));

/**
 * The chunk sequences a stored manifest names: chunks are stored before their manifest, so only
 * sequences below its own count (none when it does not parse: then the manifest alone goes).
 */
const namedChunks = (stored: StoredMsg): readonly number[] => {
  try {
    const { sequences } = stored.json() as Partial<Manifest>;
    const named = Array.isArray(sequences) ? sequences : [];
    return named.filter((seq) => Number.isSafeInteger(seq) && seq > 0 && seq < stored.seq);
  } catch {
    return [];
  }
};

/**
 * Removes a blob's messages except the blob `keep` (every one when it is not given): each manifest
 * with the chunks it names, then any chunk no manifest names (a writer killed before its manifest).
 *
 * Message by message, never a filtered purge: on nats-server < 2.9.18 a node that restarts replays a
 * filtered purge as "remove everything up to the purge" (nats-server#4196), which lost retained
 * weights — version 0 included — in the chaos suite. Deletes replay exactly.
 */
const removeStored = async (
  manager: JetStreamManager,
  stream: string,
  subjects: { readonly meta: string; readonly data: string },
  keep?: { readonly manifest: number; readonly chunks: readonly number[] },
): Promise<void> => {
  const remove = (seq: number) =>
    manager.streams.deleteMessage(stream, seq, false).catch((error: unknown) => {
      if (!isNoMessage(error)) throw error; // already gone: removed by a writer before us
    });
  // Oldest first by `next_by_subj`; each removal makes the next call find the next one. The kept
  // blob was written last, so everything of this name older than it goes.
  const removeBelow = async (subject: string, below: number, named: (stored: StoredMsg) => readonly number[]) => {
    for (let from = 1; ; ) {
      const stored = await manager.direct.getMessage(stream, { next_by_subj: subject, seq: from });
      if (stored === null || stored.seq >= below) return;
      await Promise.all([stored.seq, ...named(stored)].map(remove));
      from = stored.seq + 1;
    }
  };
  await removeBelow(subjects.meta, keep?.manifest ?? Infinity, namedChunks);
  // Chunks no manifest named are rare: counting the subject's messages avoids fetching chunks to find none.
  const info = await manager.streams.info(stream, { subjects_filter: subjects.data });
  const stored = info.state.subjects?.[subjects.data] ?? 0;
  if (stored > (keep?.chunks.length ?? 0)) {
    await removeBelow(subjects.data, keep ? Math.min(...keep.chunks) : Infinity, () => []);
  }
};

const toInfo = ({ name, size, chunks, digest, metadata }: Manifest): BlobInfo => ({
  name,
  size,
  chunks,
  digest,
  metadata,
});

/**
 * Writes a blob's chunks, then its manifest: from then on `getBlob` returns it. `dropOlder` then
 * removes an older blob of the same name (its manifest and chunks); callers may run it alongside
 * other work, as `publishPolicy` does, since readers already see the new blob.
 */
export const writeBlob = (
  name: string,
  bytes: Uint8Array,
  metadata: Record<string, string> = {},
): Effect.Effect<
  { readonly info: BlobInfo; readonly dropOlder: Effect.Effect<void, BlobError> },
  BlobError,
  Nats | Experiment
> =>
  Effect.gen(function* () {
    const { jetstream, maxPayload } = yield* Nats;
    const { manager, stream, meta, data } = yield* openBlob(name);
    // Chunks carry no headers; the manifest (a few hundred bytes) always fits.
    const chunkBytes = Math.min(MAX_CHUNK_BYTES, maxPayload);
    const chunks: Uint8Array[] = [];
    for (let at = 0; at < bytes.byteLength || chunks.length === 0; at += chunkBytes) {
      chunks.push(bytes.subarray(at, Math.min(bytes.byteLength, at + chunkBytes)));
    }
    // All chunks in flight at once; their acks carry the sequences the manifest records.
    const acks = yield* Effect.tryPromise({
      try: () => Promise.all(chunks.map((chunk) => jetstream.publish(data, chunk))),
      catch: storeError(name, "storing its chunks"),
    });
    const manifest: Manifest = {
      name,
      size: bytes.byteLength,
      chunks: chunks.length,
      digest: digestOf(bytes),
      metadata,
      sequences: acks.map((ack) => ack.seq),
    };
    const stored = yield* Effect.tryPromise({
      try: () => jetstream.publish(meta, JSON.stringify(manifest)),
      catch: storeError(name, "storing its manifest"),
    });
    const dropOlder = Effect.tryPromise({
      try: () => removeStored(manager, stream, { meta, data }, { manifest: stored.seq, chunks: manifest.sequences }),
      catch: storeError(name, "removing the blob it replaced"),
    });
    return { info: toInfo(manifest), dropOlder };
  });

/** Stores `bytes` under `name`, replacing an older blob of that name once the new one is complete. */
export const putBlob = (
  name: string,
  bytes: Uint8Array,
  metadata: Record<string, string> = {},
): Effect.Effect<BlobInfo, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { info, dropOlder } = yield* writeBlob(name, bytes, metadata);
    yield* dropOlder;
    return info;
  });

/** Reads the blob `name`, verified against its recorded size and SHA-256. */
export const getBlob = (name: string): Effect.Effect<Uint8Array, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager, stream, meta, data } = yield* openBlob(name);
    const manifest = yield* readManifest(manager, stream, meta, name);
    if (!manifest) return yield* new BlobError({ name, kind: "not-found", reason: "no such blob" });
    const chunks = yield* Effect.tryPromise({
      try: () => Promise.all(manifest.sequences.map((seq) => getStored(manager, stream, { seq }, data))),
      catch: storeError(name, "reading its chunks"),
    });
    const parts: Uint8Array[] = [];
    for (const chunk of chunks) {
      // A chunk gone means the blob was replaced or deleted meanwhile.
      if (chunk === null) {
        return yield* new BlobError({ name, kind: "not-found", reason: "removed while reading" });
      }
      parts.push(chunk.data);
    }
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (bytes.byteLength !== manifest.size || digestOf(bytes) !== manifest.digest) {
      return yield* new BlobError({
        name,
        kind: "corrupt",
        reason: `read ${bytes.byteLength} bytes with ${digestOf(bytes)}, stored ${manifest.size} bytes with ${manifest.digest}`,
      });
    }
    return bytes;
  });

/** Lists the blobs in the store. */
export const listBlobs = (): Effect.Effect<ReadonlyArray<BlobInfo>, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager, stream } = yield* ensureBlobStream;
    const { subjects } = yield* Experiment;
    const prefix = `${subjects.blobs}.meta.`;
    const info = yield* Effect.tryPromise({
      try: () => manager.streams.info(stream, { subjects_filter: `${prefix}>` }),
      catch: storeError("*", "listing"),
    });
    const metaSubjects = Object.keys(info.state.subjects ?? {}).sort();
    const manifests = yield* Effect.forEach(metaSubjects, (subject) =>
      readManifest(manager, stream, subject, subject.slice(prefix.length)),
    );
    return manifests.filter((m): m is Manifest => m !== undefined).map(toInfo);
  });

/** Deletes the blob `name` (no error when it is already gone). */
export const deleteBlob = (name: string): Effect.Effect<void, BlobError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager, stream, meta, data } = yield* openBlob(name);
    // A reader that still got the manifest finds a chunk gone and reports not-found.
    yield* Effect.tryPromise({
      try: () => removeStored(manager, stream, { meta, data }),
      catch: storeError(name, "deleting"),
    });
  });
