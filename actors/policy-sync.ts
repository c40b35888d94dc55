/**
 * Following the learner's policy: the learner stores each version's weights as a blob and then
 * points the `policy` KV key at them; rollout actors and the evaluator watch that key and load
 * a newer version between batches (never in the middle of one, so every rollout has one version).
 *
 * Anyone on the server can write that key, so a pointer is followed only when it is plausible: the
 * learner writes its progress (LearnerProgress.policyVersion) before it announces a version, so a
 * pointer ahead of the learner's progress, or naming another version's weights, is forged. It is
 * refused — logged, counted, the version in use kept — and later real announcements still count.
 * So is a value that is no policy pointer at all: the key is read as any value and checked here, so
 * that a garbage write is one refusal, never a failure of the reader (a `getState` of it fails).
 */
import { Duration, Effect, Either, Option, ParseResult, Queue, Schema, type Scope } from "effect";
import {
  type BlobError,
  type Experiment,
  getBlob,
  getState,
  type Nats,
  POLICY_KEY,
  PolicyPointer,
  type StateEntry,
  type StateError,
  type StateKey,
  watchState,
  weightsBlobName,
} from "../messaging/index.ts";
import { buildPolicy, type Policy, type PolicyConfigBase } from "../models/index.ts";
import { LEARNER_PROGRESS_KEY, POLICY_ARCHITECTURE_KEY } from "./topology.ts";

/** How long a reader whose version's weights are gone waits for the newer version's announcement. */
const SUPERSEDED_WAIT = Duration.seconds(10);

export interface PolicyInUse {
  readonly policy: Policy;
  readonly version: number;
}

export interface PolicyFollower {
  /** The newest version announced so far (maybe not loaded yet). */
  readonly announced: () => PolicyPointer | undefined;
  /** Announcements refused so far (ahead of the learner's progress, or naming other weights): forged. */
  readonly refused: () => number;
  /** The policy at the newest announced version: loads it if it is newer than the one in use; waits for the first. */
  readonly current: Effect.Effect<PolicyInUse, BlobError | StateError, Nats | Experiment>;
  /** A separate policy instance at one fixed version (e.g. the initial policy, for references). */
  readonly loadVersion: (version: number) => Effect.Effect<Policy, BlobError | StateError, Nats | Experiment>;
}

/** Builds an empty policy of the published architecture (waiting for the learner to publish it). */
const buildPublishedArchitecture = Effect.gen(function* () {
  for (;;) {
    const entry = yield* getState(POLICY_ARCHITECTURE_KEY);
    if (entry) return buildPolicy(entry.value as unknown as PolicyConfigBase);
    yield* Effect.sleep("200 millis");
  }
});

/** Any value written under the pointer's key (a forgery need not be a well-formed pointer): checked by its reader. */
export const ANY_POINTER_WRITE: StateKey<unknown, unknown> = { key: POLICY_KEY.key, schema: Schema.Unknown };
const decodePointer = Schema.decodeUnknownEither(PolicyPointer);

export const followPolicy: Effect.Effect<PolicyFollower, StateError, Nats | Experiment | Scope.Scope> = Effect.gen(
  function* () {
    const updates = yield* watchState(ANY_POINTER_WRITE);
    let announced: PolicyPointer | undefined;
    let inUse: { policy: Policy; version: number } | undefined;
    let refused = 0;
    /** The learner's progress version last read: re-read only when a pointer goes beyond it. */
    let learnerVersion = -1;

    const refuse = (revision: number, what: string, why: string) =>
      Effect.gen(function* () {
        refused += 1;
        // A flood of forgeries logs ~10 lines, then every power of ten.
        if (refused <= 10 || Number.isInteger(Math.log10(refused)))
          yield* Effect.logWarning(
            `refused policy pointer revision ${revision} ${what}: ${why}; ` +
              `keeping version ${inUse?.version ?? "none"} (${refused} refused so far)`,
          );
        return false;
      });

    /** Whether the learner could have written `entry` (see the header). */
    const plausible = (entry: StateEntry<PolicyPointer>) =>
      Effect.gen(function* () {
        const { version, weights } = entry.value;
        const refuseIt = (why: string) => refuse(entry.revision, `announcing version ${version}`, why);
        if (weights !== weightsBlobName(version))
          return yield* refuseIt(`it names weights ${JSON.stringify(weights.slice(0, 80))}`);
        if (version > learnerVersion) {
          // The progress key is anyone's to write too: unreadable progress vouches for nothing.
          const progress = yield* getState(LEARNER_PROGRESS_KEY).pipe(Effect.either);
          if (Either.isLeft(progress))
            return yield* refuseIt(`the learner's progress is unreadable (${progress.left.reason})`);
          learnerVersion = progress.right?.value.policyVersion ?? -1;
        }
        if (version > learnerVersion) return yield* refuseIt(`the learner's progress is at version ${learnerVersion}`);
        return true;
      });

    /** Takes `entry` as the newest announcement if it is a pointer, newer and plausible. */
    const consider = (entry: StateEntry<unknown>) =>
      Effect.gen(function* () {
        const pointer = decodePointer(entry.value);
        if (Either.isLeft(pointer)) {
          const why = ParseResult.TreeFormatter.formatErrorSync(pointer.left).slice(0, 300);
          return yield* refuse(entry.revision, "(not a policy pointer)", why);
        }
        if (announced && pointer.right.version <= announced.version) return;
        if (yield* plausible({ value: pointer.right, revision: entry.revision })) announced = pointer.right;
      });

    const drainUpdates = Effect.gen(function* () {
      const pending = yield* Queue.takeAll(updates);
      for (const entry of pending) yield* consider(entry);
    });

    const load = (policy: Policy, pointer: PolicyPointer) =>
      Effect.gen(function* () {
        const bytes = yield* getBlob(pointer.weights);
        yield* Effect.promise(() => policy.importWeights(bytes, pointer.weights));
      });

    /** Waits until a version at or above `version` is announced: the newest announcement. */
    const announcedAtLeast = (version: number) =>
      Effect.gen(function* () {
        yield* drainUpdates;
        for (;;) {
          if (announced !== undefined && announced.version >= version) return announced;
          yield* consider(yield* Queue.take(updates));
          yield* drainUpdates;
        }
      });

    const current: PolicyFollower["current"] = Effect.gen(function* () {
      let target = yield* announcedAtLeast(0);
      if (!inUse) inUse = { policy: yield* buildPublishedArchitecture, version: -1 };
      for (; target.version > inUse.version; target = announced ?? target) {
        // The learner keeps only the newest few versions' weights: one superseded while this reader
        // lagged is gone, and a newer one has been announced (or is about to be) — load that instead.
        const loaded = yield* load(inUse.policy, target).pipe(
          Effect.as(true),
          Effect.catchIf(
            (error) => error._tag === "BlobError" && error.kind === "not-found",
            (error) =>
              Effect.gen(function* () {
                yield* drainUpdates;
                if ((announced?.version ?? -1) > target.version) return false;
                const next = yield* Queue.take(updates).pipe(Effect.timeout(SUPERSEDED_WAIT), Effect.option);
                if (Option.isNone(next)) return yield* error;
                yield* consider(next.value);
                return false;
              }),
          ),
        );
        if (!loaded) continue;
        inUse.version = target.version;
        yield* Effect.logInfo(`loaded policy version ${target.version}`);
      }
      return { policy: inUse.policy, version: inUse.version };
    });

    const loadVersion: PolicyFollower["loadVersion"] = (version) =>
      Effect.gen(function* () {
        // Wait until the learner has announced that version (its weights are stored before the pointer).
        yield* announcedAtLeast(version);
        const policy = yield* buildPublishedArchitecture;
        yield* load(policy, { version, weights: weightsBlobName(version), publishedAt: 0 });
        return policy;
      });

    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        inUse?.policy.dispose();
      }),
    );
    return { announced: () => announced, refused: () => refused, current, loadVersion };
  },
);
