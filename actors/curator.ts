/**
 * curator: picks training prompts (`curation.strategy`) and keeps at most `curation.maxGroupsInFlight` prompt groups in
 * the pipeline (credit-based flow control, so queues stay short and rollouts stay fresh).
 *
 * Credits come back as groups are settled: used, dropped as stale or zero-variance by the learner
 * (its progress in KV), or dead-lettered on any of the pipeline's queues — counted by the group each
 * dead letter names, once per group and only for groups this curator issued, so garbage on the
 * queues (which names no group, or one never issued) returns no credit, and neither does a dead
 * letter of another role's queue. Group ids are `g<sequence>` and the
 * prompt of a sequence number is a pure function of the seed, so a restarted curator republishes
 * the same group under the same msgID (a no-op) and continues from its cursor in KV.
 *
 * Subjects: publishes PromptGroup to the `prompts` work queue; reads KV `learner-progress` (with
 * `curation.strategy: cit` also KV `policy` and the weights: actors/cit-curation.ts), writes KV
 * `curator-cursor`.
 */
import { Duration, Effect, Option, Queue } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import type { EnvPrompt } from "../envs/index.ts";
import {
  Experiment,
  getState,
  MetricsEventMessage,
  publishMessage,
  publishWorkAll,
  putState,
  readDeadLetteredGroups,
  watchState,
} from "../messaging/index.ts";
import { citCuration, citPrompts } from "./cit-curation.ts";
import { experimentEnvironment, hash32 } from "./environment.ts";
import {
  balancedPrompts,
  HandedOut,
  memoByEnvironment,
  type PromptChooser,
  type PromptSource,
  type PromptStrategy,
  publishPoolChecks,
  trainingPool,
} from "./prompt-choice.ts";
import type { RoleDefinition } from "./runtime.ts";
import {
  CURATOR_CURSOR_KEY,
  LEARNER_PROGRESS_KEY,
  type LearnerProgress,
  PIPELINE_QUEUES,
  PROMPTS_QUEUE,
  type PromptGroup,
} from "./topology.ts";

/** How often dead letters are read when no learner progress arrives (they do not announce themselves). */
const RECOUNT_EVERY = Duration.seconds(2);

/** Uniform sampling: the prompt of group `sequence` depends only on the seed (deterministic across restarts). */
export const uniformPrompt = (prompts: readonly EnvPrompt[], seed: number, sequence: number): EnvPrompt =>
  prompts[hash32(`${seed}:${sequence}`) % prompts.length]!;

/** The strategies `curation.strategy` names: one entry here per literal its schema allows. */
export const PROMPT_STRATEGIES: Readonly<Record<ExperimentConfig["curation"]["strategy"], PromptStrategy>> = {
  uniform:
    (pool, _env, { seed }) =>
    (sequence) =>
      uniformPrompt(pool, seed, sequence),
  balanced: balancedPrompts,
  cit: citPrompts,
};

const choosers = new WeakMap<PromptSource, Map<string, PromptChooser>>();

/**
 * The prompt of each group of `config` over `env`, from the checked training pool. Made once per
 * environment and settings: a balanced stream remembers what it handed out, and a new one replays.
 */
export const promptChooser = (env: PromptSource, config: ExperimentConfig): PromptChooser => {
  const { curation, seed } = config;
  const key = `${curation.strategy}:${seed}:${curation.tailShare}:${curation.checks}:${curation.minFacts}:${JSON.stringify(curation.cit)}`;
  return memoByEnvironment(choosers, env, key, () =>
    PROMPT_STRATEGIES[curation.strategy](trainingPool(env, curation), env, { seed, curation }),
  );
};

/** The sequence number of group id `g<sequence>`, or undefined for any other id. */
export const groupSequence = (groupId: string): number | undefined => {
  const match = /^g(0|[1-9]\d{0,14})$/.exec(groupId);
  return match ? Number(match[1]) : undefined;
};

/**
 * Adds to `settled` the dead-lettered group ids that name a group issued so far (sequence below
 * `published`); anything else (garbage, a forged or future id) is ignored. A set: each group once.
 */
export const addDeadLetteredGroups = (settled: Set<string>, groupIds: Iterable<string>, published: number): void => {
  for (const id of groupIds) {
    const sequence = groupSequence(id);
    if (sequence !== undefined && sequence < published) settled.add(id);
  }
};

/** Groups that left the pipeline: every group ends used, stale, zero-variance, off-policy or dead-lettered. */
export const settledGroups = (progress: LearnerProgress | undefined, deadLettered: number): number =>
  (progress ? progress.consumed + progress.stale + progress.zeroVariance + progress.offPolicy : 0) + deadLettered;

/**
 * The prompt group of sequence number `sequence`: id `g<sequence>`, its prompt picked by
 * `curation.strategy` from the checked training pool, a pure function of the seed and the sequence.
 */
export const promptGroupAt = (env: PromptSource, config: ExperimentConfig, sequence: number): PromptGroup => {
  const prompt = promptChooser(env, config)(sequence);
  return {
    groupId: `g${sequence}`,
    promptId: prompt.id,
    suite: prompt.suite,
    prompt: prompt.text,
    ...(prompt.focus ? { focus: prompt.focus.entity } : {}),
    meta: { split: prompt.split, ...(prompt.bucket === undefined ? {} : { bucket: prompt.bucket }) },
    groupSize: config.rollout.groupSize,
    createdAt: Date.now(),
    ...(prompt.picture
      ? { picture: { ...prompt.picture, pixels: prompt.picture.pixels as Uint8Array<ArrayBuffer> } }
      : {}),
  };
};

export const curatorRole: RoleDefinition = {
  name: "curator",
  description: "picks training prompts; keeps at most curation.maxGroupsInFlight prompt groups in flight",
  gives: [PROMPTS_QUEUE],
  writes: [CURATOR_CURSOR_KEY],
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      const env = yield* experimentEnvironment(config);
      yield* publishPoolChecks(actor.id, config, env);
      const progressUpdates = yield* watchState(LEARNER_PROGRESS_KEY);
      let published = (yield* getState(CURATOR_CURSOR_KEY))?.value.published ?? 0;
      let progress = (yield* getState(LEARNER_PROGRESS_KEY))?.value;

      const deadLettered = new Set<string>();
      let deadLettersRead = 0;
      // Only dead letters stored since the last read are fetched; the set only grows, so reading at
      // most every RECOUNT_EVERY gives fewer credits for a moment, never more.
      const readDeadLetters = Effect.gen(function* () {
        const { groupIds, lastSeq } = yield* readDeadLetteredGroups(PIPELINE_QUEUES, deadLettersRead);
        addDeadLetteredGroups(deadLettered, groupIds, published);
        deadLettersRead = lastSeq;
      });
      yield* readDeadLetters;
      let readAt = Date.now();
      const { subjects } = yield* Experiment;
      const report = (values: Record<string, number>) =>
        publishMessage(subjects.metrics(actor.id), MetricsEventMessage, {
          source: actor.id,
          ...(progress ? { step: progress.step } : {}),
          values,
          tags: { role: "curator" },
        });
      const curateIfDue = yield* citCuration(config, env, actor, report, progress);
      const handedOut = new HandedOut();

      return Effect.gen(function* () {
        while (!progress?.done && !actor.isDraining()) {
          if (Date.now() - readAt >= Duration.toMillis(RECOUNT_EVERY)) {
            yield* readDeadLetters;
            readAt = Date.now();
          }
          yield* curateIfDue(progress);
          const inFlight = published - settledGroups(progress, deadLettered.size);
          const credits = config.curation.maxGroupsInFlight - inFlight;
          if (credits > 0) {
            // All the credits' groups at once, acks awaited together; a restart republishes from the cursor (no-ops).
            const groups = Array.from({ length: credits }, (_, i) => promptGroupAt(env, config, published + i));
            yield* actor.inHand(
              publishWorkAll(
                PROMPTS_QUEUE,
                groups.map((group) => ({ body: group, msgId: group.groupId })),
              ),
            );
            published += credits;
            yield* putState(CURATOR_CURSOR_KEY, { published });
            actor.recordProcessed(credits);
            handedOut.add(groups);
            yield* report(handedOut.metrics());
          }
          const next = yield* Queue.take(progressUpdates).pipe(Effect.timeout(RECOUNT_EVERY), Effect.option);
          if (Option.isSome(next)) progress = next.value.value;
          const newer = yield* Queue.takeAll(progressUpdates);
          for (const entry of newer) progress = entry.value;
        }
        yield* Effect.logInfo(`curator stops: ${published} groups published`);
      });
    }),
};
