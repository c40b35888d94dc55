/**
 * The rollout role's work, written once for both runners (the rollout actor and the serial runner):
 * read each prompt group with the policy's tokenizer, sample G answers to each, and — with
 * `rewards.reference: initial-policy` — answer each prompt once with the frozen initial policy, the
 * relevance judge's reference.
 *
 * Every random choice is a function of (seed, group id, policy version, answer): answer a of group g
 * sampled by version v has its own stream, so a group's answers do not depend on which batch, actor
 * or order it was sampled in. The actor runner differs from the serial order only in scheduling
 * (which version samples which group). A reference answer is seeded by its prompt alone.
 */
import { Effect, Either } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import {
  checkDecoding,
  evidencePromptTokens,
  type Policy,
  type SampledSequence,
  type TextFormat,
} from "../models/index.ts";
import { hash32 } from "./environment.ts";
import type { EvidenceSource } from "./evidence.ts";
import type { Answer, PromptGroup, RolloutGroup } from "./topology.ts";

/** The seed of one answer's sampling stream. */
export const answerSeed = (seed: number, groupId: string, version: number, answer: number): number =>
  hash32(`${seed}:${groupId}:v${version}:a${answer}`);

/** The seed of a prompt's reference answer (the initial policy's, sampled once per prompt). */
export const referenceSeed = (seed: number, promptId: string): number => hash32(`reference:${seed}:${promptId}`);

/** The seed of a group's retrieval request (query dropout, with `rollout.retrieval.queryDropout`). */
export const retrievalSeed = (seed: number, groupId: string): number => hash32(`retrieve:${seed}:${groupId}`);

/** A prompt group its policy cannot read (a picture of the wrong size, a picture for a text-only policy). */
export interface UnreadablePrompt {
  readonly group: PromptGroup;
  readonly reason: string;
}

export interface RolloutBatch {
  /** One rollout group per readable prompt group, in order. */
  readonly rollouts: readonly RolloutGroup[];
  readonly unreadable: readonly UnreadablePrompt[];
  /** `rollout.*` figures for the metrics stream. */
  readonly metrics: Readonly<Record<string, number>>;
}

/**
 * More answers than a rollout group can carry under NATS' max_payload (each answer is at least a few
 * bytes a token): a group asking for more is refused alone instead of allocating for it.
 */
export const MAX_GROUP_SIZE = 1024;

/**
 * Why the policy cannot sample a read prompt, or undefined: one that fills its whole context, or an
 * absurd group size, would fail the batch's sampling call — and with it every other group of the batch.
 */
const unsampleable = (group: PromptGroup, tokens: Int32Array, maxSeqLen: number): string | undefined => {
  if (tokens.length >= maxSeqLen)
    return `its ${tokens.length} tokens leave no room to answer in the policy's ${maxSeqLen}-token context`;
  if (group.groupSize > MAX_GROUP_SIZE) return `it asks for ${group.groupSize} answers, over ${MAX_GROUP_SIZE}`;
  return undefined;
};

const toAnswer = (sequence: SampledSequence, text: string): Answer => ({
  tokens: sequence.tokens as Int32Array<ArrayBuffer>,
  logProbs: sequence.logProbs as Float32Array<ArrayBuffer>,
  text,
  finishReason: sequence.finishReason,
  ...(sequence.policyLogProbs === undefined
    ? {}
    : { policyLogProbs: sequence.policyLogProbs as Float32Array<ArrayBuffer> }),
});

/**
 * The rollout work over one policy format. `initialPolicy` loads the frozen initial policy (version 0)
 * the first time a reference is needed; references are cached per prompt. With `rollout.retrieval`,
 * `evidence` (required then) gives each prompt its documents, prepended before sampling; a prompt
 * whose evidence does not come is sampled without it and counted. With `rollout.decoding` cfg or
 * cd-k, answers are decoded from two streams of the policy — the expert reading the prompt with its
 * evidence, the amateur the prompt alone — and their group is marked off-policy (`decoding`, each
 * answer's `policyLogProbs`); `promptTokens` is the expert's, the context the learner scores them in.
 */
export function makeRolloutWork<E, R>(
  config: ExperimentConfig,
  format: TextFormat,
  initialPolicy: Effect.Effect<Policy, E, R>,
  evidence?: EvidenceSource,
) {
  const decoding = config.rollout.decoding;
  const retrieval = config.rollout.retrieval;
  if (retrieval !== undefined && evidence === undefined)
    throw new Error("rollout.retrieval is set: the rollout work needs an evidence source (a retriever)");
  const sampling = {
    temperature: config.rollout.temperature,
    topP: config.rollout.topP,
    maxNewTokens: config.rollout.maxNewTokens,
    stopTokens: format.stopTokens,
  };
  const references = new Map<string, string>();
  let initial: Policy | undefined;

  /** The initial policy's answer to each prompt not answered yet (one batched call). */
  const answerReferences = (read: readonly { group: PromptGroup; tokens: Int32Array }[]) =>
    Effect.gen(function* () {
      if (config.rewards.reference !== "initial-policy") return;
      const missing = [...new Map(read.map((r) => [r.group.promptId, r])).values()].filter(
        (r) => !references.has(r.group.promptId),
      );
      if (missing.length === 0) return;
      initial ??= yield* initialPolicy;
      const policy = initial;
      const result = yield* Effect.promise(() =>
        policy.sample(
          missing.map((r) => r.tokens),
          { ...sampling, seed: 0, rowSeeds: missing.map((r) => referenceSeed(config.seed, r.group.promptId)) },
        ),
      );
      for (const [i, r] of missing.entries()) {
        references.set(r.group.promptId, format.answerText(result.sequences[i]!.tokens));
      }
    });

  /** Samples every readable group of `groups` with `policy` (announced as `version`). */
  const rollOut = (groups: readonly PromptGroup[], policy: Policy, version: number, actor: string) =>
    Effect.gen(function* () {
      // A k larger than this policy's vocabulary is a config error the schema cannot see.
      yield* Effect.sync(() => checkDecoding(decoding, policy.config.vocabSize, "rollout.decoding"));
      const guided = decoding.kind !== "plain";
      const read: { group: PromptGroup; tokens: Int32Array<ArrayBuffer>; amateur: Int32Array }[] = [];
      const unreadable: UnreadablePrompt[] = [];
      const retrievalStarted = performance.now();
      const found =
        retrieval === undefined || evidence === undefined
          ? undefined
          : yield* evidence(groups.map((g) => ({ query: g.prompt, seed: retrievalSeed(config.seed, g.groupId) })));
      const retrievalMs = performance.now() - retrievalStarted;
      const misses = found?.flatMap((e) => ("missed" in e ? [e.missed] : [])) ?? [];
      if (misses.length > 0)
        yield* Effect.logWarning(
          `retrieval missed for ${misses.length} of ${groups.length} prompts (sampled without evidence): ${misses[0]!.slice(0, 200)}`,
        );
      // The answer keeps rollout.maxNewTokens positions: documents that would take them are dropped.
      const evidenceBudget = policy.config.maxSeqLen - config.rollout.maxNewTokens;
      let documentsUsed = 0;
      const promptTokensOf = (group: PromptGroup, i: number): Int32Array => {
        const e = found?.[i];
        if (e === undefined || "missed" in e) return format.promptTokens(group.prompt, group.picture);
        const conditioned = evidencePromptTokens(format, group.prompt, e.documents, evidenceBudget, group.picture);
        documentsUsed += conditioned.documents;
        return conditioned.tokens;
      };
      for (const [i, group] of groups.entries()) {
        // Guided decoding: the expert reads the prompt with its evidence, the amateur the prompt alone.
        const amateur = Either.try(() => format.promptTokens(group.prompt, group.picture));
        const tokens = Either.flatMap(amateur, () => Either.try(() => promptTokensOf(group, i)));
        const why = Either.isLeft(tokens)
          ? tokens.left instanceof Error
            ? tokens.left.message
            : String(tokens.left)
          : unsampleable(group, tokens.right, policy.config.maxSeqLen);
        if (why === undefined && Either.isRight(tokens) && Either.isRight(amateur)) {
          read.push({ group, tokens: tokens.right as Int32Array<ArrayBuffer>, amateur: amateur.right });
        } else {
          // Ids come from the message: cut short for the log line and the dead letter's header.
          const [prompt, id] = [group.promptId.slice(0, 80), group.groupId.slice(0, 80)];
          unreadable.push({ group, reason: `prompt ${prompt} (group ${id}) cannot be read by this policy: ${why}` });
        }
      }
      const nothingRead: RolloutBatch = { rollouts: [], unreadable, metrics: {} };
      if (read.length === 0) return nothingRead;
      const startedAt = Date.now();
      const rows = read.flatMap((r) => Array.from({ length: r.group.groupSize }, () => r.tokens));
      const rowSeeds = read.flatMap((r) =>
        Array.from({ length: r.group.groupSize }, (_, a) => answerSeed(config.seed, r.group.groupId, version, a)),
      );
      const guidance = guided
        ? { decoding, unconditioned: read.flatMap((r) => Array.from({ length: r.group.groupSize }, () => r.amateur)) }
        : undefined;
      const result = yield* Effect.promise(() =>
        policy.sample(rows, { ...sampling, seed: 0, rowSeeds, ...(guidance ? { guidance } : {}) }),
      );
      yield* answerReferences(read.map((r) => ({ group: r.group, tokens: r.amateur })));
      const finishedAt = Date.now();
      let row = 0;
      const rollouts = read.map(({ group, tokens }): RolloutGroup => {
        const answers = result.sequences
          .slice(row, row + group.groupSize)
          .map((sequence) => toAnswer(sequence, format.answerText(sequence.tokens)));
        row += group.groupSize;
        const reference = references.get(group.promptId);
        return {
          group,
          promptTokens: tokens,
          answers,
          policyVersion: version,
          timings: { startedAt, finishedAt },
          actor,
          ...(reference === undefined ? {} : { reference }),
          ...(guided ? { decoding } : {}),
        };
      });
      const metrics = {
        "rollout.groups": rollouts.length,
        "rollout.tokens": result.timings.generatedTokens,
        "rollout.tokensPerSecond": (1000 * result.timings.generatedTokens) / Math.max(1, result.timings.totalMs),
        "rollout.sampleMs": result.timings.totalMs,
        "rollout.batchMs": finishedAt - startedAt,
        "rollout.startedAt": startedAt,
        "rollout.unreadable": unreadable.length,
        // The cost of evidence: prompt tokens each answer is conditioned on (with evidence, far more).
        "rollout.promptTokens": read.reduce((n, r) => n + r.tokens.length, 0) / read.length,
        ...(found === undefined
          ? {}
          : {
              "rollout.retrieval.requests": groups.length,
              "rollout.retrieval.missed": misses.length,
              "rollout.retrieval.documents": documentsUsed / read.length,
              "rollout.retrieval.ms": retrievalMs,
            }),
      };
      const batch: RolloutBatch = { rollouts, unreadable, metrics };
      return batch;
    });

  return {
    rollOut,
    /** Frees the initial policy, if it was loaded. */
    dispose: () => initial?.dispose(),
  };
}

export type RolloutWork = ReturnType<typeof makeRolloutWork>;
