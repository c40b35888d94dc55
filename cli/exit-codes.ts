/**
 * The exit codes scripts can rely on (documented in docs/operations.md), and which error gives which.
 */
import { Cause, Exit } from "effect";

export const ExitCode = {
  /** Done: the experiment completed, or was stopped cleanly (Ctrl-C / SIGTERM), or the command succeeded. */
  ok: 0,
  /**
   * The experiment or actor failed (an actor gave up, a process kept crashing, the learner stopped
   * before its step budget); `prompts check`: some prompt failed the checks.
   */
  failed: 1,
  /** Bad command line or invalid config: nothing was started. */
  usage: 2,
  /** NATS unreachable, credentials refused, TLS failed, or no nats-server to start. */
  nats: 3,
  /** `scale`: no launcher answered for the experiment, or it refused the request. */
  noLauncher: 4,
  /**
   * `actor` (joined without a launcher of its own): the experiment failed, so the actor drained and
   * stopped. Not the actor's fault: a supervisor that restarts actors should not restart this one.
   */
  joinedExperimentFailed: 5,
} as const;

const CODE_BY_TAG: Record<string, number> = {
  ConfigError: ExitCode.usage,
  UsageError: ExitCode.usage,
  InvalidNameError: ExitCode.usage,
  ConnectError: ExitCode.nats,
  LocalServerError: ExitCode.nats,
  ControlRequestError: ExitCode.noLauncher,
  ScaleRefused: ExitCode.noLauncher,
  ActorGaveUp: ExitCode.failed,
  ExperimentFailed: ExitCode.failed,
  PromptsRejected: ExitCode.failed,
  JoinedExperimentFailed: ExitCode.joinedExperimentFailed,
};

/** The exit code for how a command's program ended. */
export function exitCodeOf(exit: Exit.Exit<unknown, unknown>): number {
  if (Exit.isSuccess(exit)) return ExitCode.ok;
  if (Cause.isInterruptedOnly(exit.cause)) return ExitCode.ok;
  const failure = Cause.failureOption(exit.cause);
  if (failure._tag === "Some") {
    const tag = (failure.value as { _tag?: unknown })?._tag;
    if (typeof tag === "string" && tag in CODE_BY_TAG) return CODE_BY_TAG[tag]!;
  }
  return ExitCode.failed;
}
