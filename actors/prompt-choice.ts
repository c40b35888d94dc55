/**
 * The pieces of the curator's prompt choice (actors/curator.ts `promptGroupAt`): the prompt of group n
 * by `curation.strategy`, from the training pool that passed `curation.checks`. A pure function of the environment, the config and n — `balanced`
 * also depends on the prompts handed out before n, which are themselves functions of the seed — so a
 * restarted curator and the serial runner rebuild the same choices from the seed and the cursor alone.
 *
 * The pool's FACTORY-style checks are made once per environment and config: their counts are the
 * curator's `curation.rejected.<reason>` metrics and their list is `runs/<experiment>/rejected-prompts.jsonl`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import {
  BalancedStream,
  CHECK_REASONS,
  checkPrompts,
  type Environment,
  type EnvPrompt,
  matchPool,
  type PromptCheckReport,
  worldMetadata,
} from "../envs/index.ts";
import { Experiment, MetricsEventMessage, publishMessage } from "../messaging/index.ts";
import { tryIo } from "./io.ts";
import type { PromptGroup } from "./topology.ts";

type Curation = ExperimentConfig["curation"];

/** What the prompt choice reads of the environment (its identity keys the memos: one per process). */
export type PromptSource = Pick<Environment, "kind" | "train" | "knowledge">;

/** A strategy's choice over one pool: the prompt of group `sequence`. */
export type PromptChooser = (sequence: number) => EnvPrompt;

/** Makes a chooser over `pool` (non-empty); `env` gives what a strategy balances over. */
export type PromptStrategy = (
  pool: readonly EnvPrompt[],
  env: PromptSource,
  settings: { readonly seed: number; readonly curation: Curation },
) => PromptChooser;

/**
 * MetaCLIP balancing over the knowledge base's entity names and attribute values, counted over the
 * prompts handed out so far (envs/curation BalancedStream): an entry past t is handed out with
 * probability t / count, so no entity or value piles up; entries under t are always taken.
 */
export const balancedPrompts: PromptStrategy = (pool, env, { seed, curation }) => {
  if (!env.knowledge)
    throw new Error(`curation.strategy balanced: environment ${env.kind} has no knowledge base to balance over`);
  const entries = worldMetadata(env.knowledge);
  const stream = new BalancedStream(
    matchPool(
      pool.map((p) => p.text),
      entries,
    ),
    entries.length,
    { seed, tailShare: curation.tailShare },
  );
  return (sequence) => pool[stream.at(sequence)]!;
};

/**
 * The groups a curator handed out and the share of them about tail entities (of those whose prompt has
 * a popularity bucket): its `curation.handedOut` and `curation.handedOut.tailShare` metrics.
 */
export class HandedOut {
  private groups = 0;
  private bucketed = 0;
  private tail = 0;

  add(groups: readonly PromptGroup[]): void {
    for (const { meta } of groups) {
      this.groups += 1;
      if (meta.bucket === undefined) continue;
      this.bucketed += 1;
      if (meta.bucket === "tail") this.tail += 1;
    }
  }

  metrics(): Record<string, number> {
    return {
      "curation.handedOut": this.groups,
      "curation.handedOut.tailShare": this.bucketed === 0 ? 0 : this.tail / this.bucketed,
    };
  }
}

/** The checks of the training pool (undefined when `curation.checks` is off or there is no knowledge base). */
export const poolChecks = (env: PromptSource, curation: Curation): PromptCheckReport<EnvPrompt> | undefined =>
  memoByEnvironment(checksMemo, env, `${curation.checks}:${curation.minFacts}`, () =>
    curation.checks === "off" || !env.knowledge
      ? undefined
      : checkPrompts(env.knowledge, env.train, { minFacts: curation.minFacts }),
  );

/** The prompts the curator picks from: the training split, less what the checks rejected when enforced. */
export function trainingPool(env: PromptSource, curation: Curation): readonly EnvPrompt[] {
  const checks = curation.checks === "enforce" ? poolChecks(env, curation) : undefined;
  const pool = checks ? checks.passed : env.train;
  if (pool.length === 0)
    throw new Error(`curation.checks enforce: every one of the ${env.train.length} training prompts was rejected`);
  return pool;
}

/** Publishes the pool's check counts as the curator's metrics (once, at its start) and writes their list. */
export const publishPoolChecks = (actorId: string, config: ExperimentConfig, env: PromptSource) =>
  Effect.gen(function* () {
    const values = yield* checkTrainingPool(config, env);
    const { subjects } = yield* Experiment;
    yield* publishMessage(subjects.metrics(actorId), MetricsEventMessage, {
      source: actorId,
      values,
      tags: { role: "curator" },
    });
  });

/**
 * Writes the rejected training prompts to `runs/<experiment>/rejected-prompts.jsonl` (one
 * `{ id, suite, reason, detail, text }` per line) and returns the curator's metrics for them:
 * `curation.pool` (prompts it picks from) and `curation.rejected.<reason>`. No checks: no file.
 */
export const checkTrainingPool = (config: ExperimentConfig, env: PromptSource) =>
  Effect.gen(function* () {
    const checks = poolChecks(env, config.curation);
    const values: Record<string, number> = { "curation.pool": trainingPool(env, config.curation).length };
    if (!checks) return values;
    for (const reason of CHECK_REASONS) values[`curation.rejected.${reason}`] = checks.counts[reason];
    const dir = join(config.output.dir, config.experiment);
    const lines = checks.rejected.map(({ prompt, reason, detail }) =>
      JSON.stringify({ id: prompt.id, suite: prompt.suite, reason, detail, text: prompt.text }),
    );
    yield* tryIo("writing rejected-prompts.jsonl", async () => {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "rejected-prompts.jsonl"), lines.length > 0 ? `${lines.join("\n")}\n` : "");
    });
    return values;
  });

const checksMemo = new WeakMap<PromptSource, Map<string, PromptCheckReport<EnvPrompt> | undefined>>();

/** `make()` once per environment and key (environments are built once per process: actors/environment.ts). */
export function memoByEnvironment<V>(
  store: WeakMap<PromptSource, Map<string, V>>,
  env: PromptSource,
  key: string,
  make: () => V,
): V {
  const byKey = store.get(env) ?? new Map<string, V>();
  store.set(env, byKey);
  if (!byKey.has(key)) byKey.set(key, make());
  return byKey.get(key)!;
}
