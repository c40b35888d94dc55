/**
 * The experiment's environment as every role sees it: built from the config's `env` section by the
 * environment registry (envs/registry.ts), once per process. Roles never name an environment.
 */
import { Data, Effect } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import { type Environment, type EnvPrompt, hashString, makeEnvironment } from "../envs/index.ts";

/** The environment could not be built (a prompt file that will not parse, a module that will not load). */
export class EnvironmentUnavailable extends Data.TaggedError("EnvironmentUnavailable")<{
  readonly kind: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `environment (env.kind ${this.kind}): ${this.reason}`;
  }
}

/** The experiment's environment (built once per process). */
export const experimentEnvironment = (config: ExperimentConfig): Effect.Effect<Environment, EnvironmentUnavailable> =>
  Effect.tryPromise({
    try: () => makeEnvironment(config.env),
    catch: (error) =>
      new EnvironmentUnavailable({
        kind: config.env.kind,
        reason: error instanceof Error ? error.message : String(error),
      }),
  });

/** A fixed, seeded sample of up to `perSuite` evaluation prompts from each suite (same every call). */
export function evaluationSample(
  prompts: readonly EnvPrompt[],
  perSuite: number,
  seed: number,
  suites: readonly string[],
): EnvPrompt[] {
  const sample: EnvPrompt[] = [];
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
