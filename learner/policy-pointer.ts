/**
 * The learner owns the policy pointer (KV `policy`): it is the only writer. Without authentication
 * anyone on the server can write it too, and forged announcements were followed silently (weights
 * announced as version 999 were loaded; the initial weights announced as version 5000 pinned every
 * rollout actor to them while the learner trained on). So:
 *
 * - the learner writes its progress (LearnerProgress.policyVersion) before the pointer announces a
 *   version, and followers refuse a pointer ahead of that progress (actors/policy-sync.ts);
 * - the learner watches the key and stops the run (RoleFatal) when a revision appears that it did
 *   not write;
 * - a learner that restarts announces its weights under a version newer than any the followers
 *   may hold (they ignore versions they have passed), and refuses to start over a pointer ahead of
 *   everything it announced.
 */
import { Effect, Queue, type Scope } from "effect";
import { ANY_POINTER_WRITE, RoleFatal } from "../actors/index.ts";
import {
  type BlobError,
  type Experiment,
  type Nats,
  type PolicyPointer,
  publishPolicy,
  type StateEntry,
  type StateError,
  watchState,
} from "../messaging/index.ts";

/** How a (re)starting learner announces its weights. */
export type StartingAnnouncement =
  | { readonly _tag: "Forged"; readonly reason: string }
  /** The pointer already announces this version: nothing to publish. */
  | { readonly _tag: "Current"; readonly version: number }
  | { readonly _tag: "Publish"; readonly version: number };

/**
 * `checkpointVersion`: the version in the learner's checkpoint (0 when it has none). `pointer`: the
 * policy pointer now. `announcedVersion`: LearnerProgress.policyVersion in KV, written before every
 * pointer, so a pointer beyond it (and beyond the checkpoint) was not written by a learner.
 */
export function startingAnnouncement(input: {
  readonly checkpointVersion: number;
  readonly pointer: StateEntry<PolicyPointer> | undefined;
  readonly announcedVersion: number | undefined;
}): StartingAnnouncement {
  const { checkpointVersion, pointer } = input;
  const announced = Math.max(checkpointVersion, input.announcedVersion ?? 0);
  if (pointer && pointer.value.version > announced)
    return {
      _tag: "Forged",
      reason:
        `the policy pointer (revision ${pointer.revision}) announces version ${pointer.value.version}, ` +
        `but the learner never announced a version above ${announced}: it was written by someone else`,
    };
  // Followers ignore versions at or below the one they hold: continue after the newest announced.
  const newest = Math.max(announced, pointer?.value.version ?? 0);
  if (newest > checkpointVersion) return { _tag: "Publish", version: newest + 1 };
  return pointer?.value.version === checkpointVersion
    ? { _tag: "Current", version: checkpointVersion }
    : { _tag: "Publish", version: checkpointVersion };
}

const describeWrite = (value: unknown): string => {
  const version = (value as { version?: unknown } | null)?.version;
  return typeof version === "number" ? `announces version ${version}` : "is not a policy pointer";
};

export interface OwnedPolicyPointer {
  /** Publishes a version's weights and points at them (refusing once the pointer was forged). */
  readonly publish: (
    version: number,
    weights: Uint8Array,
  ) => Effect.Effect<void, RoleFatal | BlobError | StateError, Nats | Experiment>;
  /** Fails with RoleFatal once a revision this learner did not write has appeared. */
  readonly check: Effect.Effect<void, RoleFatal>;
}

/**
 * Watches the policy pointer for writes by anyone else until the scope closes. `acceptedRevision`:
 * the pointer's revision found at start (a pointer, or garbage the learner will write over), taken
 * as the learner's own.
 */
export const ownPolicyPointer = (
  acceptedRevision: number | undefined,
): Effect.Effect<OwnedPolicyPointer, StateError, Nats | Experiment | Scope.Scope> =>
  Effect.gen(function* () {
    const written = new Set<number>(acceptedRevision === undefined ? [] : [acceptedRevision]);
    let forged: RoleFatal | undefined;
    // A watch may report the learner's own write before its put returns the revision: one at a time.
    const lock = yield* Effect.makeSemaphore(1);
    const check = Effect.suspend(() => (forged ? Effect.fail(forged) : Effect.void));
    const updates = yield* watchState(ANY_POINTER_WRITE);
    yield* Effect.forkScoped(
      Effect.forever(
        Queue.take(updates).pipe(
          Effect.flatMap((entry) =>
            lock.withPermits(1)(
              Effect.suspend(() => {
                if (written.has(entry.revision) || forged) return Effect.void;
                forged = new RoleFatal({
                  reason:
                    `policy pointer revision ${entry.revision} was not written by this learner (it ` +
                    `${describeWrite(entry.value)}); the learner is the only writer of the policy pointer, ` +
                    "so the weights announced to rollout actors can no longer be trusted: stopping the run",
                });
                return Effect.logError(forged.reason);
              }),
            ),
          ),
        ),
      ),
    );
    const publish: OwnedPolicyPointer["publish"] = (version, weights) =>
      lock.withPermits(1)(
        Effect.gen(function* () {
          yield* check;
          const { revision } = yield* publishPolicy(version, weights);
          written.add(revision);
        }),
      );
    return { publish, check };
  });
