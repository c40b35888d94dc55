/**
 * The learner role against a real nats-server, in this process (runActor), from the tiny fixture
 * policy: dropped groups settled at once, the stall watchdog, invalid groups dead-lettered alone,
 * and the policy pointer's single writer.
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cause, Deferred, Effect, Either, Exit, Fiber, Option, Queue, type Scope } from "effect";
import { describe, expect, inject, it } from "vitest";
import { ActorGaveUp, ANY_POINTER_WRITE, runActor } from "../actors/index.ts";
import {
  LEARNER_PROGRESS_KEY,
  type LearnerProgress,
  NO_LEARNER_PROGRESS,
  PIPELINE_QUEUES,
  SCORED_QUEUE,
  type ScoredGroup,
} from "../actors/topology.ts";
import { decodeConfig, type ExperimentConfig } from "../configs/index.ts";
import {
  actorStatusKey,
  deadLetterCount,
  Experiment,
  ensureWorkQueues,
  getState,
  MetricsEventMessage,
  type Nats,
  POLICY_KEY,
  pendingWork,
  publishWorkAll,
  putState,
  readDeadLetters,
  subscribe,
  weightsBlobName,
} from "../messaging/index.ts";
import { freshExperiment, runWith } from "../test/messaging/fixtures.ts";
import type { GroupLimits } from "./group-validation.ts";
import { judgeGroup } from "./learner.ts";
import { learnerRole } from "./learner-actor.ts";
import { type LineageRecord, lineageFile } from "./lineage.ts";

const natsUrl = inject("natsUrl");
const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");
/** The tiny policy's vocabulary (test/fixtures/tiny-policy/manifest.json). */
const VOCAB = 378;

async function learnerConfig(learner: Record<string, unknown> = {}): Promise<ExperimentConfig> {
  return Either.getOrThrow(
    decodeConfig({
      experiment: freshExperiment("lrn"),
      nats: { url: natsUrl },
      env: { kind: "factworld", size: "tiny" },
      model: { init: TINY_POLICY },
      rollout: { groupSize: 2, maxNewTokens: 8 },
      learner: { groupsPerStep: 2, totalSteps: 100, ...learner },
      actors: { evaluator: 0 },
      output: { dir: await mkdtemp(join(tmpdir(), "factrl-learner-")) },
      runtime: { heartbeatMs: 500, restart: { baseDelayMs: 10, maxDelayMs: 50 } },
    }),
  );
}

/** A scored group of two short answers the tiny policy can score, with these rewards. */
function scoredGroup(groupId: string, rewards: readonly [number, number], policyVersion = 0): ScoredGroup {
  const answer = (first: number) => ({
    tokens: Int32Array.of(first, 21, 2),
    logProbs: Float32Array.of(-1.5, -0.7, -0.2),
    text: "answer",
    finishReason: "stop" as const,
  });
  return {
    rollout: {
      group: {
        groupId,
        promptId: "p1",
        suite: "test",
        prompt: "tell me",
        meta: {},
        groupSize: 2,
        createdAt: Date.now(),
      },
      promptTokens: Int32Array.of(1, 10, 11),
      answers: [answer(20), answer(30)],
      policyVersion,
      timings: { startedAt: 0, finishedAt: 0 },
      actor: "test",
    },
    scores: rewards.map((reward) => ({ reward, components: {}, failures: [] })),
    scorer: "test",
    scoredAt: Date.now(),
  };
}

/** `scoredGroup` as decoded by CD-K: marked, with the policy's own log-probs beside the decoder's. */
function guidedGroup(groupId: string, rewards: readonly [number, number], policyVersion = 0): ScoredGroup {
  const group = scoredGroup(groupId, rewards, policyVersion);
  return {
    ...group,
    rollout: {
      ...group.rollout,
      decoding: { kind: "cd-k", alpha: 0.1, k: 2 },
      answers: group.rollout.answers.map((a) => ({ ...a, policyLogProbs: Float32Array.of(-2.5, -0.9, -0.1) })),
    },
  };
}

const publishScored = (groups: readonly ScoredGroup[], msgIdSuffix = "") =>
  publishWorkAll(
    SCORED_QUEUE,
    groups.map((body) => ({ body, msgId: body.rollout.group.groupId + msgIdSuffix })),
  );

const progress = getState(LEARNER_PROGRESS_KEY).pipe(Effect.map((entry) => entry?.value));

/** Polls `probe` until `done` holds; dies naming `what` and the last value after `timeoutMs`. */
const waitUntil = <A, E, R>(what: string, probe: Effect.Effect<A, E, R>, done: (a: A) => boolean, timeoutMs = 30_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = yield* probe;
      if (done(value)) return value;
      if (Date.now() > deadline)
        return yield* Effect.dieMessage(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
      yield* Effect.sleep("100 millis");
    }
  });

/** Runs the learner role as actor learner-1 in the background; `stop` drains it and waits for it. */
const startLearner = (config: ExperimentConfig) =>
  Effect.gen(function* () {
    const drain = yield* Deferred.make<string>();
    const fiber = yield* Effect.fork(runActor({ role: learnerRole, config, id: "learner-1", drain }));
    const stop = Deferred.succeed(drain, "test over").pipe(Effect.zipRight(Fiber.join(fiber)));
    return { fiber, stop };
  });

/** Runs `program` in a fresh learner experiment (its config given) whose work queues exist. */
const inLearnerExperiment = async <A, E>(
  program: (config: ExperimentConfig) => Effect.Effect<A, E, Nats | Experiment | Scope.Scope>,
) => {
  const config = await learnerConfig();
  return runWith(natsUrl, config.experiment, Effect.zipRight(ensureWorkQueues(PIPELINE_QUEUES), program(config)));
};

/** How the learner actor ended: its error's message, or "completed". */
const endOf = (fiber: Fiber.Fiber<void, unknown>, timeoutMs: number) =>
  Fiber.await(fiber).pipe(
    Effect.timeoutFail({ duration: timeoutMs, onTimeout: () => new Error("the learner did not stop") }),
    Effect.map((exit) =>
      Exit.isSuccess(exit)
        ? { completed: true as const }
        : { completed: false as const, error: Option.getOrUndefined(Cause.failureOption(exit.cause)) },
    ),
  );

describe("judgeGroup", () => {
  const limits: GroupLimits = { vocabSize: VOCAB, maxSeqLen: 128, maxAnswerTokens: 8, groupSize: 2, newestVersion: 5 };
  const known = (settled: string[], inHand: string[], offPolicy: "drop" | "tis" = "drop") => ({
    limits,
    maxPolicyLag: 2,
    offPolicy,
    isSettled: (id: string) => settled.includes(id),
    isInHand: (id: string) => inHand.includes(id),
  });
  it("uses a valid group with signal from a recent enough version", () => {
    expect(judgeGroup(scoredGroup("g1", [0, 1], 3), known([], []))).toEqual({ _tag: "Use" });
  });
  it("drops and acks the stale (5 − 2 > 2), the zero-variance and redeliveries of settled groups", () => {
    expect(judgeGroup(scoredGroup("g1", [0, 1], 2), known([], []))).toEqual({
      _tag: "Drop",
      reason: "stale",
      hold: false,
    });
    expect(judgeGroup(scoredGroup("g1", [1, 1], 5), known([], []))).toEqual({
      _tag: "Drop",
      reason: "zeroVariance",
      hold: false,
    });
    expect(judgeGroup(scoredGroup("g1", [0, 1], 5), known(["g1"], []))).toEqual({
      _tag: "Drop",
      reason: "duplicates",
      hold: false,
    });
  });
  it("drops a CFG / CD-K group under offPolicy drop, uses it under tis; a stale one is stale either way", () => {
    expect(judgeGroup(guidedGroup("g1", [0, 1], 5), known([], []))).toEqual({
      _tag: "Drop",
      reason: "offPolicy",
      hold: false,
    });
    expect(judgeGroup(guidedGroup("g1", [0, 1], 5), known([], [], "tis"))).toEqual({ _tag: "Use" });
    expect(judgeGroup(guidedGroup("g1", [0, 1], 2), known([], [], "tis"))).toMatchObject({ reason: "stale" });
  });
  it("holds a redelivery of a group in hand (acking it would ack the original before its checkpoint)", () => {
    expect(judgeGroup(scoredGroup("g1", [0, 1], 5), known(["g1"], ["g1"]))).toEqual({
      _tag: "Drop",
      reason: "duplicates",
      hold: true,
    });
  });
  it("judges validity first: an invalid redelivery is dead-lettered, not counted as a duplicate", () => {
    expect(judgeGroup(scoredGroup("g1", [0, Number.NaN], 5), known(["g1"], ["g1"]))).toEqual({
      _tag: "Invalid",
      reason: "reward of answer 1 is NaN",
    });
  });
});

describe("the learner settles what it drops at once", () => {
  it("acks and counts 1,100 zero-variance groups (beyond the consumer's max-ack-pending of 1,000); a resumed learner keeps their counts and ids", async () => {
    const config = await learnerConfig({ groupsPerStep: 50 });
    const N = 1_100;
    const groups = Array.from({ length: N }, (_, i) => scoredGroup(`g${i}`, [0.5, 0.5]));
    const result = await runWith(
      natsUrl,
      config.experiment,
      Effect.gen(function* () {
        // The real consumer (the server's default max_ack_pending, 1,000): held groups past it stop delivery.
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        yield* publishScored(groups);
        const first = yield* startLearner(config);
        const counted = yield* waitUntil("every group counted", progress, (p) => p?.zeroVariance === N, 90_000);
        const pending = yield* waitUntil("the queue to empty", pendingWork(SCORED_QUEUE), (n) => n === 0, 10_000);
        yield* first.stop;
        // No step, so no checkpoint: the resumed learner restores the drops from its journal, and a
        // redelivered group (same id, published again as after a broker crash) is a duplicate.
        const second = yield* startLearner(config);
        yield* publishScored(groups.slice(0, 3), "-again");
        const resumed = yield* waitUntil("the redeliveries counted", progress, (p) => p?.duplicates === 3, 30_000);
        yield* second.stop;
        return { counted, pending, resumed };
      }),
    );
    expect(result.counted).toMatchObject({ step: 0, consumed: 0, zeroVariance: N, duplicates: 0 });
    expect(result.pending).toBe(0);
    expect(result.resumed).toMatchObject({ step: 0, zeroVariance: N, duplicates: 3 });
  }, 150_000);

  it("checkpoints early rather than hold used groups up to the consumer's max-ack-pending (1,100 used, checkpointEvery 1,000)", async () => {
    // All sampled by version 0: a lag of 100 keeps them usable for all 22 steps.
    const config = await learnerConfig({
      groupsPerStep: 50,
      totalSteps: 22,
      checkpointEvery: 1_000,
      maxPolicyLag: 100,
    });
    const groups = Array.from({ length: 1_100 }, (_, i) => scoredGroup(`g${i}`, [0, 1]));
    const result = await runWith(
      natsUrl,
      config.experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        yield* publishScored(groups);
        const learner = yield* startLearner(config);
        const end = yield* endOf(learner.fiber, 150_000);
        return { end, progress: yield* progress, pending: yield* pendingWork(SCORED_QUEUE) };
      }),
    );
    expect(result.end).toEqual({ completed: true });
    expect(result.progress).toMatchObject({ step: 22, consumed: 1_100, done: true });
    expect(result.pending).toBe(0);
  }, 200_000);

  it("warns when no step completes for learner.stallWarnMs (stalledSince, learner.stalledMs); the next step clears it", async () => {
    const config = await learnerConfig({ stallWarnMs: 1_500 });
    const result = await runWith(
      natsUrl,
      config.experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { subjects } = yield* Experiment;
        const metrics = yield* subscribe(subjects.metrics("learner"), [MetricsEventMessage]);
        // Only groups without signal (one fetch of groupsPerStep): fetched and dropped, never a step.
        yield* publishScored([scoredGroup("g1", [1, 1]), scoredGroup("g2", [0, 0])]);
        const learner = yield* startLearner(config);
        const stalled = yield* waitUntil("stalledSince", progress, (p) => p?.stalledSince !== undefined, 30_000);
        let stallMetric: Record<string, number> | undefined;
        while (stallMetric === undefined) {
          const event = yield* Queue.take(metrics.messages).pipe(Effect.timeout("10 seconds"));
          if (event.type === "MetricsEvent" && "learner.stalledMs" in event.body.values)
            stallMetric = event.body.values;
        }
        yield* publishScored([scoredGroup("g4", [0, 1]), scoredGroup("g5", [1, 0.5])]);
        const stepped = yield* waitUntil("step 1", progress, (p) => p?.step === 1, 30_000);
        yield* learner.stop;
        return { stalled, stallMetric, stepped };
      }),
    );
    expect(result.stalled).toMatchObject({ step: 0, zeroVariance: 2 });
    expect(result.stalled!.stalledSince).toBeLessThanOrEqual(Date.now() - 1_500);
    expect(result.stallMetric!["learner.stalledMs"]).toBeGreaterThanOrEqual(1_500);
    expect(result.stallMetric!["learner.fetchedSinceStep"]).toBe(2);
    expect(result.stepped).toMatchObject({ step: 1, consumed: 2 });
    expect(result.stepped!.stalledSince).toBeUndefined();
  }, 90_000);
});

describe("off-policy (CFG / CD-K) groups through the learner actor", () => {
  /** One learner step over `groups` under `offPolicy`: how it ended, its progress, what is left queued. */
  const oneStep = async (offPolicy: Record<string, unknown>, groups: readonly ScoredGroup[]) => {
    const config = await learnerConfig({ groupsPerStep: 2, totalSteps: 1, offPolicy });
    return runWith(
      natsUrl,
      config.experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        yield* publishScored(groups);
        const learner = yield* startLearner(config);
        const end = yield* endOf(learner.fiber, 120_000);
        return { end, progress: yield* progress, pending: yield* pendingWork(SCORED_QUEUE) };
      }),
    );
  };

  it("offPolicy drop: counts and acks marked groups (learner.drops.offPolicy) and steps on the on-policy ones", async () => {
    const result = await oneStep({ mode: "drop" }, [
      guidedGroup("g0", [0, 1]),
      scoredGroup("g1", [0, 1]),
      guidedGroup("g2", [1, 0]),
      scoredGroup("g3", [0.5, 0]),
    ]);
    expect(result.end).toEqual({ completed: true });
    expect(result.progress).toMatchObject({ step: 1, consumed: 2, offPolicy: 2, done: true });
    expect(result.pending).toBe(0);
  }, 150_000);

  it("offPolicy tis: trains on marked groups (consumed, none dropped)", async () => {
    const result = await oneStep({ mode: "tis", cap: 2 }, [guidedGroup("g0", [0, 1]), guidedGroup("g1", [1, 0.5])]);
    expect(result.end).toEqual({ completed: true });
    expect(result.progress).toMatchObject({ step: 1, consumed: 2, offPolicy: 0, skippedSteps: 0, done: true });
  }, 150_000);
});

describe("the learner validates every group before it joins a batch", () => {
  it("dead-letters a poisoned group alone (a token outside the vocabulary; a policy version never published) and steps on the rest", async () => {
    const config = await learnerConfig({ groupsPerStep: 3, totalSteps: 1 });
    const outsideVocabulary = scoredGroup("g2", [0, 1]);
    outsideVocabulary.rollout.answers[1]!.tokens[1] = VOCAB + 4_622;
    const fromTheFuture = scoredGroup("g4", [1, 0], 1_000_000_000);
    const result = await runWith(
      natsUrl,
      config.experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        // Fetched in threes, then ones: every poisoned group comes before the batch is full.
        yield* publishScored([
          scoredGroup("g0", [0, 1]),
          fromTheFuture,
          scoredGroup("g1", [1, 0.25]),
          outsideVocabulary,
          scoredGroup("g3", [0.5, 0]),
        ]);
        const learner = yield* startLearner(config);
        const end = yield* endOf(learner.fiber, 150_000);
        return {
          end,
          progress: yield* progress,
          deadLettered: yield* deadLetterCount(SCORED_QUEUE),
          reasons: (yield* readDeadLetters(SCORED_QUEUE)).map((letter) => letter.reason),
        };
      }),
    );
    expect(result.end).toEqual({ completed: true });
    expect(result.progress).toMatchObject({ step: 1, consumed: 3, invalid: 2, policyVersion: 1, done: true });
    expect(result.deadLettered).toBe(2);
    expect(result.reasons.sort()).toEqual([
      "rejected: answer 1 token 1 is 5000, outside the vocabulary [0, 378)",
      "rejected: claims policy version 1000000000, but the newest published is 0",
    ]);
    // The lineage says what became of each: three used in step 1, two dead-lettered with their reason.
    const lineage = readFileSync(lineageFile(config), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as LineageRecord);
    const fates = Object.fromEntries(lineage.map((r) => [r.groupId, r.fate === "used" ? `used ${r.step}` : r.reason]));
    expect(fates).toEqual({
      g0: "used 1",
      g1: "used 1",
      g3: "used 1",
      g2: "answer 1 token 1 is 5000, outside the vocabulary [0, 378)",
      g4: "claims policy version 1000000000, but the newest published is 0",
    });
  }, 90_000);
});

describe("the learner never applies a non-finite update", () => {
  it("skips the step of a group whose finite rewards overflow its advantages: counted, not a step; the next batch steps", async () => {
    const config = await learnerConfig({ groupsPerStep: 1, totalSteps: 1 });
    const result = await runWith(
      natsUrl,
      config.experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { subjects } = yield* Experiment;
        const metrics = yield* subscribe(subjects.metrics("learner"), [MetricsEventMessage]);
        // Finite, so valid; but their sum (the group's mean) overflows to ∞ and the advantages are NaN.
        yield* publishScored([scoredGroup("g0", [1.7e308, 8e307])]);
        const learner = yield* startLearner(config);
        const skipped = yield* waitUntil("a skipped step", progress, (p) => p?.skippedSteps === 1, 30_000);
        let skipMetric: Record<string, number> | undefined;
        while (skipMetric === undefined) {
          const event = yield* Queue.take(metrics.messages).pipe(Effect.timeout("10 seconds"));
          if (event.type === "MetricsEvent" && "learner.skippedSteps" in event.body.values)
            skipMetric = event.body.values;
        }
        yield* publishScored([scoredGroup("g1", [0, 1])]);
        const end = yield* endOf(learner.fiber, 30_000);
        return { skipped, skipMetric, end, final: yield* progress };
      }),
    );
    expect(result.skipped).toMatchObject({ step: 0, consumed: 1, skippedSteps: 1, policyVersion: 0 });
    expect(result.skipMetric).toMatchObject({ "learner.skippedSteps": 1 });
    expect(result.end).toEqual({ completed: true });
    expect(result.final).toMatchObject({ step: 1, consumed: 2, skippedSteps: 1, policyVersion: 1, done: true });
  }, 60_000);
});

describe("the learner is the only writer of the policy pointer", () => {
  const forgedPointer = (version: number) => ({ version, weights: weightsBlobName(version), publishedAt: Date.now() });
  const progressAt = (policyVersion: number): LearnerProgress => ({
    ...NO_LEARNER_PROGRESS,
    step: policyVersion,
    policyVersion,
  });

  it("stops the run (RoleFatal, no restart) when a pointer revision it did not write appears", async () => {
    const result = await inLearnerExperiment((config) =>
      Effect.gen(function* () {
        const learner = yield* startLearner(config);
        yield* waitUntil("version 0 announced", getState(POLICY_KEY), (entry) => entry?.value.version === 0, 30_000);
        const revision = yield* putState(POLICY_KEY, forgedPointer(999));
        return { revision, end: yield* endOf(learner.fiber, 20_000) };
      }),
    );
    expect(result.end.completed).toBe(false);
    const error = (result.end as { error: unknown }).error;
    expect(error).toBeInstanceOf(ActorGaveUp);
    expect((error as ActorGaveUp).restarts).toBe(0);
    expect((error as ActorGaveUp).reason).toMatch(
      new RegExp(
        `policy pointer revision ${result.revision} was not written by this learner \\(it announces version 999\\)`,
      ),
    );
  }, 60_000);

  it("refuses to start over a pointer ahead of everything the learner announced", async () => {
    const result = await inLearnerExperiment((config) =>
      Effect.gen(function* () {
        yield* putState(LEARNER_PROGRESS_KEY, progressAt(2));
        const revision = yield* putState(POLICY_KEY, forgedPointer(5_000));
        const learner = yield* startLearner(config);
        return { revision, end: yield* endOf(learner.fiber, 30_000) };
      }),
    );
    const error = (result.end as { error?: ActorGaveUp }).error;
    expect(error?.restarts).toBe(0);
    expect(error?.reason).toMatch(
      new RegExp(
        `policy pointer \\(revision ${result.revision}\\) announces version 5000, but the learner never announced a version above 2`,
      ),
    );
  }, 60_000);

  it("restarted without a checkpoint, announces its weights after the version followers hold", async () => {
    const result = await inLearnerExperiment((config) =>
      Effect.gen(function* () {
        // A learner got to version 5 and died before its first checkpoint: progress first, then the pointer.
        yield* putState(LEARNER_PROGRESS_KEY, progressAt(5));
        yield* putState(POLICY_KEY, forgedPointer(5));
        const learner = yield* startLearner(config);
        const pointer = yield* waitUntil("a newer version", getState(POLICY_KEY), (e) => (e?.value.version ?? 0) > 5);
        const announced = yield* progress;
        yield* learner.stop;
        return { pointer: pointer!.value, announced };
      }),
    );
    expect(result.pointer).toMatchObject({ version: 6, weights: weightsBlobName(6) });
    expect(result.announced).toMatchObject({ policyVersion: 6, step: 0 });
  }, 60_000);

  it("starts over a garbage pointer: logs and counts it, then announces its own weights over it", async () => {
    const result = await inLearnerExperiment((config) =>
      Effect.gen(function* () {
        // JSON, so the learner's own watch sees the revision too: it must not take it for a forgery.
        yield* putState(ANY_POINTER_WRITE, { version: "nine", weights: 7 });
        const learner = yield* startLearner(config);
        const pointer = yield* waitUntil(
          "version 0 announced",
          getState(POLICY_KEY).pipe(Effect.orElseSucceed(() => undefined)),
          (entry) => entry?.value.version === 0,
        );
        const status = yield* waitUntil(
          "the refusal counted",
          getState(actorStatusKey("learner-1")).pipe(Effect.orElseSucceed(() => undefined)),
          (entry) => (entry?.value.failed ?? 0) >= 1,
        );
        yield* Effect.sleep("500 millis"); // a forgery verdict would stop it now
        const running = Option.isNone(yield* Fiber.poll(learner.fiber));
        yield* learner.stop;
        return { pointer: pointer!.value, failed: status!.value.failed, running };
      }),
    );
    expect(result.pointer).toMatchObject({ version: 0, weights: weightsBlobName(0) });
    expect(result.failed).toBe(1);
    expect(result.running).toBe(true);
  }, 60_000);
});
