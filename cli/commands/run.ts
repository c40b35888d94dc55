/** `factrl run CONFIG`: the whole experiment on this machine. */
import { existsSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { Console, Deferred, Effect } from "effect";
// The launcher module itself, not actors/index.ts: the index also exports the roles (tfjs and all).
import { launch } from "../../actors/launcher.ts";
import { ConfigError, loadConfig, renderConfig, runReaders } from "../../configs/index.ts";
import { runSerial } from "../../pipeline/index.ts";
import { natsOption } from "../nats-target.ts";
import { checkBeforeStart } from "../preflight.ts";
import { roles } from "../roles.ts";
import { runMain } from "../run-main.ts";

export const ENTRY_POINT = fileURLToPath(new URL("../../bin/factrl.mjs", import.meta.url));

/** commander collector for repeatable options (`--set a=1 --set b=2`). */
export const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run an experiment: start NATS if needed, create its streams, spawn and supervise every actor")
    .argument("<config>", "experiment config (YAML)")
    .option("--set <key=value>", "override a config value, e.g. --set rollout.groupSize=16 (repeatable)", collect)
    .option("--dry-run", "print the fully resolved config and exit")
    .addOption(natsOption("connect to this NATS server (same as --set nats.url=URL)"))
    .option("--fresh", "delete runs/<experiment>/ first (checkpoints, queues, metrics): start over instead of resuming")
    .option("--serial", "run every role in this process in a fixed order, without NATS: repeatable (docs/pipeline.md)")
    .action(
      (
        file: string,
        options: { set?: string[]; dryRun?: boolean; nats?: string; fresh?: boolean; serial?: boolean },
      ) => {
        const set = [...(options.set ?? []), ...(options.nats !== undefined ? [`nats.url=${options.nats}`] : [])];
        const stop = Effect.runSync(Deferred.make<string>());
        const program = Effect.gen(function* () {
          const config = yield* loadConfig(file, { set }).pipe(
            Effect.flatMap((config) => checkBeforeStart(config, runReaders(config), file)),
          );
          if (options.dryRun) return yield* Console.log(renderConfig(config).trimEnd());
          if (options.fresh) {
            // The embedded server's store lives in the run directory; an external server keeps the
            // experiment's queues and state, so starting over there means a new experiment id.
            if (config.nats.url !== undefined) {
              return yield* new ConfigError({
                source: "--fresh",
                problems: [
                  "--fresh: the experiment's state lives on the external NATS server; use a new experiment id",
                ],
              });
            }
            yield* Effect.promise(() =>
              rm(join(config.output.dir, config.experiment), { recursive: true, force: true }),
            );
          }
          const startedAt = Date.now();
          if (options.serial) {
            let stopAsked = false;
            yield* Effect.forkDaemon(
              Deferred.await(stop).pipe(Effect.tap(() => Effect.sync(() => (stopAsked = true)))),
            );
            const result = yield* Effect.scoped(
              runSerial(config, {
                stopRequested: () => stopAsked,
                onLine: (line) => process.stderr.write(`${line}\n`),
              }),
            );
            if (!result.completed) {
              return yield* Console.log(
                `stopped at step ${result.step}; run the same command (without --fresh) to resume from the last checkpoint`,
              );
            }
          } else {
            yield* launch({
              config,
              roles,
              entryPoint: ENTRY_POINT,
              progress: process.stderr.isTTY ? "tty" : "plain",
              stop,
            });
          }
          // The evaluator's report (initial vs RL policy per suite), when this run produced one.
          const report = join(config.output.dir, config.experiment, "report.md");
          if (existsSync(report) && statSync(report).mtimeMs >= startedAt)
            yield* Console.log(`\n${readFileSync(report, "utf8").trimEnd()}\n\n(${report})`);
        });
        runMain(program, { onSignal: (signal) => Effect.runSync(Deferred.succeed(stop, signal)) });
      },
    );
}
