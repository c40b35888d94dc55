/**
 * reward: pulls rollout groups, scores every answer with the configured reward modules (built-ins,
 * module files, NATS services, HTTP judges — rewards/), and publishes scored groups carrying every
 * component and every per-answer failure. A module failing one answer never fails the group.
 *
 * Subjects: pulls RolloutGroup from the `rollouts` work queue, publishes ScoredGroup to `scored`
 * (msgID = group id), metrics on `metrics.<id>`. A rollout group whose scored group is too large to
 * publish is dead-lettered at once, alone, with its size and the limit (`reward.tooLarge`).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Effect } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import { allPrompts, type Environment, type EnvPrompt } from "../envs/index.ts";
import {
  Experiment,
  MAX_MESSAGE_BYTES,
  type MessageTooLargeError,
  MetricsEventMessage,
  Nats,
  publishMessage,
  publishWork,
  RETRIEVE_ENDPOINT,
  WorkOutcome,
} from "../messaging/index.ts";
import { ANY_REWARD_SERVICE, createRewardPipeline, type RewardItem, type RewardPipeline } from "../rewards/index.ts";
import { experimentEnvironment } from "./environment.ts";
import type { RoleDefinition } from "./runtime.ts";
import { ROLLOUTS_QUEUE, type RolloutGroup, SCORED_QUEUE, type ScoredGroup, VERDICT_CACHE_KEYS } from "./topology.ts";
import { natsVerification, type RewardVerification, verificationMetrics } from "./verification.ts";

/**
 * The experiment's reward pipeline over its environment (its knowledge base for the built-ins, its
 * own modules by name); `service` modules need a NATS connection, `evidence` a verification context
 * with passages (verification.ts). `modules` defaults to the config's.
 */
export const createExperimentRewards = (
  config: ExperimentConfig,
  env: Environment,
  connection?: NatsConnection,
  modules: ExperimentConfig["rewards"]["modules"] = config.rewards.modules,
  verification?: RewardVerification,
): Promise<RewardPipeline> =>
  createRewardPipeline(
    { modules, timeoutMs: config.rewards.timeoutMs, retries: config.rewards.retries },
    {
      ...(env.knowledge ? { world: env.knowledge } : {}),
      prompts: allPrompts(env),
      ...(env.rewardModules ? { environmentModules: env.rewardModules } : {}),
      ...(connection ? { nats: connection } : {}),
      ...(verification
        ? {
            ...(verification.evidence ? { evidence: verification.evidence } : {}),
            verdictCache: verification.verdictCache,
            onRejectedVerdict: verification.onRejectedVerdict,
          }
        : {}),
    },
  );

/**
 * The experiment's reward pipeline over its NATS connection (for `service` modules, the retriever
 * role, the shared verdict cache), closed with the scope; with its verification counts.
 */
export const openRewardPipeline = (
  config: ExperimentConfig,
  env: Environment,
  modules: ExperimentConfig["rewards"]["modules"] = config.rewards.modules,
) =>
  Effect.gen(function* () {
    const { connection } = yield* Nats;
    const verification = yield* natsVerification(modules);
    const pipeline = yield* Effect.acquireRelease(
      Effect.promise(() => createExperimentRewards(config, env, connection, modules, verification)),
      (pipeline) => Effect.promise(() => pipeline.close()),
    );
    return { pipeline, verification };
  });

/**
 * Why a group (`what`: "its rollout group", "its scored group") is dead-lettered rather than published:
 * its size with the headers it would carry, the limit, and what would let it through. Messages are
 * capped at 1 MiB whatever the server allows, so raising the server's max_payload helps only below that.
 */
export const tooLargeReason = (what: string, error: MessageTooLargeError): string =>
  `${what} is ${error.bytes} bytes with its headers, over the ${error.maxBytes}-byte limit on a message: not published; ` +
  (error.maxBytes < MAX_MESSAGE_BYTES
    ? `raise the NATS server's max_payload (${error.maxBytes} bytes; up to ${MAX_MESSAGE_BYTES}), or lower rollout.groupSize or rollout.maxNewTokens`
    : "lower rollout.groupSize or rollout.maxNewTokens");

/** Rollout groups one reward actor works on at once. */
const REWARD_CONCURRENCY = 4;

/**
 * Wall-clock split of the time the actor holds work: with several groups in hand, one group's wait
 * for its publish ack overlaps another's scoring, so summing per-group waits would overstate what
 * messaging costs. `stalledMs` is the time with groups in hand and none being scored.
 */
const makeStallClock = () => {
  let held = 0;
  let scoring = 0;
  let since = performance.now();
  let busyMs = 0;
  let stalledMs = 0;
  let takenAt = since;
  const advance = () => {
    const now = performance.now();
    if (held > 0) busyMs += now - since;
    if (held > 0 && scoring === 0) stalledMs += now - since;
    since = now;
  };
  return {
    hold: (delta: 1 | -1) => {
      advance();
      held += delta;
    },
    score: (delta: 1 | -1) => {
      advance();
      scoring += delta;
    },
    /** Busy and stalled ms since the last call, and the wall time they are out of. */
    take: () => {
      advance();
      const taken = { busyMs, stalledMs, wallMs: since - takenAt };
      busyMs = 0;
      stalledMs = 0;
      takenAt = since;
      return taken;
    },
  };
};

/** What the reward modules see of a rollout group: one item per answer (an unfinished answer is `truncated`). */
export const rewardItemsOf = (rollout: RolloutGroup, focus: EnvPrompt["focus"] | undefined): RewardItem[] => {
  const { group } = rollout;
  const prompt = {
    id: group.promptId,
    text: group.prompt,
    ...(focus ? { focus: { entity: focus.entity, aspects: focus.aspects } } : {}),
  };
  return rollout.answers.map((answer) => ({
    prompt,
    answer: answer.text,
    truncated: answer.finishReason === "length",
    ...(rollout.reference === undefined ? {} : { reference: rollout.reference }),
  }));
};

/**
 * The reward role's work, written once for both runners: a rollout group's scored group, every
 * answer scored by the pipeline's modules against the prompt's focus (from the environment).
 */
export const makeScoring = (env: Environment, pipeline: RewardPipeline) => {
  const focusById = new Map(allPrompts(env).map((p) => [p.id, p.focus]));
  return async (rollout: RolloutGroup, scorer: string): Promise<ScoredGroup> => {
    const scores = await pipeline.score(rewardItemsOf(rollout, focusById.get(rollout.group.promptId)));
    return {
      rollout,
      scores: scores.map((s) => ({ reward: s.reward, components: { ...s.components }, failures: [...s.failures] })),
      scorer,
      scoredAt: Date.now(),
    };
  };
};

/**
 * The reward role's work over the experiment's environment and reward pipeline (closed with the
 * scope), with the pipeline's verification counts.
 */
export const openScoring = (config: ExperimentConfig) =>
  Effect.gen(function* () {
    const env = yield* experimentEnvironment(config);
    const { pipeline, verification } = yield* openRewardPipeline(config, env);
    return { score: makeScoring(env, pipeline), verification };
  });

export const rewardRole: RoleDefinition = {
  name: "reward",
  description: "scores rollout groups with the reward modules; publishes scored groups",
  takes: [ROLLOUTS_QUEUE],
  gives: [SCORED_QUEUE],
  requests: ANY_REWARD_SERVICE,
  asks: [RETRIEVE_ENDPOINT],
  writes: [VERDICT_CACHE_KEYS],
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      const { subjects } = yield* Experiment;
      const { score, verification } = yield* openScoring(config);
      const clock = makeStallClock();
      /** Scored groups refused for their size since the actor started (`reward.tooLarge`). */
      let tooLarge = 0;

      return actor.consume(
        ROLLOUTS_QUEUE,
        (item) =>
          Effect.gen(function* () {
            clock.hold(1);
            const rollout = item.body;
            // Durations for the metrics: scoring vs publishing (fetch, decode and ack happen in consume).
            const scoreStarted = performance.now();
            clock.score(1);
            const scored = yield* Effect.promise(() => score(rollout, actor.id)).pipe(
              Effect.ensuring(Effect.sync(() => clock.score(-1))),
            );
            const publishStarted = performance.now();
            // A scored group too large to publish never will be: dead-letter its rollout group now,
            // alone, rather than retry it on every delivery.
            const refused = yield* publishWork(SCORED_QUEUE, scored, { msgId: rollout.group.groupId }).pipe(
              Effect.as(undefined),
              Effect.catchTag("MessageTooLargeError", (error) =>
                Effect.succeed(tooLargeReason("its scored group", error)),
              ),
            );
            if (refused !== undefined) {
              tooLarge += 1;
              yield* Effect.logWarning(`rollout group ${rollout.group.groupId.slice(0, 80)} dead-lettered: ${refused}`);
              yield* publishMessage(subjects.metrics(actor.id), MetricsEventMessage, {
                source: actor.id,
                values: { "reward.tooLarge": tooLarge },
                tags: { role: "reward", policyVersion: String(rollout.policyVersion) },
              });
              return WorkOutcome.reject(refused);
            }
            const publishMs = performance.now() - publishStarted;
            const { scores } = scored;
            const failures = scores.reduce((n, s) => n + s.failures.length, 0);
            const mean = scores.reduce((a, s) => a + s.reward, 0) / Math.max(1, scores.length);
            const { busyMs, stalledMs, wallMs } = clock.take();
            yield* publishMessage(subjects.metrics(actor.id), MetricsEventMessage, {
              source: actor.id,
              values: {
                "reward.mean": mean,
                "reward.failures": failures,
                "reward.answers": scores.length,
                "reward.scoreMs": publishStarted - scoreStarted,
                "reward.publishMs": publishMs,
                "reward.busyMs": busyMs,
                "reward.stalledMs": stalledMs,
                // Shares of the wall time since the last report: scoring, and holding groups with none scored.
                "reward.busyShare": wallMs > 0 ? (busyMs - stalledMs) / wallMs : 0,
                "reward.stalledShare": wallMs > 0 ? stalledMs / wallMs : 0,
                "reward.tooLarge": tooLarge,
                ...verificationMetrics("reward", verification),
              },
              tags: { role: "reward", policyVersion: String(rollout.policyVersion) },
            });
            return WorkOutcome.done;
          }).pipe(Effect.ensuring(Effect.sync(() => clock.hold(-1)))),
        // Scoring a group takes ~3 ms and its publish ack ~5 ms: a few groups in hand overlap the waits.
        { concurrency: REWARD_CONCURRENCY },
      );
    }),
};
