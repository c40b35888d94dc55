/** `factrl scale ROLE N`: ask the experiment's launcher to grow or shrink a role to N local processes. */
import type { Command } from "commander";
import { Console, Data, Effect } from "effect";
// The module itself, not actors/index.ts: the index also exports the roles (tfjs and all).
import { LAUNCHER_CONTROL_ROLE } from "../../actors/launcher.ts";
import { Experiment, requestControl } from "../../messaging/index.ts";
import { commandLayer, natsOption, resolveTarget } from "../nats-target.ts";
import { runMain, UsageError } from "../run-main.ts";

export class ScaleRefused extends Data.TaggedError("ScaleRefused")<{ readonly reason: string }> {
  override get message(): string {
    return `scale refused: ${this.reason}`;
  }
}

export function registerScale(program: Command): void {
  program
    .command("scale")
    .description("grow or shrink a role to N processes on the launcher's machine (shrinking drains gracefully)")
    .argument("<role>", "the role to scale")
    .argument("<count>", "the number of processes wanted")
    .requiredOption("--experiment <id>", "experiment id")
    .addOption(natsOption("NATS server (default: FACTRL_NATS_URL, then the URL recorded by a local launcher)"))
    .option("--config <file>", "config with the server's credentials/TLS")
    .option("--output-dir <dir>", "where local launchers record their NATS URL", "runs")
    .option("--json", "print the launcher's reply as JSON")
    .action(
      (
        role: string,
        countText: string,
        options: { experiment: string; nats?: string; config?: string; outputDir: string; json?: boolean },
      ) => {
        const run = Effect.gen(function* () {
          const count = Number(countText);
          if (!/^\d+$/.test(countText) || !Number.isSafeInteger(count)) {
            return yield* new UsageError({ reason: `count must be a whole number, got ${JSON.stringify(countText)}` });
          }
          const target = yield* resolveTarget(options);
          const reply = yield* Effect.gen(function* () {
            const { subjects } = yield* Experiment;
            return yield* requestControl(subjects.control(LAUNCHER_CONTROL_ROLE), {
              command: "scale",
              args: { role, count },
            });
          }).pipe(
            Effect.scoped,
            Effect.provide(commandLayer(target, "factrl-scale", "launcher")),
            Effect.mapError((error) =>
              error._tag === "ControlRequestError" && (error.kind === "no-responders" || error.kind === "timeout")
                ? new ScaleRefused({
                    reason: `no launcher of experiment ${target.experiment} answered on ${target.url}`,
                  })
                : error,
            ),
          );
          if (!reply.body.ok) return yield* new ScaleRefused({ reason: reply.body.message });
          yield* Console.log(options.json ? JSON.stringify(reply.body) : reply.body.message);
        });
        runMain(run);
      },
    );
}
