/**
 * What a command checks before any process starts, beyond the schema: every path the starting
 * processes read (configs/paths.ts), and that every reward module file they load imports and
 * exports a module. All problems at once, each with its field, as one ConfigError (exit 2) — not
 * an actor that crashes and restarts five times over a file that was never there.
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

/** Why a reward module file does not load, or undefined; the rewards code loads only when there is one. */
const moduleFileProblem = (module: PathField) =>
  Effect.promise(async () => {
    const { checkModuleFile } = await import("../rewards/registry.ts");
    try {
      await checkModuleFile(module.path);
      return undefined;
    } catch (error) {
      return `${module.field}: ${(error as Error).message}`;
    }
  });

/** Fails with every problem of `fields` at once; `source` names the config in the error. */
export const checkPaths = (fields: readonly PathField[], source: string) =>
  Effect.gen(function* () {
    const problems: string[] = [];
    for (const field of fields) {
      const problem =
        pathFieldProblem(field) ?? (field.check.kind === "module" ? yield* moduleFileProblem(field) : undefined);
      if (problem !== undefined) problems.push(problem);
    }
    if (problems.length > 0) return yield* new ConfigError({ source, problems });
  });

/** Succeeds with `config` when every path that `readers` read is in place. */
export const checkBeforeStart = (config: ExperimentConfig, readers: readonly ConfigReader[], source: string) =>
  checkPaths(configPaths(config, readers), source).pipe(Effect.as(config));
