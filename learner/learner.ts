/**
 * The learner role, written once for both runners. `runLearner` is the loop — collect → GRPO update
 * → publish → checkpoint — over a `LearnerLink` that says where groups come from and where versions
 * and checkpoints go: the learner actor's link speaks NATS (learner-actor.ts: work-queue deliveries,
 * the drop journal, the policy pointer), the serial runner's calls the other roles in-process
 * (pipeline/serial-runner.ts). Timings and metrics live in the links, not in the loop.
 *
 * The ledger is the learner's bookkeeping, the same in both: the step, the policy version, what was
 * used and dropped (and why), and `judgeGroup`'s verdict on each delivered group.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs";
import { Effect } from "effect";
import { type LearnerProgress, NO_LEARNER_PROGRESS, type ScoredGroup, tryIo } from "../actors/index.ts";
import { type ExperimentConfig, huggingFaceDir } from "../configs/index.ts";
import { type Environment, tokenizerForVocabulary } from "../envs/index.ts";
import {
  buildPolicy,
  imageTokenizerFromPictures,
  imageTokenizerOfRecord,
  importHuggingFaceModel,
  loadCheckpoint,
  modelConfigFor,
  type Policy,
  policyStartingFrom,
  recoverInterruptedSave,
  saveCheckpoint,
  tokenizerRecordFor,
} from "../models/index.ts";
import { countDrops, type Drop, type DropReason } from "./drop-journal.ts";
import { type GroupLimits, invalidGroupReason } from "./group-validation.ts";
import { truncatedImportanceWeights } from "./grpo.ts";
import { type GrpoBatch, type GrpoSettings, type GrpoStats, grpoUpdate } from "./grpo-step.ts";
import type { Lineage } from "./lineage.ts";

/** What a learner checkpoint carries besides weights and Adam state. */
export interface LearnerState {
  readonly progress: LearnerProgress;
  /** Ids of the groups whose answers are in the checkpointed weights. */
  readonly usedGroups: readonly string[];
  /** Ids of the groups dropped as stale or zero-variance (and acked) before this checkpoint. */
  readonly droppedGroups?: readonly string[];
  /** The drop journal generation that continues this checkpoint (absent in older checkpoints: 0). */
  readonly dropJournal?: number;
  /** The serial runner's curator cursor: prompt groups issued so far (the actor runner keeps it in KV). */
  readonly curatorCursor?: number;
}

export const learnerCheckpointDir = (config: ExperimentConfig) =>
  join(config.output.dir, config.experiment, "checkpoints", "learner");

/**
 * The policy to start from, with the tokenizer record it was trained with (saved in every checkpoint
 * and published for the rollout actors): the learner's own checkpoint (resume), else the initial policy.
 */
export async function startingPolicy(config: ExperimentConfig, env: Environment, optimizer: tf.AdamOptimizer) {
  const resumeDir = learnerCheckpointDir(config);
  // A learner killed in the middle of saving left its checkpoint beside the directory, not in it.
  const recoveredFrom = await recoverInterruptedSave(resumeDir);
  if (existsSync(join(resumeDir, "manifest.json"))) {
    const resumed = await loadCheckpoint(resumeDir, { optimizer });
    const state = resumed.trainerState as LearnerState;
    // Older checkpoints lack the newer counts.
    return {
      policy: resumed.policy,
      tokenizer: resumed.tokenizer,
      state: { ...state, progress: { ...NO_LEARNER_PROGRESS, ...state.progress } },
      resumed: true,
      recoveredFrom,
    };
  }
  const fresh: LearnerState = { progress: NO_LEARNER_PROGRESS, usedGroups: [] };
  return { ...(await initialPolicy(config, env)), state: fresh, resumed: false, recoveredFrom };
}

/** The policy at `path` with its tokenizer record: a factrl checkpoint, or `hf:DIR` a Hugging Face model. */
export async function loadPolicyFrom(path: string): Promise<{ readonly policy: Policy; readonly tokenizer: unknown }> {
  const hfDir = huggingFaceDir(path);
  return hfDir !== undefined ? importHuggingFaceModel(hfDir) : loadCheckpoint(path);
}

/**
 * The policy version 0 is (the same every time for a config): `model.init` (a checkpoint, or `hf:DIR`
 * a Hugging Face model; converted to the configured backbone), else a fresh one over the environment's
 * vocabulary.
 */
export async function initialPolicy(
  config: ExperimentConfig,
  env: Environment,
): Promise<{ readonly policy: Policy; readonly tokenizer: unknown }> {
  const m = config.model;
  const motSettings = m.backbone === "mot" ? { untie: m.untie, modalities: m.modalities } : {};
  if (m.init) {
    const loaded = await loadPolicyFrom(m.init);
    const policy = await policyStartingFrom(loaded.policy, m.backbone, m.init, motSettings);
    if (policy !== loaded.policy) loaded.policy.dispose();
    return { policy, tokenizer: loaded.tokenizer };
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
  return { policy, tokenizer: tokenizerRecordFor(m.backbone, tokenizer, image) };
}

/** Saves the learner's checkpoint: weights, Adam state, the tokenizer record and the ledger's state. */
export const saveLearnerCheckpoint = (
  config: ExperimentConfig,
  policy: Policy,
  optimizer: tf.AdamOptimizer,
  tokenizer: unknown,
  state: LearnerState,
) =>
  tryIo(`saving the learner checkpoint of step ${state.progress.step} to ${learnerCheckpointDir(config)}`, () =>
    saveCheckpoint(learnerCheckpointDir(config), {
      policy,
      optimizer,
      step: state.progress.step,
      tokenizer,
      trainerState: state,
    }),
  );

/** `startingPolicy` as an effect: a checkpoint that cannot be read fails as IoFailed naming it. */
export const loadStartingPolicy = (config: ExperimentConfig, env: Environment, optimizer: tf.AdamOptimizer) =>
  tryIo(
    `loading the starting policy (${learnerCheckpointDir(config)}, else ${config.model.init ?? "a fresh policy"})`,
    () => startingPolicy(config, env, optimizer),
  );

/** Why the policy cannot read the environment's prompts, if it cannot: pictures need an image tokenizer. */
export function environmentMismatch(env: Environment, tokenizer: unknown, source: string): string | undefined {
  if (!env.modalities.includes("image") || imageTokenizerOfRecord(tokenizer, source) !== undefined) return undefined;
  return (
    `environment ${env.kind} has pictures, but the policy (${source}) has no image tokenizer: start from a policy ` +
    "that reads pictures (e.g. models/checkpoints/quickstart-vision, made by `factrl pretrain configs/pretrain-vision.yaml`)"
  );
}

/** Whether a group's answers were decoded by CFG or CD-K rather than sampled from the policy. */
export const isOffPolicy = (group: ScoredGroup): boolean => group.rollout.decoding !== undefined;

/**
 * Flattens scored groups into the GRPO batch (answers group after group). Off-policy answers (only
 * present under `learner.offPolicy.mode: tis`; `tisCap` is its cap) enter with the sampling policy's
 * own log-probs as ρ's denominator and truncated importance weights min(π_old / μ, cap).
 */
export const toGrpoBatch = (groups: readonly ScoredGroup[], tisCap = 2): GrpoBatch => {
  const answers = groups.flatMap((g) => g.rollout.answers);
  const anyOffPolicy = groups.some(isOffPolicy);
  const policyLogProbs = (a: ScoredGroup["rollout"]["answers"][number]) => a.policyLogProbs ?? a.logProbs;
  return {
    prompts: groups.flatMap((g) => g.rollout.answers.map(() => g.rollout.promptTokens)),
    answers: answers.map((a) => a.tokens),
    behaviourLogProbs: answers.map(policyLogProbs),
    ...(anyOffPolicy
      ? {
          importanceWeights: groups.flatMap((g) =>
            g.rollout.answers.map((a) =>
              isOffPolicy(g)
                ? truncatedImportanceWeights(policyLogProbs(a), a.logProbs, tisCap)
                : new Float32Array(a.tokens.length).fill(1),
            ),
          ),
        }
      : {}),
    rewards: groups.flatMap((g) => g.scores.map((s) => s.reward)),
    groupSize: groups[0]?.rollout.group.groupSize ?? 1,
  };
};

/** A group whose rewards are not all equal: GRPO's advantages are all zero otherwise (no signal). */
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
    /** `learner.offPolicy.mode`: drop marked (CFG / CD-K) groups, or train on them with TIS. */
    readonly offPolicy: "drop" | "tis";
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
  if (isOffPolicy(group) && known.offPolicy === "drop") return { _tag: "Drop", reason: "offPolicy", hold: false };
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

/** An update's statistics with its wall time and its process's CPU time (all threads), in ms. */
export interface TimedUpdate {
  readonly stats: GrpoStats;
  readonly wallMs: number;
  readonly cpuMs: number;
}

/**
 * One GRPO update on scored groups, as both runners make it, timed two ways: CPU above wall time
 * means other threads helped; below it, the process waited for a core (two compute processes on
 * two cores, say).
 */
export async function updateOnGroups(
  config: ExperimentConfig,
  policy: Policy,
  optimizer: tf.AdamOptimizer,
  reference: Policy | undefined,
  groups: readonly ScoredGroup[],
): Promise<TimedUpdate> {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const stats = await grpoUpdate(
    policy,
    optimizer,
    reference,
    toGrpoBatch(groups, config.learner.offPolicy.cap),
    grpoSettingsFor(config),
  );
  const cpu = process.cpuUsage(cpuStarted);
  return { stats, wallMs: performance.now() - started, cpuMs: (cpu.user + cpu.system) / 1000 };
}

export const withoutStall = ({ stalledSince: _, ...progress }: LearnerProgress): LearnerProgress => progress;

/** The learner's bookkeeping: progress, the groups used and dropped, and the verdict on each delivered group. */
export function makeLedger(
  config: ExperimentConfig,
  start: LearnerState,
  journaled: readonly Drop[] = [],
  lineage?: Lineage,
) {
  let progress = countDrops(withoutStall(start.progress), journaled);
  const used = new Set(start.usedGroups);
  const dropped = new Set([
    ...(start.droppedGroups ?? []),
    ...journaled.flatMap((d) => (d.id !== undefined && d.reason !== "duplicates" ? [d.id] : [])),
  ]);
  /** Used since the last checkpoint: their deliveries are held, not acked. */
  const usedSinceCheckpoint = new Set<string>();
  return {
    get progress() {
      return progress;
    },
    set progress(next: LearnerProgress) {
      progress = next;
    },
    /** The verdict on a delivered group, given the groups already collected for this step (traced when dropped). */
    judge: (group: ScoredGroup, limits: GroupLimits, inBatch: ReadonlySet<string>) => {
      const verdict = judgeGroup(group, {
        limits,
        maxPolicyLag: config.learner.maxPolicyLag,
        offPolicy: config.learner.offPolicy.mode,
        isSettled: (id) => used.has(id) || dropped.has(id),
        isInHand: (id) => inBatch.has(id) || usedSinceCheckpoint.has(id),
      });
      if (verdict._tag === "Invalid") lineage?.dropped(group, "invalid", verdict.reason);
      else if (verdict._tag === "Drop") lineage?.dropped(group, verdict.reason);
      return verdict;
    },
    /** The groups of an update started from version `trainedOn`: traced as used at `step`, or skipped. */
    traceTrained: (groups: readonly ScoredGroup[], trainedOn: number, step?: number) =>
      lineage?.trained(groups, trainedOn, step),
    /** Counts drops (the journal has them on disk first, in the actor runner). */
    recordDrops: (drops: readonly Drop[]) => {
      progress = countDrops(progress, drops);
      for (const drop of drops) if (drop.id !== undefined && drop.reason !== "duplicates") dropped.add(drop.id);
    },
    /** The groups of an update (applied or skipped): consumed. */
    recordUsed: (groups: readonly ScoredGroup[]) => {
      for (const g of groups) {
        used.add(g.rollout.group.groupId);
        usedSinceCheckpoint.add(g.rollout.group.groupId);
      }
      progress = { ...progress, consumed: progress.consumed + groups.length };
    },
    /** The state a checkpoint saves; the groups used since the last one are then covered by it. */
    checkpointed: (extra: Partial<LearnerState> = {}): LearnerState => {
      usedSinceCheckpoint.clear();
      return { progress: withoutStall(progress), usedGroups: [...used], droppedGroups: [...dropped], ...extra };
    },
    /** The limits a delivered group is validated against. */
    limits: (policy: Policy): GroupLimits => ({
      vocabSize: policy.config.vocabSize,
      maxSeqLen: policy.config.maxSeqLen,
      maxAnswerTokens: config.rollout.maxNewTokens,
      groupSize: config.rollout.groupSize,
      newestVersion: progress.policyVersion,
    }),
  };
}

export type Ledger = ReturnType<typeof makeLedger>;

/** Where the learner loop's groups come from, and where its updates, versions and checkpoints go. */
export interface LearnerLink<E, R> {
  /** `want` usable groups (every other delivery settled and counted), or undefined once asked to stop. */
  readonly collect: (want: number) => Effect.Effect<readonly ScoredGroup[] | undefined, E, R>;
  /** One GRPO update on the groups. */
  readonly update: (groups: readonly ScoredGroup[]) => Effect.Effect<GrpoStats, E, R>;
  /** An update that was not applied (non-finite numbers); its groups count as consumed. */
  readonly skipped: (groups: readonly ScoredGroup[], reason: string) => Effect.Effect<void, E, R>;
  /** Makes the weights version `version` (the ledger's progress already announces it). */
  readonly publish: (version: number) => Effect.Effect<void, E, R>;
  readonly checkpoint: Effect.Effect<void, E, R>;
  /** Whether to checkpoint now even if not due (the actor runner: too many deliveries held). */
  readonly mustCheckpoint: () => boolean;
  /**
   * A step completed (weights published and checkpointed as due): report it. `trainedOn`: the policy
   * version the update started from (a group's lag is measured against it).
   */
  readonly stepped: (stats: GrpoStats, groups: readonly ScoredGroup[], trainedOn: number) => Effect.Effect<void, E, R>;
}

/** The learner loop: until the step budget is spent, or `collect` says stop. Returns whether the budget was spent. */
export const runLearner = <E, R>(config: ExperimentConfig, ledger: Ledger, link: LearnerLink<E, R>) =>
  Effect.gen(function* () {
    const L = config.learner;
    while (ledger.progress.step < L.totalSteps) {
      const groups = yield* link.collect(L.groupsPerStep);
      if (!groups) return false;
      const stats = yield* link.update(groups);
      ledger.recordUsed(groups);
      if (stats.skipped !== undefined) {
        ledger.traceTrained(groups, ledger.progress.policyVersion);
        yield* link.skipped(groups, stats.skipped);
        if (link.mustCheckpoint()) yield* link.checkpoint;
        continue;
      }
      const step = ledger.progress.step + 1;
      const trainedOn = ledger.progress.policyVersion;
      ledger.traceTrained(groups, trainedOn, step);
      const last = step === L.totalSteps;
      ledger.progress = { ...withoutStall(ledger.progress), step };
      if (step % L.publishEvery === 0 || last) {
        const version = ledger.progress.policyVersion + 1;
        ledger.progress = { ...ledger.progress, policyVersion: version };
        yield* link.publish(version);
      }
      if (step % L.checkpointEvery === 0 || last || link.mustCheckpoint()) yield* link.checkpoint;
      // Done only once the final version is published and checkpointed.
      ledger.progress = { ...ledger.progress, done: last };
      yield* link.stepped(stats, groups, trainedOn);
    }
    return true;
  });
