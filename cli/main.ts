/** The `factrl` command: composes the commands of cli/commands/; no logic lives here. */
import { Command, CommanderError } from "commander";
import { COMMANDS } from "./commands/index.ts";
import { ExitCode } from "./exit-codes.ts";

const EXIT_CODES = `
Exit codes:
  ${ExitCode.ok}  success (also: stopped cleanly by Ctrl-C / SIGTERM)
  ${ExitCode.failed}  the experiment or actor failed (a learner that stopped short of its step budget included)
  ${ExitCode.usage}  bad command line or invalid config (nothing was started)
  ${ExitCode.nats}  NATS unreachable, credentials refused, or no nats-server to start
  ${ExitCode.noLauncher}  scale: no launcher answered, or it refused
  ${ExitCode.joinedExperimentFailed}  actor: the experiment it joined failed (it drained and stopped)`;

const program = new Command("factrl")
  .description("actor-based online RL (GRPO) over NATS, teaching a policy to answer factually")
  .version("0.1.0")
  .showHelpAfterError("(add --help for usage)")
  .exitOverride()
  .addHelpText("after", EXIT_CODES);

// The command being run is the only one loaded; help and mistakes load them all (to list them).
const named = process.argv[2];
const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const name of wanted) (await COMMANDS[name]!())(program);
for (const command of program.commands) command.exitOverride().addHelpText("after", EXIT_CODES);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // Help and --version exit 0; every other commander complaint is a usage error.
  process.exit(error.exitCode === 0 ? ExitCode.ok : ExitCode.usage);
}
