/**
 * What a command checks before any process starts, beyond the schema: every path the starting
 * processes read (configs/paths.ts), that every reward module file they load imports and exports a
 * module, and that the environment builds (its prompt file parses, its module loads and has the
 * Environment's shape) and has every suite `evaluation.suites` names. All problems at once, each
 * with its field, as one ConfigError (exit 2) — not an actor that crashes and restarts five times
 * over a file that was never there.
 */
import { Effect } from "effect";
import {
  ConfigError,
  type ConfigReader,
  configPaths,
  type ExperimentConfig,
  type PathField,
  pathFieldProblem,
} from "../configs/index.ts";
import { makeEnvironment, selectSuites } from "../envs/index.ts";

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

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Why the environment does not build (its file will not parse, its module will not load), or does
 * not have a suite `evaluation.suites` names; undefined when it is fine.
 */
const environmentProblem = (config: ExperimentConfig) =>
  Effect.promise(() =>
    makeEnvironment(config.env).then(
      (env) => {
        try {
          selectSuites(env, config.evaluation.suites);
          return undefined;
        } catch (error) {
          return `evaluation.suites: ${messageOf(error)}`;
        }
      },
      (error: unknown) => `env: ${messageOf(error)}`,
    ),
  );

/** Every problem of `fields` (and, given a config, of its environment); `source` names the config in the error. */
export const checkPaths = (fields: readonly PathField[], source: string, config?: ExperimentConfig) =>
  Effect.gen(function* () {
    const problems: string[] = [];
    for (const field of fields) {
      const problem =
        pathFieldProblem(field) ?? (field.check.kind === "module" ? yield* moduleFileProblem(field) : undefined);
      if (problem !== undefined) problems.push(problem);
    }
    // Built only when its own paths are in place: a missing file is said once, by its field.
    const envField = fields.some(
      (field) => field.field.startsWith("env.") && problems.some((p) => p.startsWith(field.field)),
    );
    if (config !== undefined && !envField) {
      const problem = yield* environmentProblem(config);
      if (problem !== undefined) problems.push(problem);
    }
    if (problems.length > 0) return yield* new ConfigError({ source, problems });
  });

/** Succeeds with `config` when every path that `readers` read is in place and its environment builds. */
export const checkBeforeStart = (config: ExperimentConfig, readers: readonly ConfigReader[], source: string) =>
  checkPaths(configPaths(config, readers), source, config).pipe(Effect.as(config));
