/**
 * Runs a command's Effect program as the process: logs through pino, exit code from how it ended
 * (cli/exit-codes.ts). On SIGINT/SIGTERM the program is interrupted — unless it stops gracefully
 * by itself (`factrl run` and `factrl actor` drain instead) — and a second signal exits at once.
 * (@effect/platform-node's runMain needs Node 22 peers; this is the small part of it we need.)
 */
import { Cause, Data, Effect, Exit, Fiber } from "effect";
import { makeLogger, pinoLoggerLayer } from "../messaging/index.ts";
import { ExitCode, exitCodeOf } from "./exit-codes.ts";

/** A command-line mistake found by a command (not by commander): exit code 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

export interface RunMainOptions {
  /**
   * Called on the first SIGINT/SIGTERM instead of interrupting the program (which then stops
   * gracefully by itself, e.g. by draining). Registered before the program starts, so a signal
   * that arrives while it is still starting is not lost.
   */
  readonly onSignal?: (signal: NodeJS.Signals) => void;
}

export function runMain<A, E>(program: Effect.Effect<A, E>, options: RunMainOptions = {}): void {
  const logger = makeLogger({ component: "cli" });
  const fiber = Effect.runFork(program.pipe(Effect.provide(pinoLoggerLayer(logger))));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`\nsecond ${signal}: exiting now\n`);
      process.exit(130);
    }
    if (options.onSignal !== undefined) options.onSignal(signal);
    else Effect.runFork(Fiber.interrupt(fiber));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  fiber.addObserver((exit) => {
    const code = exitCodeOf(exit);
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      const failure = Cause.failureOption(exit.cause);
      // Expected failures are the user's to read: their message, not a stack trace.
      const text =
        failure._tag === "Some" && failure.value instanceof Error
          ? failure.value.message
          : Cause.pretty(exit.cause, { renderErrorCause: true });
      process.stderr.write(`factrl: ${text}\n`);
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.exitCode = code;
    // Whatever is left (a stuck socket) must not keep a finished command alive.
    setTimeout(() => process.exit(code), 2_000).unref();
  });
}

export { ExitCode };
