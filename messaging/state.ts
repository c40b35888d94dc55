/**
 * Small shared state in the experiment's KV bucket: JSON values checked by a schema on read. The
 * one the design needs is the current policy (version + weights blob), which the learner sets after
 * storing the weights and rollout actors watch.
 *
 * A KV watch replays the latest entry when it starts and again after it re-creates itself (server
 * restart), with isUpdate=true; `watchState` compares revisions so each revision is reported once.
 */
import { type KV, Kvm } from "@nats-io/kv";
import { Data, Duration, Effect, Either, ParseResult, Queue, Schedule, Schema, type Scope } from "effect";
import { type BlobError, type BlobInfo, deleteBlob, weightsBlobName, writeBlob } from "./blobs.ts";
import { isLeaderless, Nats } from "./connection.ts";
import { Experiment } from "./experiment.ts";
import { boundString } from "./log.ts";
import { nestedDeeperThan } from "./wire.ts";

export class StateError extends Data.TaggedError("StateError")<{
  readonly key: string;
  readonly reason: string;
  /** Set when the value was read but does not decode (anyone may write the key): its revision. */
  readonly badValue?: { readonly revision: number };
}> {
  override get message(): string {
    return `state ${this.key}: ${this.reason}`;
  }
}

export interface StateEntry<A> {
  readonly value: A;
  readonly revision: number;
}

/** A named KV key whose value has a schema. */
export interface StateKey<A, I> {
  readonly key: string;
  readonly schema: Schema.Schema<A, I>;
}

/** Declares a KV key and the schema of its value (JSON: the schema's encoded form is what is stored). */
export const defineStateKey = <A, I>(definition: StateKey<A, I>): StateKey<A, I> => definition;

/** The current policy: which version rollout actors should use, and where its weights are. */
export const PolicyPointer = Schema.Struct({
  version: Schema.Int.pipe(Schema.nonNegative()),
  /** Object Store blob holding the weights (`policy-v<version>`). */
  weights: Schema.String,
  publishedAt: Schema.Number,
});
export type PolicyPointer = typeof PolicyPointer.Type;

export const POLICY_KEY = defineStateKey({ key: "policy", schema: PolicyPointer });

/**
 * A call on the state bucket. A timeout is retried for up to 30 s: on a cluster, the bucket's stream
 * answers nothing while it elects a new leader after a node is lost (a few seconds), and a role
 * failing on that would be restarted (re-publishing, re-loading) for nothing.
 */
const stateCall = <A>(key: string, doing: string, call: () => Promise<A>) =>
  Effect.tryPromise({
    try: call,
    catch: (error) => ({ error, state: new StateError({ key, reason: `${doing}${String(error)}` }) }),
  }).pipe(
    Effect.retry({
      schedule: Schedule.exponential(Duration.millis(100)).pipe(
        Schedule.either(Schedule.spaced(Duration.seconds(2))),
        Schedule.upTo(Duration.seconds(30)),
      ),
      while: ({ error }) => isLeaderless(error),
    }),
    Effect.mapError(({ state }) => state),
  );

/**
 * The state bucket, its handle kept per connection: opening it is a stream-info request
 * (create-if-missing), which every heartbeat's status record paid again. A failed call forgets the
 * handle, so the next one opens (and re-creates) the bucket as before. On a cluster its reads go to
 * the stream's leader, not to any replica: on nats-server < 2.9.17 a replica that has just restarted
 * answers direct gets before it has caught up (nats-server#4171), and a stale pointer or learner
 * progress misleads a role that is resuming.
 */
const openedBuckets = new WeakMap<object, Map<string, KV>>();

/** The experiment's KV bucket (created when missing); `key` names the caller in errors. */
export const openStateBucket = (key: string) =>
  Effect.gen(function* () {
    const { jetstream, replicas } = yield* Nats;
    const { subjects } = yield* Experiment;
    const opened = openedBuckets.get(jetstream) ?? new Map<string, KV>();
    openedBuckets.set(jetstream, opened);
    const cached = opened.get(subjects.stateBucket);
    if (cached) return cached;
    const kv = yield* stateCall(key, `opening ${subjects.stateBucket}: `, () =>
      new Kvm(jetstream).create(subjects.stateBucket, { history: 5, replicas, allow_direct: replicas === 1 }),
    );
    opened.set(subjects.stateBucket, kv);
    return kv;
  });

/** Forgets the handle `openStateBucket` keeps, after a call through it failed. */
const forgetBucket = Effect.gen(function* () {
  const { jetstream } = yield* Nats;
  const { subjects } = yield* Experiment;
  openedBuckets.get(jetstream)?.delete(subjects.stateBucket);
});

const decodeValue = <A, I>(state: StateKey<A, I>, bytes: Uint8Array): Either.Either<A, StateError> => {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    return Either.left(new StateError({ key: state.key, reason: `not JSON: ${boundString(String(error), 300)}` }));
  }
  // The schema's error message quotes the value: one nested thousands deep overflowed the stack.
  if (nestedDeeperThan(json)) return Either.left(new StateError({ key: state.key, reason: "nested too deep" }));
  return Schema.decodeUnknownEither(state.schema, { errors: "all" })(json).pipe(
    Either.mapLeft(
      // A value is anyone's to write: its quoted parts stay bounded in the log line.
      (error) =>
        new StateError({
          key: state.key,
          reason: boundString(ParseResult.TreeFormatter.formatErrorSync(error), 1_000),
        }),
    ),
  );
};

/** Writes a value; returns its revision. */
export const putState = <A, I>(state: StateKey<A, I>, value: A): Effect.Effect<number, StateError, Nats | Experiment> =>
  Effect.gen(function* () {
    const kv = yield* openStateBucket(state.key);
    const json = JSON.stringify(Schema.encodeSync(state.schema)(value));
    return yield* stateCall(state.key, "", () => kv.put(state.key, json)).pipe(Effect.tapError(() => forgetBucket));
  });

/** Reads the current value, or undefined when the key was never written (or was deleted). */
export const getState = <A, I>(
  state: StateKey<A, I>,
): Effect.Effect<StateEntry<A> | undefined, StateError, Nats | Experiment> =>
  Effect.gen(function* () {
    const kv = yield* openStateBucket(state.key);
    const entry = yield* stateCall(state.key, "", () => kv.get(state.key)).pipe(Effect.tapError(() => forgetBucket));
    if (entry === null || entry.operation !== "PUT") return undefined;
    const value = yield* decodeValue(state, entry.value).pipe(
      Either.mapLeft((error) => new StateError({ ...error, badValue: { revision: entry.revision } })),
    );
    return { value, revision: entry.revision };
  });

/**
 * Every key under `prefix.` with its current value, for keys written by many actors (one each).
 * Opens the bucket without creating it: an experiment that never ran has no keys. Values that do not
 * decode are logged and skipped.
 */
export const listState = <A, I>(
  prefix: string,
  schema: Schema.Schema<A, I>,
): Effect.Effect<readonly (StateEntry<A> & { readonly key: string })[], StateError, Nats | Experiment> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { subjects } = yield* Experiment;
    const failed = (error: unknown) => new StateError({ key: `${prefix}.>`, reason: String(error) });
    const kv = yield* Effect.tryPromise({
      try: () => new Kvm(nats.jetstream).open(subjects.stateBucket),
      catch: failed,
    });
    const keys = yield* Effect.tryPromise({
      try: async () => {
        const found: string[] = [];
        try {
          for await (const key of await kv.keys(`${prefix}.>`)) found.push(key);
        } catch (error) {
          if (!/stream not found/i.test(String(error))) throw error;
        }
        return found;
      },
      catch: failed,
    });
    const entries = yield* Effect.forEach(
      keys,
      (key) =>
        Effect.tryPromise({ try: () => kv.get(key), catch: failed }).pipe(
          Effect.map((entry) => {
            if (entry === null || entry.operation !== "PUT") return [];
            const value = decodeValue({ key, schema }, entry.value);
            if (Either.isLeft(value)) {
              nats.logger.warn({ key, revision: entry.revision, reason: value.left.reason }, "bad state value");
              return [];
            }
            return [{ key, value: value.right, revision: entry.revision }];
          }),
        ),
      { concurrency: 16 },
    );
    return entries.flat();
  });

/**
 * Watches a key: the current value first (when there is one), then every new revision, each once
 * and in order. Bad values are logged and skipped. Stops when the scope closes.
 */
export const watchState = <A, I>(
  state: StateKey<A, I>,
): Effect.Effect<Queue.Dequeue<StateEntry<A>>, StateError, Nats | Experiment | Scope.Scope> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const kv: KV = yield* openStateBucket(state.key);
    const updates = yield* Effect.acquireRelease(Queue.unbounded<StateEntry<A>>(), Queue.shutdown);
    const watcher = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => kv.watch({ key: state.key }),
        catch: (error) => new StateError({ key: state.key, reason: String(error) }),
      }),
      (iterator) => Effect.sync(() => iterator.stop()),
    );
    let lastRevision = 0;
    // A plain loop, not Stream.fromAsyncIterable: stop() in the finalizer ends it without waiting.
    void (async () => {
      for await (const entry of watcher) {
        if (entry.revision <= lastRevision || entry.operation !== "PUT") continue;
        lastRevision = entry.revision;
        const value = decodeValue(state, entry.value);
        if (Either.isLeft(value)) {
          nats.logger.warn({ key: state.key, revision: entry.revision, reason: value.left.reason }, "bad state value");
          continue;
        }
        Queue.unsafeOffer(updates, { value: value.right, revision: entry.revision });
      }
    })();
    return updates;
  });

/**
 * Versions whose weights stay stored besides version 0 (the initial policy: references, the KL
 * reference): a reader that saw an older pointer finishes its load while a few newer ones appear.
 */
export const RETAINED_POLICY_VERSIONS = 4;

/**
 * Publishes a new policy: stores its weights first, then points the policy key at them, so a
 * watcher never sees a version whose weights are not there yet. Then drops the weights of the
 * version `RETAINED_POLICY_VERSIONS` back (never version 0), so storage stays bounded over a run.
 */
export const publishPolicy = (
  version: number,
  weights: Uint8Array,
): Effect.Effect<{ readonly blob: BlobInfo; readonly revision: number }, BlobError | StateError, Nats | Experiment> =>
  Effect.gen(function* () {
    const name = weightsBlobName(version);
    const { info: blob, dropOlder } = yield* writeBlob(name, weights, { version: String(version) });
    // Once the weights are readable, the pointer moves while older copies go: a republished
    // version's earlier blob, and the version RETAINED_POLICY_VERSIONS behind.
    const expired = version - RETAINED_POLICY_VERSIONS;
    const [revision] = yield* Effect.all(
      [
        putState(POLICY_KEY, { version, weights: name, publishedAt: Date.now() }),
        dropOlder,
        expired > 0 ? deleteBlob(weightsBlobName(expired)) : Effect.void,
      ],
      { concurrency: "unbounded" },
    );
    return { blob, revision };
  });
