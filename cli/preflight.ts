/**
 * What a command checks before any process starts, beyond the schema: every path the starting
 * processes read (configs/paths.ts), that every reward module file they load imports and exports a
 * module, and that the environment builds (its prompt file parses, its module loads and has the
 * Environment's shape) and has every suite `evaluation.suites` names. All problems at once, each
 * with its field, as one ConfigError (exit 2) — not an actor that crashes and restarts five times
 * over a file that was never there. A Hugging Face model (`hf:DIR`) is checked whole, from its
 * config.json and safetensors headers (models/huggingface.ts checkHuggingFaceModel).
 */
import { resolve } from "node:path";
import { Effect } from "effect";
import {
  ConfigError,
  type ConfigReader,
  configPaths,
  type ExperimentConfig,
  huggingFaceDir,
  type PathField,
  pathFieldProblem,
} from "../configs/index.ts";
import { checkPrompts, citTargetNames, type Environment, makeEnvironment, selectSuites } from "../envs/index.ts";

/** Why a reward module file does not load, or undefined; the rewards code loads only when there is one. */
const moduleFileProblem = (module: PathField) =>
  Effect.promise(async () => {
    const { checkModuleFile } = await import("../rewards/index.ts");
    try {
      await checkModuleFile(module.path);
      return undefined;
    } catch (error) {
      return `${module.field}: ${(error as Error).message}`;
    }
  });

/**
 * Why a Hugging Face model directory (`hf:DIR`, its files in place) will not import — an architecture
 * or option the dense backbone lacks, a tensor missing or of another shape than config.json implies, a
 * safetensors file cut short — read from config.json and the safetensors headers, no weight loaded.
 */
const huggingFaceModelProblem = (field: PathField, dir: string) =>
  Effect.promise(async () => {
    const { checkHuggingFaceModel } = await import("../models/index.ts");
    try {
      await checkHuggingFaceModel(resolve(dir));
      return undefined;
    } catch (error) {
      return `${field.field}: ${messageOf(error)}`;
    }
  });

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * What `curation` needs of the environment: a knowledge base to balance over (`balanced`), to take
 * CiT's `tail` / `head` names from (`cit`), or to check prompts against (`checks: enforce`), and,
 * enforced, a training prompt that passes.
 */
export function curationProblem(env: Environment, curation: ExperimentConfig["curation"]): string | undefined {
  if (curation.strategy === "cit") {
    try {
      citTargetNames(curation.cit.target, env.knowledge, env.kind);
    } catch (error) {
      return messageOf(error);
    }
  }
  if (!env.knowledge) {
    if (curation.strategy === "balanced")
      return `curation.strategy: balanced balances over the environment's knowledge base (entity names, attribute values); env.kind ${env.kind} has none`;
    if (curation.checks === "enforce")
      return `curation.checks: enforce checks prompts against the environment's knowledge base; env.kind ${env.kind} has none`;
    return undefined;
  }
  if (curation.checks === "enforce") {
    const { passed, counts } = checkPrompts(env.knowledge, env.train, { minFacts: curation.minFacts });
    if (passed.length === 0)
      return `curation.checks: enforce rejects every one of the ${env.train.length} training prompts (${JSON.stringify(counts)}); lower curation.minFacts or use report`;
  }
  return undefined;
}

/**
 * A built-in reward module that verifies claims against a knowledge base (`knowledgeModules`:
 * precision, detail, relevance), named in `rewards.modules` for an environment that has none and
 * brings no module of that name itself. `format` needs none.
 */
export function knowledgeRewardProblems(
  env: Environment,
  modules: ExperimentConfig["rewards"]["modules"],
  knowledgeModules: readonly string[],
): string[] {
  if (env.knowledge) return [];
  return modules.flatMap((module, i) =>
    "name" in module && knowledgeModules.includes(module.name) && !env.rewardModules?.[module.name]
      ? [
          `rewards.modules[${i}]: ${module.name} verifies claims against the environment's knowledge base (FactWorld's); env.kind ${env.kind} has none — judge with an http: module (an OpenAI-compatible judge, docs/rewards.md) or a module of your own`,
        ]
      : [],
  );
}

/**
 * Why the environment does not build (its file will not parse, its module will not load), or does
 * not have a suite `evaluation.suites` names; undefined when it is fine.
 */
const environmentProblems = (config: ExperimentConfig) =>
  Effect.promise(() =>
    makeEnvironment(config.env).then(
      async (env) => {
        const problems: string[] = [];
        try {
          selectSuites(env, config.evaluation.suites);
        } catch (error) {
          problems.push(`evaluation.suites: ${messageOf(error)}`);
        }
        const curation = curationProblem(env, config.curation);
        if (curation !== undefined) problems.push(curation);
        const { KNOWLEDGE_BASE_MODULES } = await import("../rewards/index.ts");
        return [...problems, ...knowledgeRewardProblems(env, config.rewards.modules, KNOWLEDGE_BASE_MODULES)];
      },
      (error: unknown) => [`env: ${messageOf(error)}`],
    ),
  );

/** Every problem of `fields` (and, given a config, of its environment); `source` names the config in the error. */
export const checkPaths = (fields: readonly PathField[], source: string, config?: ExperimentConfig) =>
  Effect.gen(function* () {
    const problems: string[] = [];
    for (const field of fields) {
      const hf = field.check.kind === "checkpoint" ? huggingFaceDir(field.path) : undefined;
      const problem =
        pathFieldProblem(field) ??
        (field.check.kind === "module" ? yield* moduleFileProblem(field) : undefined) ??
        (hf !== undefined ? yield* huggingFaceModelProblem(field, hf) : undefined);
      if (problem !== undefined) problems.push(problem);
    }
    // Built only when its own paths are in place: a missing file is said once, by its field.
    const envField = fields.some(
      (field) => field.field.startsWith("env.") && problems.some((p) => p.startsWith(field.field)),
    );
    if (config !== undefined && !envField) {
      problems.push(...(yield* environmentProblems(config)));
    }
    if (problems.length > 0) return yield* new ConfigError({ source, problems });
  });

/** Succeeds with `config` when every path that `readers` read is in place and its environment builds. */
export const checkBeforeStart = (config: ExperimentConfig, readers: readonly ConfigReader[], source: string) =>
  checkPaths(configPaths(config, readers), source, config).pipe(Effect.as(config));
