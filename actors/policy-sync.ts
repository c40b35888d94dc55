/**
 * Following the learner's policy: the learner stores each version's weights as a blob and then
 * points the `policy` KV key at them; rollout actors and the evaluator watch that key and load
 * a newer version between batches (never in the middle of one, so every rollout has one version).
 *
 * Anyone on the server can write that key, so a pointer is followed only when it is plausible: the
 * learner writes its progress (LearnerProgress.policyVersion) before it announces a version, so a
 * pointer ahead of the learner's progress, or naming another version's weights, is forged. It is
 * refused — logged, counted, the version in use kept — and later real announcements still count.
 */
import { Duration, Effect, Option, Queue, type Scope } from "effect";
import {
  type BlobError,
  type Experiment,
  getBlob,
  getState,
  type Nats,
  POLICY_KEY,
  type PolicyPointer,
  type StateEntry,
  type StateError,
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

export const followPolicy: Effect.Effect<PolicyFollower, StateError, Nats | Experiment | Scope.Scope> = Effect.gen(
  function* () {
    const updates = yield* watchState(POLICY_KEY);
    let announced: PolicyPointer | undefined;
    let inUse: { policy: Policy; version: number } | undefined;
    let refused = 0;
    /** The learner's progress version last read: re-read only when a pointer goes beyond it. */
    let learnerVersion = -1;

    const refuse = (entry: StateEntry<PolicyPointer>, why: string) =>
      Effect.gen(function* () {
        refused += 1;
        yield* Effect.logWarning(
          `refused policy pointer revision ${entry.revision} announcing version ${entry.value.version}: ${why}; ` +
            `keeping version ${inUse?.version ?? "none"} (${refused} refused so far)`,
        );
        return false;
      });

    /** Whether the learner could have written `entry` (see the header). */
    const plausible = (entry: StateEntry<PolicyPointer>) =>
      Effect.gen(function* () {
        const { version, weights } = entry.value;
        if (weights !== weightsBlobName(version))
          return yield* refuse(entry, `it names weights ${JSON.stringify(weights.slice(0, 80))}`);
        if (version > learnerVersion)
          learnerVersion = (yield* getState(LEARNER_PROGRESS_KEY))?.value.policyVersion ?? -1;
        if (version > learnerVersion)
          return yield* refuse(entry, `the learner's progress is at version ${learnerVersion}`);
        return true;
      });

    /** Takes `entry` as the newest announcement if it is newer and plausible. */
    const consider = (entry: StateEntry<PolicyPointer>) =>
      Effect.gen(function* () {
        if (announced && entry.value.version <= announced.version) return;
        if (yield* plausible(entry)) announced = entry.value;
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

    const current: PolicyFollower["current"] = Effect.gen(function* () {
      yield* drainUpdates;
      while (!announced) {
        yield* consider(yield* Queue.take(updates));
        yield* drainUpdates;
      }
      if (!inUse) inUse = { policy: yield* buildPublishedArchitecture, version: -1 };
      while (announced.version > inUse.version) {
        const target = announced;
        // The learner keeps only the newest few versions' weights: one superseded while this reader
        // lagged is gone, and a newer one has been announced (or is about to be) — load that instead.
        const loaded = yield* load(inUse.policy, target).pipe(
          Effect.as(true),
          Effect.catchIf(
            (error) => error._tag === "BlobError" && error.kind === "not-found",
            (error) =>
              Effect.gen(function* () {
                yield* drainUpdates;
                if (announced!.version > target.version) return false;
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
        // Wait until the learner has published that version (its weights are stored before the pointer).
        while (((yield* getState(POLICY_KEY))?.value.version ?? -1) < version) yield* Effect.sleep("200 millis");
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
