import { join } from "node:path";
import { Effect, Fiber } from "effect";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { POLICY_KEY, publishPolicy, putState, weightsBlobName } from "../messaging/index.ts";
import { initBackend, loadCheckpoint } from "../models/index.ts";
import { freshExperiment, runWith } from "../test/messaging/fixtures.ts";
import { followPolicy, type PolicyFollower, type PolicyInUse } from "./policy-sync.ts";
import {
  LEARNER_PROGRESS_KEY,
  type LearnerProgress,
  NO_LEARNER_PROGRESS,
  POLICY_ARCHITECTURE_KEY,
} from "./topology.ts";

const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

/** The learner's progress at `policyVersion` (written before the pointer announces that version). */
const progressAt = (policyVersion: number): LearnerProgress => ({
  ...NO_LEARNER_PROGRESS,
  step: policyVersion,
  policyVersion,
});

/** What the learner does to announce a version: its progress first, then the weights and the pointer. */
const announce = (version: number, weights: Uint8Array) =>
  putState(LEARNER_PROGRESS_KEY, progressAt(version)).pipe(Effect.zipRight(publishPolicy(version, weights)));

/**
 * Asks the follower for its policy until `done` holds: a KV watch delivers the pointer some time
 * after the write, and a loaded machine can take far longer than any fixed sleep.
 */
const currentOnce = (follower: PolicyFollower, done: (inUse: PolicyInUse) => boolean) =>
  Effect.gen(function* () {
    for (;;) {
      const inUse = yield* follower.current;
      if (done(inUse)) return inUse;
      yield* Effect.sleep("20 millis");
    }
  }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the follower never got there") }));

describe("following the learner's policy", () => {
  it("loads the newer version when the announced one's weights were pruned before it could load them", async () => {
    const { policy } = await loadCheckpoint(TINY_POLICY);
    const first = await policy.exportWeights();
    for (const v of policy.trainableVariables) v.assign(v.add(0.5));
    const third = await policy.exportWeights();
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
        yield* announce(1, first);
        const follower = yield* followPolicy;
        const loadedFirst = (yield* follower.current).version;
        // Version 2 is announced but its weights are gone (pruned while this reader lagged)…
        yield* putState(LEARNER_PROGRESS_KEY, progressAt(3));
        yield* putState(POLICY_KEY, { version: 2, weights: weightsBlobName(2), publishedAt: Date.now() });
        yield* Effect.sleep("300 millis");
        const loading = yield* Effect.fork(follower.current);
        // …and version 3 is announced only after the reader found that out.
        yield* Effect.sleep("300 millis");
        yield* publishPolicy(3, third);
        const { policy: following, version } = yield* Fiber.join(loading);
        return { loadedFirst, version, weights: yield* Effect.promise(() => following.exportWeights()) };
      }),
    );
    expect(result.loadedFirst).toBe(1);
    expect(result.version).toBe(3);
    expect(Buffer.compare(Buffer.from(result.weights), Buffer.from(third))).toBe(0);
    policy.dispose();
  });

  it("refuses forged pointers (ahead of the learner's progress, or naming other weights) and still follows the real ones", async () => {
    const { policy } = await loadCheckpoint(TINY_POLICY);
    const initial = await policy.exportWeights();
    for (const v of policy.trainableVariables) v.assign(v.add(0.25));
    const second = await policy.exportWeights();
    for (const v of policy.trainableVariables) v.assign(v.add(0.25));
    const third = await policy.exportWeights();
    const result = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
        yield* announce(1, initial);
        const follower = yield* followPolicy;
        const versions = [(yield* follower.current).version];
        // Far ahead of the learner; then the very next version with weights of its own, before the learner got there.
        yield* putState(POLICY_KEY, { version: 999, weights: weightsBlobName(999), publishedAt: Date.now() });
        versions.push((yield* currentOnce(follower, () => follower.refused() >= 1)).version);
        yield* publishPolicy(2, initial);
        versions.push((yield* currentOnce(follower, () => follower.refused() >= 2)).version);
        const refusedBeforeReal = follower.refused();
        // The real version 2 still counts: progress first, then the pointer.
        yield* announce(2, second);
        const real = yield* currentOnce(follower, ({ version }) => version >= 2);
        versions.push(real.version);
        const realWeights = yield* Effect.promise(() => real.policy.exportWeights());
        // Written between the learner's progress and its pointer, naming another version's weights.
        yield* putState(LEARNER_PROGRESS_KEY, progressAt(3));
        yield* putState(POLICY_KEY, { version: 3, weights: weightsBlobName(0), publishedAt: Date.now() });
        versions.push((yield* currentOnce(follower, () => follower.refused() >= 3)).version);
        yield* publishPolicy(3, third);
        versions.push((yield* currentOnce(follower, ({ version }) => version >= 3)).version);
        return { versions, refusedBeforeReal, refused: follower.refused(), realWeights };
      }),
    );
    expect(result.versions).toEqual([1, 1, 1, 2, 2, 3]);
    expect(result.refusedBeforeReal).toBe(2);
    expect(result.refused).toBe(3);
    expect(Buffer.compare(Buffer.from(result.realWeights), Buffer.from(second))).toBe(0);
    policy.dispose();
  });
});
