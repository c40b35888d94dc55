/**
 * learner: GRPO over the actor pipeline. Pulls scored groups, drops the stale (older than
 * `max_policy_lag` versions), the zero-variance and the already-used ones (each counted), runs the
 * GRPO update, publishes weights every `publishEvery` steps and checkpoints every `checkpointEvery`.
 *
 * Exactly-once use: a scored group is acked only after a checkpoint that includes its effect is on
 * disk. A learner killed at any point resumes from its checkpoint (step, Adam state, policy version,
 * counts, the ids of groups used) and the groups it had not checkpointed are redelivered and used
 * again — by the resumed weights, which never saw them. So every group is used at most once in the
 * surviving run, and none is lost: consumed + stale + zero-variance + dead-lettered adds up.
 *
 * Subjects: pulls ScoredGroup from the `scored` work queue; publishes weights (a blob per version) and the
 * `policy`, `policy-architecture` and `learner-progress` KV keys; metrics on `metrics.learner`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs";
import { Duration, Effect, Schedule } from "effect";
import { experimentEnvironment, publishPolicyTokenizer, type RoleDefinition, useBackend } from "../actors/index.ts";
import type { ExperimentConfig } from "../configs/index.ts";
import { type Environment, tokenizerForVocabulary } from "../envs/index.ts";
import {
  Experiment,
  getBlob,
  getState,
  openWorkFetcher,
  POLICY_KEY,
  publishMessage,
  publishPolicy,
  putState,
  type ScoredGroup,
  sweepExhaustedDeliveries,
  type WorkItem,
  WorkOutcome,
  weightsBlobName,
} from "../messaging/index.ts";
import {
  EVALUATION_DONE_KEY,
  LEARNER_PROGRESS_KEY,
  type LearnerProgress,
  POLICY_ARCHITECTURE_KEY,
} from "../messaging/pipeline-state.ts";
import { buildPolicy, loadCheckpoint, type Policy, policyStartingFrom, saveCheckpoint } from "../models/index.ts";
import { type GrpoBatch, type GrpoSettings, grpoUpdate } from "./grpo-step.ts";
import { createOptimizer } from "./pretrain.ts";
import { modelConfigFor, tokenizerRecordFor } from "./pretrain-factworld.ts";

/** What a learner checkpoint carries besides weights and Adam state. */
interface LearnerState {
  readonly progress: LearnerProgress;
  /** Ids of the groups whose answers are in the checkpointed weights. */
  readonly usedGroups: readonly string[];
}

const KEEP_ALIVE = Schedule.spaced(Duration.seconds(5));
const FETCH_EXPIRES_MS = 1_000;

export const learnerCheckpointDir = (config: ExperimentConfig) =>
  join(config.output.dir, config.experiment, "checkpoints", "learner");

/**
 * The policy to start from, with the tokenizer record it was trained with (saved in every checkpoint
 * and published for the rollout actors): the learner's own checkpoint (resume), else `model.init`,
 * else a fresh one over the environment's vocabulary.
 */
async function startingPolicy(config: ExperimentConfig, env: Environment, optimizer: tf.AdamOptimizer) {
  const resumeDir = learnerCheckpointDir(config);
  if (existsSync(join(resumeDir, "manifest.json"))) {
    const resumed = await loadCheckpoint(resumeDir, { optimizer });
    const state = resumed.trainerState as LearnerState;
    return { policy: resumed.policy, tokenizer: resumed.tokenizer, state, resumed: true };
  }
  const fresh: LearnerState = {
    progress: { step: 0, policyVersion: 0, consumed: 0, stale: 0, zeroVariance: 0, duplicates: 0, done: false },
    usedGroups: [],
  };
  const m = config.model;
  const motSettings = m.backbone === "mot" ? { untie: m.untie, modalities: m.modalities } : {};
  if (m.init) {
    const loaded = await loadCheckpoint(m.init);
    const policy = await policyStartingFrom(loaded.policy, m.backbone, m.init, motSettings);
    if (policy !== loaded.policy) loaded.policy.dispose();
    return { policy, tokenizer: loaded.tokenizer, state: fresh, resumed: false };
  }
  if (!env.vocabulary) {
    throw new Error(
      `model.init is required: environment ${env.kind} has no vocabulary to build a fresh policy's tokenizer`,
    );
  }
  const tokenizer = tokenizerForVocabulary(env.vocabulary);
  const shape = {
    backbone: m.backbone,
    dModel: m.dModel,
    nLayers: m.layers,
    nHeads: m.heads,
    dFF: m.dFF,
    maxSeqLen: m.maxSeqLen,
    positions: m.positions,
    ...motSettings,
  };
  const policy = buildPolicy(modelConfigFor(shape, tokenizer, config.seed));
  return { policy, tokenizer: tokenizerRecordFor(m.backbone, tokenizer), state: fresh, resumed: false };
}

/** Flattens scored groups into the GRPO batch (answers group after group). */
export const toGrpoBatch = (groups: readonly ScoredGroup[]): GrpoBatch => {
  const answers = groups.flatMap((g) => g.rollout.answers);
  return {
    prompts: groups.flatMap((g) => g.rollout.answers.map(() => g.rollout.promptTokens)),
    answers: answers.map((a) => a.tokens),
    behaviourLogProbs: answers.map((a) => a.logProbs),
    rewards: groups.flatMap((g) => g.scores.map((s) => s.reward)),
    groupSize: groups[0]?.rollout.group.groupSize ?? 1,
  };
};

export const hasSignal = (group: ScoredGroup) => group.scores.some((s) => s.reward !== group.scores[0]?.reward);

/** The GRPO update's settings from the experiment config. */
export const grpoSettingsFor = (config: ExperimentConfig): GrpoSettings => ({
  learningRate: config.learner.lr,
  clipNorm: 1,
  epsLow: config.learner.epsLow,
  epsHigh: config.learner.epsHigh,
  klBeta: config.learner.klBeta,
  aggregation: config.learner.lossAggregation,
  normalizeStd: config.learner.normalizeStd,
  updatesPerBatch: config.learner.updatesPerBatch,
  temperature: config.rollout.temperature,
  horizon: config.rollout.maxNewTokens,
  microBatchAnswers: config.learner.microBatchAnswers,
});

export const learnerRole: RoleDefinition = {
  name: "learner",
  description: "GRPO updates from scored groups; publishes weights, checkpoints and resumes",
  endsExperiment: true,
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      const L = config.learner;
      yield* useBackend(config, actor);
      const { subjects } = yield* Experiment;
      const optimizer = createOptimizer({ learningRate: L.lr, warmupSteps: 0, totalSteps: L.totalSteps, clipNorm: 1 });
      const env = yield* experimentEnvironment(config);
      const start = yield* Effect.promise(() => startingPolicy(config, env, optimizer));
      const { policy } = start;
      yield* Effect.addFinalizer(() => Effect.sync(() => policy.dispose()));
      let progress = start.state.progress;
      const used = new Set(start.state.usedGroups);
      actor.setPolicyVersion(progress.policyVersion);

      // Publish the tokenizer and the architecture, then the current weights unless this version is already out.
      yield* publishPolicyTokenizer(start.tokenizer);
      yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
      const published = yield* getState(POLICY_KEY);
      if (!published || published.value.version !== progress.policyVersion) {
        yield* publishPolicy(progress.policyVersion, yield* Effect.promise(() => policy.exportWeights()));
      }
      yield* putState(LEARNER_PROGRESS_KEY, progress);
      yield* Effect.logInfo(
        `learner ${start.resumed ? "resumed" : "starts"} at step ${progress.step}, policy version ${progress.policyVersion}`,
      );

      // The frozen reference for β·KL: the initial policy (version 0's weights).
      let reference: Policy | undefined;
      if (L.klBeta > 0) {
        reference = buildPolicy(policy.config);
        const initial = yield* getBlob(weightsBlobName(0));
        yield* Effect.promise(() => reference!.importWeights(initial, weightsBlobName(0)));
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => reference?.dispose()));

      const scored = yield* openWorkFetcher("scored");
      yield* sweepExhaustedDeliveries("scored");
      /** Deliveries settled by the learner only once a checkpoint covers them. */
      let held: WorkItem<"scored">[] = [];
      yield* Effect.forkScoped(
        Effect.repeat(
          Effect.suspend(() => Effect.forEach(held, (item) => item.working, { discard: true })),
          KEEP_ALIVE,
        ),
      );

      /** Pulls until `groupsPerStep` usable groups are in hand; every other delivery is counted. */
      const collectGroups = Effect.gen(function* () {
        const batch: ScoredGroup[] = [];
        const inBatch = new Set<string>();
        while (batch.length < L.groupsPerStep) {
          if (actor.isDraining()) return undefined;
          const items = yield* scored.fetch({ max: L.groupsPerStep - batch.length, expiresMs: FETCH_EXPIRES_MS });
          const before = progress;
          for (const item of items) {
            held.push(item);
            const group = item.body;
            const id = group.rollout.group.groupId;
            if (used.has(id) || inBatch.has(id)) progress = { ...progress, duplicates: progress.duplicates + 1 };
            else if (progress.policyVersion - group.rollout.policyVersion > L.maxPolicyLag)
              progress = { ...progress, stale: progress.stale + 1 };
            else if (!hasSignal(group)) progress = { ...progress, zeroVariance: progress.zeroVariance + 1 };
            else {
              batch.push(group);
              inBatch.add(id);
            }
          }
          // Dropped groups return the curator's credits now, not at the next step.
          if (progress !== before) yield* putState(LEARNER_PROGRESS_KEY, progress);
        }
        return batch;
      });

      const checkpoint = Effect.gen(function* () {
        const state: LearnerState = { progress, usedGroups: [...used] };
        yield* Effect.promise(() =>
          saveCheckpoint(learnerCheckpointDir(config), {
            policy,
            optimizer,
            step: progress.step,
            tokenizer: start.tokenizer,
            trainerState: state,
          }),
        );
        const settled = held;
        held = [];
        yield* Effect.forEach(settled, (item) => item.settle(WorkOutcome.done), { discard: true });
      });

      return Effect.gen(function* () {
        while (progress.step < L.totalSteps) {
          // Durations for bench/pipeline.ts: waiting for groups (fetching included), updating, publishing, checkpointing.
          const collectStarted = performance.now();
          const groups = yield* collectGroups;
          if (!groups) return yield* Effect.logInfo("learner drained; unsettled groups will be redelivered");
          const collectMs = performance.now() - collectStarted;
          const started = Date.now();
          const stats = yield* Effect.promise(() =>
            grpoUpdate(policy, optimizer, reference, toGrpoBatch(groups), grpoSettingsFor(config)),
          );
          const updateMs = Date.now() - started;
          let publishMs = 0;
          for (const g of groups) used.add(g.rollout.group.groupId);
          const step = progress.step + 1;
          const last = step === L.totalSteps;
          progress = { ...progress, step, consumed: progress.consumed + groups.length };
          if (step % L.publishEvery === 0 || last) {
            const version = progress.policyVersion + 1;
            const weights = yield* Effect.promise(() => policy.exportWeights());
            // In the loop, not behind it: a version announced later would make every group one step
            // staler (a background publish here dropped 19 % of groups as stale instead of none).
            const publishStarted = performance.now();
            yield* publishPolicy(version, weights);
            publishMs = performance.now() - publishStarted;
            progress = { ...progress, policyVersion: version };
            actor.setPolicyVersion(version);
          }
          const checkpointStarted = performance.now();
          if (step % L.checkpointEvery === 0 || last) yield* checkpoint;
          const checkpointMs = performance.now() - checkpointStarted;
          actor.recordProcessed(groups.length);
          const rewards = groups.flatMap((g) => g.scores.map((s) => s.reward));
          yield* publishMessage(subjects.metrics("learner"), "MetricsEvent", {
            source: actor.id,
            step,
            values: {
              "learner.loss": stats.loss,
              "learner.gradNorm": stats.gradNorm,
              "learner.clipFraction": stats.clipFraction,
              "learner.ratio": stats.meanRatio,
              "learner.kl": stats.kl,
              "learner.rewardMean": rewards.reduce((a, b) => a + b, 0) / rewards.length,
              "learner.stepMs": Date.now() - started,
              "learner.collectMs": collectMs,
              "learner.updateMs": updateMs,
              "learner.publishMs": publishMs,
              "learner.checkpointMs": checkpointMs,
              "learner.consumed": progress.consumed,
              "learner.stale": progress.stale,
              "learner.zeroVariance": progress.zeroVariance,
              "learner.duplicates": progress.duplicates,
              "learner.policyVersion": progress.policyVersion,
            },
            tags: { role: "learner" },
          });
          yield* putState(LEARNER_PROGRESS_KEY, { ...progress, done: last });
        }
        progress = { ...progress, done: true };
        yield* putState(LEARNER_PROGRESS_KEY, progress);
        yield* Effect.logInfo(`learner done: ${progress.step} steps, policy version ${progress.policyVersion}`);
        // The experiment ends with the learner; with evaluators, once the final policy is evaluated.
        if (config.actors.evaluator > 0) {
          yield* Effect.logInfo("waiting for the final evaluation");
          for (;;) {
            const evaluation = yield* getState(EVALUATION_DONE_KEY);
            if (evaluation && evaluation.value.finalVersion >= progress.policyVersion) break;
            if (actor.isDraining()) return;
            yield* Effect.sleep(Duration.seconds(1));
          }
        }
      });
    }),
};
