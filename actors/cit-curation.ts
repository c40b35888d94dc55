/**
 * CiT in the RL loop (`curation.strategy: cit`; Xu et al., "CiT: Curation in Training"): every
 * `curation.cit.every` learner steps, and before the first group, the curator embeds the target
 * metadata (each name through every template, averaged) and every prompt of the training pool with
 * the **current** policy (models/ `embedTexts`: mean-pooled final hidden states, L2-normalised),
 * scores each prompt by its highest cosine similarity to a metadata entry, and keeps what `citSelect`
 * keeps. Until the next selection, group n's prompt is the kept prompt at hash(seed:n) — so the choice
 * is a pure function of the seed, n and the policy version the selection was made with.
 *
 * Both runners call `curateByPolicy` (the curator actor with the policy it follows, the serial runner
 * with the live one); `citPrompts` is the strategy `promptChooser` hands out groups with.
 */
import { Duration, Effect } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import {
  citSelect,
  citTargetNames,
  type EnvPrompt,
  ensembleEmbedding,
  fillTemplates,
  maxSimilarities,
} from "../envs/index.ts";
import { embedTexts, type Policy, type TextFormat } from "../models/index.ts";
import { hash32 } from "./environment.ts";
import { followPolicy, type PolicyFollower } from "./policy-sync.ts";
import { publishedTextFormat } from "./policy-tokenizer.ts";
import { memoByEnvironment, type PromptSource, type PromptStrategy, trainingPool } from "./prompt-choice.ts";
import type { ActorContext, ActorServices } from "./runtime.ts";
import { useBackend } from "./tf-backend.ts";
import type { LearnerProgress } from "./topology.ts";

type Curation = ExperimentConfig["curation"];

/** The prompts kept by the last selection (indices into the training pool) and the policy version that chose them. */
interface CitSelection {
  readonly indices: readonly number[];
  readonly version: number;
}

const selections = new WeakMap<PromptSource, Map<string, { current?: CitSelection }>>();

/** The selection shared by the chooser and the curation of one environment and settings. */
const selectionOf = (env: PromptSource, curation: Curation) =>
  memoByEnvironment(
    selections,
    env,
    `${curation.checks}:${curation.minFacts}:${JSON.stringify(curation.cit)}`,
    (): { current?: CitSelection } => ({}),
  );

/** Group n: a kept prompt, uniformly by hash(seed:n). Asking before the first selection is a bug of the runner. */
export const citPrompts: PromptStrategy = (pool, env, { seed, curation }) => {
  const selection = selectionOf(env, curation);
  return (sequence) => {
    const kept = selection.current?.indices;
    if (!kept) throw new Error("curation.strategy cit: a prompt was asked for before the first selection");
    return pool[kept[hash32(`${seed}:${sequence}`) % kept.length]!]!;
  };
};

/**
 * Whether a selection is due at learner step `step`: before the first one, and whenever a multiple of
 * `every` has been reached since the last (so a resumed run re-aligns with an uninterrupted one).
 */
export const citDue = (curatedAtStep: number | undefined, step: number, every: number): boolean =>
  curatedAtStep === undefined || Math.floor(step / every) > Math.floor(curatedAtStep / every);

/** What one selection did: the curator's metrics (docs/metrics.md). */
export interface CitRound {
  readonly version: number;
  /** Prompts kept of the pool, and their share. */
  readonly kept: number;
  readonly keptShare: number;
  /** Share of the kept prompts that are about tail entities (of those with a bucket). */
  readonly keptTailShare: number;
  /** How long the embeddings and the selection took. */
  readonly ms: number;
}

export const citMetrics = (round: CitRound): Record<string, number> => ({
  "curation.cit.version": round.version,
  "curation.cit.kept": round.kept,
  "curation.cit.keptShare": round.keptShare,
  "curation.cit.keptTailShare": round.keptTailShare,
  "curation.cit.ms": round.ms,
});

/** Share of `prompts` about tail entities, among those with a popularity bucket (0 when none has one). */
export const tailShareOf = (prompts: readonly Pick<EnvPrompt, "bucket">[]): number => {
  const bucketed = prompts.filter((p) => p.bucket !== undefined);
  return bucketed.length === 0 ? 0 : bucketed.filter((p) => p.bucket === "tail").length / bucketed.length;
};

/**
 * Selects the prompts `citPrompts` hands out from now on, by `policy`'s embeddings (its version
 * `version`, read through its own text format). Each distinct prompt text is embedded once (a prompt
 * log repeats them). Throws a CurationArgumentError naming the config path when the target has no names.
 */
export function curateByPolicy(
  env: PromptSource,
  curation: Curation,
  policy: Policy,
  format: TextFormat,
  version: number,
): CitRound {
  const started = performance.now();
  const { target, templates, threshold, minRatio } = curation.cit;
  const pool = trainingPool(env, curation);
  const names = citTargetNames(target, env.knowledge, env.kind);
  const perTemplate = embedTexts(
    policy,
    format,
    names.flatMap((name) => fillTemplates(templates, name)),
  );
  const entries = names.map((_, i) =>
    ensembleEmbedding(perTemplate.slice(i * templates.length, (i + 1) * templates.length)),
  );
  const texts = [...new Set(pool.map((p) => p.text))];
  const similarities = maxSimilarities(embedTexts(policy, format, texts), entries);
  const similarityOf = new Map(texts.map((text, i) => [text, similarities[i]!]));
  const indices = citSelect(
    pool.map((p) => similarityOf.get(p.text)!),
    threshold,
    minRatio,
  );
  selectionOf(env, curation).current = { indices, version };
  return {
    version,
    kept: indices.length,
    keptShare: indices.length / pool.length,
    keptTailShare: tailShareOf(indices.map((i) => pool[i]!)),
    ms: performance.now() - started,
  };
}

/** How often a CiT curator looks again for the policy version the learner's progress says is coming. */
const ANNOUNCEMENT_POLL = Duration.millis(50);

/** The followed policy once a version at or above `version` is in use (announcements trail the learner's progress). */
const policyAtLeast = (follower: PolicyFollower, version: number) =>
  Effect.gen(function* () {
    for (;;) {
      const inUse = yield* follower.current;
      if (inUse.version >= version) return inUse;
      yield* Effect.sleep(ANNOUNCEMENT_POLL);
    }
  });

/**
 * `cit`: follows the learner's policy (pointer + weights, as rollout actors do) and returns the step
 * that re-selects the pool with the version current when a selection is due (citDue); other
 * strategies: a no-op. The first selection is made at once, before any group is handed out.
 */
export const citCuration = (
  config: ExperimentConfig,
  env: PromptSource,
  actor: ActorContext,
  report: (values: Record<string, number>) => Effect.Effect<void, unknown, ActorServices>,
  start: LearnerProgress | undefined,
) =>
  Effect.gen(function* () {
    if (config.curation.strategy !== "cit") return (_progress: LearnerProgress | undefined) => Effect.void;
    yield* useBackend(config, actor);
    const follower = yield* followPolicy;
    const format = yield* publishedTextFormat;
    let curatedAt: number | undefined;
    const curateIfDue = (progress: LearnerProgress | undefined) =>
      Effect.gen(function* () {
        const step = progress?.step ?? 0;
        if (!citDue(curatedAt, step, config.curation.cit.every)) return;
        // The learner writes its progress before it announces that version: wait for the announcement.
        const { policy, version } = yield* policyAtLeast(follower, progress?.policyVersion ?? 0);
        const round = curateByPolicy(env, config.curation, policy, format, version);
        curatedAt = step;
        yield* Effect.logInfo(
          `CiT at step ${step} with policy version ${version}: kept ${round.kept} prompts ` +
            `(${(100 * round.keptShare).toFixed(1)} % of the pool, ${(100 * round.keptTailShare).toFixed(1)} % of them tail)`,
        );
        yield* report(citMetrics(round));
      });
    yield* curateIfDue(start);
    return curateIfDue;
  });
