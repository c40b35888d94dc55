/**
 * The experiment's environment as every actor sees it: FactWorld regenerated from the config's seeds
 * (so every process, on any host, builds the same world, tokenizer and prompt splits with no data
 * shipped between them), or an external JSONL prompt set.
 */

import type { EnvSection } from "../configs/index.ts";
import {
  createTokenizer,
  generatePrompts,
  generateWorld,
  hashString,
  type Prompt,
  SUITES,
  type Suite,
  WORLD_SIZES,
  type WordTokenizer,
  type World,
} from "../envs/index.ts";

export interface FactWorldEnvironment {
  readonly world: World;
  readonly tokenizer: WordTokenizer;
  readonly train: readonly Prompt[];
  readonly eval: readonly Prompt[];
}

const cache = new Map<string, FactWorldEnvironment>();

/** Builds (once per process) the FactWorld environment a config describes. */
export function factWorldEnvironment(env: EnvSection): FactWorldEnvironment {
  if (env.kind !== "factworld") {
    throw new Error(
      `env.kind ${env.kind}: the built-in roles train on FactWorld; JSONL prompt sets are for evaluation`,
    );
  }
  const key = JSON.stringify(env);
  const cached = cache.get(key);
  if (cached) return cached;
  const world = generateWorld({ ...WORLD_SIZES[env.size], ...(env.seed === undefined ? {} : { seed: env.seed }) });
  const prompts = generatePrompts(world, { seed: env.promptSeed, evalFraction: env.evalFraction });
  const built: FactWorldEnvironment = {
    world,
    tokenizer: createTokenizer(world),
    train: prompts.filter((p) => p.split === "train"),
    eval: prompts.filter((p) => p.split === "eval"),
  };
  cache.set(key, built);
  return built;
}

/** A fixed, seeded sample of up to `perSuite` evaluation prompts from each suite (same every call). */
export function evaluationSample(
  prompts: readonly Prompt[],
  perSuite: number,
  seed: number,
  suites: readonly Suite[] = SUITES,
): Prompt[] {
  const sample: Prompt[] = [];
  for (const suite of suites) {
    const pool = prompts.filter((p) => p.suite === suite);
    const keyed = pool.map((p) => ({ p, key: hash32(`${seed}:${p.id}`) }));
    keyed.sort((a, b) => a.key - b.key);
    sample.push(...keyed.slice(0, perSuite).map((k) => k.p));
  }
  return sample;
}

/** A stable 32-bit hash of a string (FNV-1a): seeds and orderings that are the same on every host. */
export const hash32 = hashString;
