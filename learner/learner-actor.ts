/**
 * learner: GRPO over the actor pipeline. Pulls scored groups, dead-letters the invalid ones
 * (group-validation.ts), drops the stale (older than `max_policy_lag` versions), the zero-variance
 * and the already-used ones (each counted), runs the GRPO update, publishes weights every
 * `publishEvery` steps and checkpoints every `checkpointEvery`.
 *
 * Exactly-once use: a group used in an update is acked only after a checkpoint that includes its
 * effect is on disk. A learner killed at any point resumes from its checkpoint (step, Adam state,
 * policy version, counts, the ids of groups used and dropped) and the groups it had not
 * checkpointed are redelivered and used again — by the resumed weights, which never saw them. A
 * dropped group is settled at once, after its drop is on disk in the drop journal (drop-journal.ts),
 * so dropping never waits for a checkpoint. Every group is used at most once in the surviving run,
 * and none is lost: consumed + stale + zero-variance + dead-lettered adds up.
 *
 * Subjects: pulls ScoredGroup from the `scored` work queue; publishes weights (a blob per version) and the
 * `policy`, `policy-architecture` and `learner-progress` KV keys (it is the only writer of `policy`:
 * policy-pointer.ts); metrics on `metrics.learner`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs";
import { Duration, Effect, Schedule } from "effect";
import {
  experimentEnvironment,
  publishPolicyTokenizer,
  type RoleDefinition,
  RoleFatal,
  useBackend,
} from "../actors/index.ts";
import type { ExperimentConfig } from "../configs/index.ts";
import { type Environment, tokenizerForVocabulary } from "../envs/index.ts";
import {
  Experiment,
  getBlob,
  getState,
  openWorkFetcher,
  POLICY_KEY,
  publishMessage,
  putState,
  type ScoredGroup,
  type WorkItem,
  WorkOutcome,
  weightsBlobName,
} from "../messaging/index.ts";
import {
  EVALUATION_DONE_KEY,
  LEARNER_PROGRESS_KEY,
  type LearnerProgress,
  NO_LEARNER_PROGRESS,
  POLICY_ARCHITECTURE_KEY,
} from "../messaging/pipeline-state.ts";
import {
  buildPolicy,
  createOptimizer,
  imageTokenizerFromPictures,
  imageTokenizerOfRecord,
  loadCheckpoint,
  modelConfigFor,
  type Policy,
  policyStartingFrom,
  saveCheckpoint,
  tokenizerRecordFor,
} from "../models/index.ts";
import { countDrops, type Drop, type DropReason, openDropJournal, readDropJournal } from "./drop-journal.ts";
import { type GroupLimits, invalidGroupReason } from "./group-validation.ts";
import { type GrpoBatch, type GrpoSettings, grpoUpdate } from "./grpo-step.ts";
import { ownPolicyPointer, startingAnnouncement } from "./policy-pointer.ts";
import { type StallReport, watchForStalls } from "./stall-watchdog.ts";

/** What a learner checkpoint carries besides weights and Adam state. */
interface LearnerState {
  readonly progress: LearnerProgress;
  /** Ids of the groups whose answers are in the checkpointed weights. */
  readonly usedGroups: readonly string[];
  /** Ids of the groups dropped as stale or zero-variance (and acked) before this checkpoint. */
  readonly droppedGroups?: readonly string[];
  /** The drop journal generation that continues this checkpoint (absent in older checkpoints: 0). */
  readonly dropJournal?: number;
}

const KEEP_ALIVE = Schedule.spaced(Duration.seconds(5));
const FETCH_EXPIRES_MS = 1_000;
/**
 * Used groups wait unacked for a checkpoint; the `scored` consumer stops delivering at its
 * max-ack-pending (1,000 by default), so the learner checkpoints early rather than hold more than this.
 */
const MAX_HELD_DELIVERIES = 500;

export const learnerCheckpointDir = (config: ExperimentConfig) =>
  join(config.output.dir, config.experiment, "checkpoints", "learner");

/** Beside the checkpoint, not in it: a checkpoint replaces its whole directory. */
const learnerDropJournalDir = (config: ExperimentConfig) =>
  join(config.output.dir, config.experiment, "checkpoints", "learner-drops");

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
    // Older checkpoints lack the newer counts.
    return {
      policy: resumed.policy,
      tokenizer: resumed.tokenizer,
      state: { ...state, progress: { ...NO_LEARNER_PROGRESS, ...state.progress } },
      resumed: true,
    };
  }
  const fresh: LearnerState = { progress: NO_LEARNER_PROGRESS, usedGroups: [] };
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
  // An environment with pictures: a VQ codebook learned from its training pictures, ids after the words.
  const pictures = env.train.flatMap((p) => (p.picture ? [p.picture] : []));
  const image =
    pictures.length > 0 ? imageTokenizerFromPictures(pictures, tokenizer, { seed: config.seed }) : undefined;
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
  const policy = buildPolicy(modelConfigFor(shape, tokenizer, config.seed, image));
  return { policy, tokenizer: tokenizerRecordFor(m.backbone, tokenizer, image), state: fresh, resumed: false };
}

/** Why the policy cannot read the environment's prompts, if it cannot: pictures need an image tokenizer. */
export function environmentMismatch(env: Environment, tokenizer: unknown, source: string): string | undefined {
  if (!env.modalities.includes("image") || imageTokenizerOfRecord(tokenizer, source) !== undefined) return undefined;
  return (
    `environment ${env.kind} has pictures, but the policy (${source}) has no image tokenizer: start from a policy ` +
    "that reads pictures (e.g. models/checkpoints/quickstart-vision, made by `factrl pretrain configs/pretrain-vision.yaml`)"
  );
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

/** What the learner does with one delivered group. */
export type GroupVerdict =
  | { readonly _tag: "Use" }
  /** Dead-letter it alone, with the reason. */
  | { readonly _tag: "Invalid"; readonly reason: string }
  /** Count it and ack it now; `hold`: a redelivery of a group in hand, settled with it at the checkpoint. */
  | { readonly _tag: "Drop"; readonly reason: Exclude<DropReason, "invalid">; readonly hold: boolean };

/**
 * Sorts a delivered group. `isSettled`: used or dropped before; `isInHand`: used since the last
 * checkpoint or in the batch being collected (its delivery is not acked yet).
 */
export function judgeGroup(
  group: ScoredGroup,
  known: {
    readonly limits: GroupLimits;
    readonly maxPolicyLag: number;
    readonly isSettled: (id: string) => boolean;
    readonly isInHand: (id: string) => boolean;
  },
): GroupVerdict {
  const invalid = invalidGroupReason(group, known.limits);
  if (invalid !== undefined) return { _tag: "Invalid", reason: invalid };
  const id = group.rollout.group.groupId;
  // Acking a redelivery of a group in hand would ack that group before its checkpoint: hold it too.
  if (known.isInHand(id)) return { _tag: "Drop", reason: "duplicates", hold: true };
  if (known.isSettled(id)) return { _tag: "Drop", reason: "duplicates", hold: false };
  if (known.limits.newestVersion - group.rollout.policyVersion > known.maxPolicyLag)
    return { _tag: "Drop", reason: "stale", hold: false };
  if (!hasSignal(group)) return { _tag: "Drop", reason: "zeroVariance", hold: false };
  return { _tag: "Use" };
}

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

const withoutStall = ({ stalledSince: _, ...progress }: LearnerProgress): LearnerProgress => progress;

/** A few ids for a log line, each cut short: ids come from messages. */
const someIds = (ids: readonly string[]) =>
  ids
    .slice(0, 8)
    .map((id) => id.slice(0, 32))
    .join(", ") + (ids.length > 8 ? `, … (${ids.length})` : "");

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
      const mismatch = environmentMismatch(env, start.tokenizer, config.model.init ?? "a fresh policy");
      if (mismatch) return yield* new RoleFatal({ reason: mismatch });

      // Drops after the checkpoint were settled already: their ids and counts come from the journal.
      const journalDir = learnerDropJournalDir(config);
      const journalGeneration = start.state.dropJournal ?? 0;
      const journaled = yield* readDropJournal(journalDir, journalGeneration);
      const journal = yield* openDropJournal(journalDir, journalGeneration);
      let progress = countDrops(withoutStall(start.state.progress), journaled);
      const used = new Set(start.state.usedGroups);
      const dropped = new Set([
        ...(start.state.droppedGroups ?? []),
        ...journaled.flatMap((d) => (d.id !== undefined && d.reason !== "duplicates" ? [d.id] : [])),
      ]);
      /** Used since the last checkpoint: their deliveries are held, not acked. */
      const usedSinceCheckpoint = new Set<string>();

      // One progress write at a time, each of the newest progress, so the KV value never goes back.
      const progressWrites = yield* Effect.makeSemaphore(1);
      const saveProgress = progressWrites.withPermits(1)(
        Effect.suspend(() => putState(LEARNER_PROGRESS_KEY, progress)),
      );

      // Announce the tokenizer and the architecture, then the weights under a version no follower has passed.
      yield* publishPolicyTokenizer(start.tokenizer);
      yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
      const pointerAtStart = yield* getState(POLICY_KEY);
      const announcement = startingAnnouncement({
        checkpointVersion: progress.policyVersion,
        pointer: pointerAtStart,
        announcedVersion: (yield* getState(LEARNER_PROGRESS_KEY))?.value.policyVersion,
      });
      if (announcement._tag === "Forged") return yield* new RoleFatal({ reason: announcement.reason });
      const pointer = yield* ownPolicyPointer(pointerAtStart);
      progress = { ...progress, policyVersion: announcement.version };
      actor.setPolicyVersion(progress.policyVersion);
      yield* saveProgress;
      if (announcement._tag === "Publish") {
        yield* pointer.publish(progress.policyVersion, yield* Effect.promise(() => policy.exportWeights()));
      }
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
      /** Deliveries settled by the learner only once a checkpoint covers them. */
      let held: WorkItem<"scored">[] = [];
      const holdingTooMany = () => held.length + L.groupsPerStep > MAX_HELD_DELIVERIES;
      yield* Effect.forkScoped(
        Effect.repeat(
          Effect.suspend(() => Effect.forEach(held, (item) => item.working, { discard: true })),
          KEEP_ALIVE,
        ),
      );

      const reportStall = (report: StallReport) =>
        Effect.gen(function* () {
          progress = { ...progress, stalledSince: report.since };
          yield* saveProgress;
          const s = report.sinceLastStep;
          yield* Effect.logError(
            `learner stalled: no step completed for ${Math.round(report.stalledMs / 1000)} s ` +
              `(learner.stallWarnMs ${L.stallWarnMs}). Since the last step: ${s.fetched} groups fetched; dropped ` +
              `${s.stale} stale, ${s.zeroVariance} zero-variance, ${s.duplicates} duplicate; ${s.invalid} invalid ` +
              `(dead-lettered); ${s.skippedSteps} steps skipped (non-finite)`,
          );
          yield* publishMessage(subjects.metrics("learner"), "MetricsEvent", {
            source: actor.id,
            step: progress.step,
            values: { "learner.stalledMs": report.stalledMs, "learner.fetchedSinceStep": s.fetched },
            tags: { role: "learner" },
          });
        });
      const stalls = yield* watchForStalls(L.stallWarnMs, reportStall);

      /**
       * Journals the drops (on disk before any is settled), settles them — an invalid group is
       * dead-lettered, with its reason logged by the queue — and counts them.
       */
      const settleDrops = (drops: readonly { item: WorkItem<"scored">; drop: Drop; outcome?: WorkOutcome }[]) =>
        Effect.gen(function* () {
          if (drops.length === 0) return;
          yield* journal.record(drops.map((d) => d.drop));
          progress = countDrops(
            progress,
            drops.map((d) => d.drop),
          );
          for (const { item, drop, outcome } of drops) {
            stalls.dropped(drop.reason);
            if (drop.id !== undefined && drop.reason !== "duplicates") dropped.add(drop.id);
            if (outcome === undefined) held.push(item);
          }
          yield* Effect.forEach(
            drops.flatMap((d) => (d.outcome ? [[d.item, d.outcome] as const] : [])),
            ([item, outcome]) =>
              item
                .settle(outcome)
                .pipe(
                  Effect.catchAll((error) =>
                    Effect.logWarning(
                      `could not settle a dropped group (stream seq ${item.streamSequence}): ${error.message}; ` +
                        "it will be redelivered and counted as a duplicate",
                    ),
                  ),
                ),
            { concurrency: "unbounded", discard: true },
          );
          // Dropped groups return the curator's credits now, not at the next step.
          yield* saveProgress;
        });

      /** Pulls until `groupsPerStep` usable groups are in hand; every other delivery is settled and counted. */
      const collectGroups = Effect.gen(function* () {
        const batch: ScoredGroup[] = [];
        const inBatch = new Set<string>();
        const known = {
          maxPolicyLag: L.maxPolicyLag,
          isSettled: (id: string) => used.has(id) || dropped.has(id),
          isInHand: (id: string) => inBatch.has(id) || usedSinceCheckpoint.has(id),
        };
        while (batch.length < L.groupsPerStep) {
          if (actor.isDraining()) return undefined;
          yield* pointer.check;
          const items = yield* scored.fetch({ max: L.groupsPerStep - batch.length, expiresMs: FETCH_EXPIRES_MS });
          stalls.fetched(items.length);
          const limits: GroupLimits = {
            vocabSize: policy.config.vocabSize,
            maxSeqLen: policy.config.maxSeqLen,
            maxAnswerTokens: config.rollout.maxNewTokens,
            groupSize: config.rollout.groupSize,
            newestVersion: progress.policyVersion,
          };
          const drops: { item: WorkItem<"scored">; drop: Drop; outcome?: WorkOutcome }[] = [];
          for (const item of items) {
            const group = item.body;
            const id = group.rollout.group.groupId;
            const verdict = judgeGroup(group, { ...known, limits });
            if (verdict._tag === "Use") {
              held.push(item);
              batch.push(group);
              inBatch.add(id);
            } else if (verdict._tag === "Invalid") {
              drops.push({ item, drop: { reason: "invalid" }, outcome: WorkOutcome.reject(verdict.reason) });
            } else {
              const drop = { reason: verdict.reason, id };
              drops.push(verdict.hold ? { item, drop } : { item, drop, outcome: WorkOutcome.done });
            }
          }
          yield* settleDrops(drops);
        }
        return batch;
      });

      const checkpoint = Effect.gen(function* () {
        const state: LearnerState = {
          progress: withoutStall(progress),
          usedGroups: [...used],
          droppedGroups: [...dropped],
          dropJournal: journal.generation() + 1,
        };
        yield* Effect.promise(() =>
          saveCheckpoint(learnerCheckpointDir(config), {
            policy,
            optimizer,
            step: progress.step,
            tokenizer: start.tokenizer,
            trainerState: state,
          }),
        );
        // The checkpoint holds the journal's drops now: the next generation starts empty.
        yield* journal.rotate;
        const settled = held;
        held = [];
        usedSinceCheckpoint.clear();
        yield* Effect.forEach(settled, (item) => item.settle(WorkOutcome.done), { discard: true });
      });

      /** An update that was not applied (non-finite numbers): counted and logged; its groups count as consumed. */
      const skipStep = (groups: readonly ScoredGroup[], reason: string) =>
        Effect.gen(function* () {
          progress = { ...progress, skippedSteps: progress.skippedSteps + 1 };
          stalls.skipped();
          yield* Effect.logError(
            `learner step ${progress.step + 1} NOT APPLIED: ${reason}. Its ${groups.length} groups ` +
              `(${someIds(groups.map((g) => g.rollout.group.groupId))}) count as consumed; ` +
              `${progress.skippedSteps} steps skipped so far`,
          );
          yield* publishMessage(subjects.metrics("learner"), "MetricsEvent", {
            source: actor.id,
            step: progress.step,
            values: { "learner.skippedSteps": progress.skippedSteps, "learner.consumed": progress.consumed },
            tags: { role: "learner" },
          });
          yield* saveProgress;
        });

      return Effect.gen(function* () {
        while (progress.step < L.totalSteps) {
          // Durations for bench/pipeline.ts: waiting for groups (fetching included), updating, publishing, checkpointing.
          const collectStarted = performance.now();
          const groups = yield* collectGroups;
          if (!groups) return yield* Effect.logInfo("learner drained; unsettled groups will be redelivered");
          const collectMs = performance.now() - collectStarted;
          const started = Date.now();
          // The update blocks this process's event loop for seconds: announced first, so status shows it busy.
          const stats = yield* actor.busy(
            `GRPO update (step ${progress.step + 1})`,
            Effect.promise(() =>
              grpoUpdate(policy, optimizer, reference, toGrpoBatch(groups), grpoSettingsFor(config)),
            ),
          );
          const updateMs = Date.now() - started;
          for (const g of groups) {
            used.add(g.rollout.group.groupId);
            usedSinceCheckpoint.add(g.rollout.group.groupId);
          }
          progress = { ...progress, consumed: progress.consumed + groups.length };
          if (stats.skipped !== undefined) {
            yield* skipStep(groups, stats.skipped);
            if (holdingTooMany()) yield* checkpoint;
            continue;
          }
          stalls.stepCompleted();
          let publishMs = 0;
          const step = progress.step + 1;
          const last = step === L.totalSteps;
          progress = { ...withoutStall(progress), step };
          if (step % L.publishEvery === 0 || last) {
            const version = progress.policyVersion + 1;
            const weights = yield* Effect.promise(() => policy.exportWeights());
            // The progress announces the version before the pointer does: followers refuse a pointer ahead of it.
            progress = { ...progress, policyVersion: version };
            yield* saveProgress;
            // In the loop, not behind it: a version announced later would make every group one step
            // staler (a background publish here dropped 19 % of groups as stale instead of none).
            const publishStarted = performance.now();
            yield* pointer.publish(version, weights);
            publishMs = performance.now() - publishStarted;
            actor.setPolicyVersion(version);
          }
          const checkpointStarted = performance.now();
          if (step % L.checkpointEvery === 0 || last || holdingTooMany()) yield* checkpoint;
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
              "learner.invalid": progress.invalid,
              "learner.skippedSteps": progress.skippedSteps,
              "learner.policyVersion": progress.policyVersion,
            },
            tags: { role: "learner" },
          });
          // Done only once the final version is published and checkpointed.
          progress = { ...progress, done: last };
          yield* saveProgress;
        }
        yield* stalls.stop;
        progress = { ...progress, done: true };
        yield* saveProgress;
        yield* Effect.logInfo(`learner done: ${progress.step} steps, policy version ${progress.policyVersion}`);
        // The experiment ends with the learner; with evaluators, once the final policy is evaluated.
        if (config.actors.evaluator > 0) {
          yield* Effect.logInfo("waiting for the final evaluation");
          for (;;) {
            yield* pointer.check;
            const evaluation = yield* getState(EVALUATION_DONE_KEY);
            if (evaluation && evaluation.value.finalVersion >= progress.policyVersion) break;
            if (actor.isDraining()) return;
            yield* Effect.sleep(Duration.seconds(1));
          }
        }
      });
    }),
};
