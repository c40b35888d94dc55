/**
 * Runs one module over a batch with a timeout and a retry policy, and isolates failures: when the
 * whole batch call fails (throws, hangs past the timeout, returns garbage), each answer is scored
 * alone, so only the answers that really fail are reported as failed. Never rejects.
 */
import { Duration, Effect, Either, Schedule } from "effect";
import { checkOutcome, type ItemResult, type RewardFailure, type RewardItem, type RewardModule } from "./module.ts";

export interface CallPolicy {
  /** Give up on one score call after this long. */
  readonly timeoutMs: number;
  /** Retries of a failed call (batch-level or single-answer) before giving up. */
  readonly retries: number;
  /** First retry delay; doubles each retry. */
  readonly retryDelayMs?: number;
}

export const DEFAULT_CALL_POLICY: Required<CallPolicy> = { timeoutMs: 30_000, retries: 2, retryDelayMs: 50 };

/** One call of `score`, timed out and checked as a whole (array of the right length). */
function callOnce(module: RewardModule, items: readonly RewardItem[], timeoutMs: number) {
  return Effect.tryPromise({
    // Wrapped so that a synchronous throw or a non-promise return is handled like any other failure.
    try: (signal) => Promise.resolve().then(() => module.score(items, signal)),
    catch: (error): RewardFailure => ({
      module: module.name,
      kind: "threw",
      message: error instanceof Error ? error.message : String(error),
    }),
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(timeoutMs),
      onTimeout: (): RewardFailure => ({
        module: module.name,
        kind: "timeout",
        message: `no answer within ${timeoutMs} ms`,
      }),
    }),
    Effect.flatMap((outcomes) =>
      Array.isArray(outcomes) && outcomes.length === items.length
        ? Effect.succeed(outcomes.map((o) => checkOutcome(module.name, o)))
        : Effect.fail<RewardFailure>({
            module: module.name,
            kind: "invalid-output",
            message: `expected an array of ${items.length} outcomes, got ${Array.isArray(outcomes) ? `${outcomes.length} outcomes` : typeof outcomes}`,
          }),
    ),
  );
}

export function runModule(
  module: RewardModule,
  batch: readonly RewardItem[],
  policy: CallPolicy,
): Promise<ItemResult[]> {
  const { timeoutMs, retries, retryDelayMs } = { ...DEFAULT_CALL_POLICY, ...policy };
  const retrying = Schedule.exponential(Duration.millis(retryDelayMs)).pipe(
    Schedule.intersect(Schedule.recurs(retries)),
  );
  const attempt = (items: readonly RewardItem[]) => callOnce(module, items, timeoutMs).pipe(Effect.retry(retrying));
  const program = Effect.gen(function* () {
    if (batch.length === 0) return [];
    const whole = yield* Effect.either(attempt(batch));
    if (Either.isRight(whole)) return whole.right;
    if (batch.length === 1) return [{ ok: false, failure: whole.left } as ItemResult];
    // Isolate: score each answer alone, concurrently, so one bad answer fails only itself.
    return yield* Effect.forEach(
      batch,
      (item) =>
        Effect.match(attempt([item]), {
          onFailure: (failure): ItemResult => ({ ok: false, failure }),
          onSuccess: (results) => results[0] as ItemResult,
        }),
      { concurrency: "unbounded" },
    );
  });
  return Effect.runPromise(program);
}
