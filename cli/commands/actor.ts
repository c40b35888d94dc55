/** `factrl actor ROLE`: one actor process — what the launcher spawns, and how capacity joins from other hosts. */
import { type Command, Option as CommandOption } from "commander";
import { Deferred, Effect, Option } from "effect";
// The module itself, not actors/index.ts: an actor loads only its own role's code (the registry is lazy).
import { runActor } from "../../actors/runtime.ts";
import { CONFIG_KEY, ConfigError, type RoleName } from "../../configs/index.ts";
import { getState } from "../../messaging/index.ts";
import { commandLayer, natsOption, resolveTarget } from "../nats-target.ts";
import { checkBeforeStart } from "../preflight.ts";
import { roles } from "../roles.ts";
import { runMain, UsageError } from "../run-main.ts";

interface ActorOptions {
  experiment: string;
  nats?: string;
  config?: string;
  id?: string;
  parentPid?: string;
}

export function registerActor(program: Command): void {
  program
    .command("actor")
    .description("run one actor of an experiment (add capacity from any host that reaches its NATS server)")
    .argument("<role>", `the role: ${roles.names.join(", ")}`)
    .requiredOption("--experiment <id>", "experiment id")
    .addOption(natsOption("NATS server (default: FACTRL_NATS_URL, then the URL recorded by a local launcher)"))
    .option("--config <file>", "config to use (default: the one the launcher published to NATS)")
    .option("--id <id>", "actor id, unique in the experiment (default: <role>-<random>)")
    // The launcher passes its pid: an actor whose launcher disappears drains and exits.
    .addOption(new CommandOption("--parent-pid <pid>").hideHelp())
    .action((roleName: string, options: ActorOptions) => {
      const drain = Effect.runSync(Deferred.make<string>());
      const run = Effect.gen(function* () {
        const role = yield* Effect.promise(() => roles.load(roleName));
        if (role === undefined) {
          return yield* new UsageError({
            reason: `unknown role ${JSON.stringify(roleName)} (available: ${roles.names.join(", ")})`,
          });
        }
        const target = yield* resolveTarget(options);
        const config =
          target.config ??
          (yield* getState(CONFIG_KEY).pipe(
            Effect.scoped,
            Effect.provide(commandLayer(target, `factrl-${roleName}-config`, roleName)),
            Effect.mapError(
              (error) =>
                new ConfigError({ source: "NATS", problems: [`cannot read the published config: ${error.message}`] }),
            ),
            Effect.map((entry) => Option.fromNullable(entry?.value)),
            Effect.flatten,
            Effect.catchTag(
              "NoSuchElementException",
              () =>
                new ConfigError({
                  source: "NATS",
                  problems: [
                    `no config published for experiment ${target.experiment} (is its launcher running? or pass --config)`,
                  ],
                }),
            ),
          ));
        if (config.experiment !== target.experiment) {
          return yield* new UsageError({
            reason: `--experiment ${target.experiment} does not match the config's experiment ${config.experiment}`,
          });
        }
        // Only what this role reads: an actor joining from another host needs no files the others use.
        yield* checkBeforeStart(config, [roleName as RoleName], options.config ?? "the published config");
        yield* runActor({
          role,
          config,
          natsUrl: target.url,
          drain,
          ...(options.id !== undefined ? { id: options.id } : {}),
          ...(options.parentPid !== undefined ? { parentPid: Number(options.parentPid) } : {}),
        });
      });
      runMain(run, { onSignal: (signal) => Effect.runSync(Deferred.succeed(drain, signal)) });
    });
}
