/**
 * Fallible I/O at a role's boundary — checkpoints, evaluation files, reports — as a typed failure
 * naming what failed, not a defect: the runtime logs it and restarts the role, and a serial run
 * stops with it as its error.
 */
import { Data, Effect } from "effect";

export class IoFailed extends Data.TaggedError("IoFailed")<{ readonly what: string; readonly reason: string }> {
  override get message(): string {
    return `${this.what} failed: ${this.reason}`;
  }
}

/** Runs `io`; a rejection becomes IoFailed naming `what`. */
export const tryIo = <A>(what: string, io: () => Promise<A>): Effect.Effect<A, IoFailed> =>
  Effect.tryPromise({
    try: io,
    catch: (error) => new IoFailed({ what, reason: error instanceof Error ? error.message : String(error) }),
  });
