/**
 * `factrl study CONFIG…`: runs several experiments one after another with the same overrides (seed,
 * budget) and writes one table comparing their final policies — the reward-hacking study
 * (configs/ablations/: precision only, precision + detail, the full reward) — and, when the
 * environment has popularity buckets, their hallucination per bucket (the curation study,
 * configs/curation/: uniform vs balanced prompts). `--serial` runs each with the serial runner.
 */
import { readdirSync, readFileSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import type { Command } from "commander";
import { Console, Deferred, Effect } from "effect";
import type { EvaluationResult } from "../../actors/index.ts";
// The modules themselves, not actors/index.ts: the index also exports the roles (tfjs and all).
import { launch } from "../../actors/launcher.ts";
import { renderBucketTable, renderStudyTable, type StudyRun } from "../../actors/report.ts";
import { ConfigError, type ExperimentConfig, loadConfig, runReaders } from "../../configs/index.ts";
import { lineChartSvg, studyChart } from "../../dashboard/index.ts";
import { runSerial } from "../../pipeline/index.ts";
import { checkBeforeStart } from "../preflight.ts";
import { roles } from "../roles.ts";
import { runMain } from "../run-main.ts";
import { collect, ENTRY_POINT } from "./run.ts";

/** The initial and the final evaluation a run wrote (runs/<experiment>/eval/v<version>.json). */
function evaluations(config: ExperimentConfig): { before: EvaluationResult; after: EvaluationResult } {
  const dir = join(config.output.dir, config.experiment, "eval");
  const versions = readdirSync(dir)
    .flatMap((f) => (/^v(\d+)\.json$/.exec(f) ? [Number(/^v(\d+)/.exec(f)![1])] : []))
    .sort((a, b) => a - b);
  const read = (v: number) => JSON.parse(readFileSync(join(dir, `v${v}.json`), "utf8")) as EvaluationResult;
  if (versions.length < 2) throw new Error(`${dir}: the run left no final evaluation`);
  return { before: read(versions[0]!), after: read(versions.at(-1)!) };
}

export function registerStudy(program: Command): void {
  program
    .command("study")
    .description("run several experiment configs in turn with the same overrides and compare their final policies")
    .argument("<configs...>", "experiment configs (YAML), e.g. configs/ablations/*.yaml")
    .option(
      "--set <key=value>",
      "override applied to every config, e.g. --set learner.totalSteps=100 (repeatable)",
      collect,
    )
    .option("--out <file>", "where the table goes (default: <output.dir>/study.md)")
    .option("--serial", "run each experiment with the serial runner (one process, no NATS): repeatable")
    .option("--fresh", "delete each experiment's runs/<experiment>/ before it runs, instead of resuming it")
    .action((files: string[], options: { set?: string[]; out?: string; serial?: boolean; fresh?: boolean }) => {
      const stop = Effect.runSync(Deferred.make<string>());
      const program = Effect.gen(function* () {
        const configs: ExperimentConfig[] = [];
        // Every config is checked before the first experiment starts.
        for (const file of files) {
          const config = yield* loadConfig(file, { set: options.set ?? [] });
          configs.push(yield* checkBeforeStart(config, runReaders(config), file));
        }
        if (options.fresh && configs.some((config) => config.nats.url !== undefined))
          return yield* new ConfigError({
            source: "--fresh",
            problems: ["--fresh: an experiment's state lives on the external NATS server; use new experiment ids"],
          });
        let stopAsked = false;
        yield* Effect.forkDaemon(Deferred.await(stop).pipe(Effect.tap(() => Effect.sync(() => (stopAsked = true)))));
        const runs: StudyRun[] = [];
        for (const [i, config] of configs.entries()) {
          yield* Console.error(`study: ${i + 1}/${configs.length} ${config.experiment}`);
          if (options.fresh)
            yield* Effect.promise(() =>
              rm(join(config.output.dir, config.experiment), { recursive: true, force: true }),
            );
          if (options.serial) {
            const result = yield* Effect.scoped(
              runSerial(config, {
                stopRequested: () => stopAsked,
                onLine: (line) => process.stderr.write(`${line}\n`),
              }),
            );
            if (!result.completed) return yield* Console.error(`study stopped during ${config.experiment}`);
          } else yield* launch({ config, roles, entryPoint: ENTRY_POINT, progress: "plain", stop });
          runs.push({ name: config.experiment, ...evaluations(config) });
        }
        const out = options.out ?? join(configs[0]!.output.dir, "study.md");
        const buckets = renderBucketTable(runs);
        const table = `${renderStudyTable(runs)}${buckets ? `\n\nHallucination by popularity bucket:\n\n${buckets}` : ""}`;
        const flags = [
          ...(options.serial ? ["--serial"] : []),
          ...(options.fresh ? ["--fresh"] : []),
          ...(options.set ?? []).map((s) => `--set ${s}`),
        ];
        const header = `# Study: ${files.map((f) => basename(f)).join(", ")}\n\nOptions: ${flags.join(" ") || "none"}\n\n`;
        // The arms over training, next to the table.
        const figure = out.replace(/(\.md)?$/, ".svg");
        const chart = studyChart(
          configs.map((c) => ({ name: c.experiment, runDir: join(c.output.dir, c.experiment) })),
        );
        yield* Effect.promise(() => writeFile(figure, lineChartSvg(chart)));
        const embed = `\n\n![${chart.title}](${relative(dirname(out), figure)})`;
        yield* Effect.promise(() => writeFile(out, `${header}${table}${embed}\n`));
        yield* Console.log(`${table}\n\n(${out})`);
      });
      runMain(program, { onSignal: (signal) => Effect.runSync(Deferred.succeed(stop, signal)) });
    });
}
