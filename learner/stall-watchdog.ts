/**
 * The learner's stall watchdog: a learner that completes no step for `learner.stallWarnMs` says so
 * loudly (what it fetched and dropped since its last step), instead of waiting in silence — a run
 * whose every group was dropped once hung for hours with nothing logged.
 */
import { Duration, Effect, Fiber, Schedule, type Scope } from "effect";
import type { DropReason } from "./drop-journal.ts";

/** What the learner did since its last completed step. */
export interface SinceLastStep extends Record<DropReason, number> {
  /** Scored groups fetched (dropped or not). */
  readonly fetched: number;
  /** Steps whose update was not applied (non-finite numbers). */
  readonly skippedSteps: number;
}

export interface StallReport {
  /** When the last step completed (or the learner started): epoch ms. */
  readonly since: number;
  readonly stalledMs: number;
  readonly sinceLastStep: SinceLastStep;
}

export interface StallWatch {
  readonly fetched: (count: number) => void;
  readonly dropped: (reason: DropReason) => void;
  readonly skipped: () => void;
  /** A step completed: the clock and the counts start again. */
  readonly stepCompleted: () => void;
  /** Stops watching (the learner is done). */
  readonly stop: Effect.Effect<void>;
}

const noneYet = (): SinceLastStep => ({
  fetched: 0,
  stale: 0,
  zeroVariance: 0,
  duplicates: 0,
  invalid: 0,
  offPolicy: 0,
  skippedSteps: 0,
});

/**
 * Calls `onStall` once no step has completed for `stallWarnMs`, then again every `stallWarnMs`
 * while the stall lasts. Watches until `stop` or the scope closes; a failing `onStall` is logged and
 * the watch goes on.
 */
export const watchForStalls = <E, R>(
  stallWarnMs: number,
  onStall: (report: StallReport) => Effect.Effect<void, E, R>,
): Effect.Effect<StallWatch, never, R | Scope.Scope> =>
  Effect.gen(function* () {
    let lastStepAt = Date.now();
    let warnedAt: number | undefined;
    let counts = noneYet();
    const check = Effect.suspend(() => {
      const now = Date.now();
      if (now - lastStepAt < stallWarnMs || (warnedAt !== undefined && now - warnedAt < stallWarnMs))
        return Effect.void;
      warnedAt = now;
      return onStall({ since: lastStepAt, stalledMs: now - lastStepAt, sinceLastStep: { ...counts } }).pipe(
        Effect.catchAllCause((cause) => Effect.logWarning("could not report the learner's stall", cause)),
      );
    });
    const every = Duration.millis(Math.max(10, Math.min(1_000, stallWarnMs / 4)));
    const fiber = yield* Effect.forkScoped(Effect.repeat(check, Schedule.spaced(every)));
    return {
      fetched: (count) => {
        counts = { ...counts, fetched: counts.fetched + count };
      },
      dropped: (reason) => {
        counts = { ...counts, [reason]: counts[reason] + 1 };
      },
      skipped: () => {
        counts = { ...counts, skippedSteps: counts.skippedSteps + 1 };
      },
      stepCompleted: () => {
        lastStepAt = Date.now();
        warnedAt = undefined;
        counts = noneYet();
      },
      stop: Fiber.interrupt(fiber).pipe(Effect.asVoid),
    };
  });
