import { join } from "node:path";
import { Effect, Fiber } from "effect";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { POLICY_KEY, publishPolicy, putState, weightsBlobName } from "../messaging/index.ts";
import { POLICY_ARCHITECTURE_KEY } from "../messaging/pipeline-state.ts";
import { initBackend, loadCheckpoint } from "../models/index.ts";
import { freshExperiment, runWith } from "../test/messaging/fixtures.ts";
import { followPolicy } from "./policy-sync.ts";

const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

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
        yield* publishPolicy(1, first);
        const follower = yield* followPolicy;
        const loadedFirst = (yield* follower.current).version;
        // Version 2 is announced but its weights are gone (pruned while this reader lagged)…
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
});
