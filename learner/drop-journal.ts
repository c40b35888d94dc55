/**
 * The learner's drop journal: every scored group the learner drops (stale, zero-variance, a
 * duplicate, invalid, off-policy) is written here, and the file fsync'd, before the delivery is settled. Dropped
 * groups are settled at once — holding them until a checkpoint hung the run at the queue's
 * max-ack-pending when every group was dropped — so without the journal a learner crash would lose
 * their counts and forget their ids (a redelivery would then be counted twice).
 *
 * One file per checkpoint generation (`drops-<n>.jsonl`): checkpoint n records that journal n
 * continues it and folds the older journal's drops into its trainer state. A resumed learner reads
 * the journal its checkpoint names, so a crash between writing a checkpoint and starting the next
 * journal never counts a drop twice.
 */

import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { Data, Effect, type Scope } from "effect";

/** The LearnerProgress count each kind of drop adds to. */
export type DropReason = "stale" | "zeroVariance" | "duplicates" | "invalid" | "offPolicy";

export interface Drop {
  readonly reason: DropReason;
  /** The group's id; absent for an invalid group (its id is untrusted, and settles nothing). */
  readonly id?: string;
}

export class DropJournalError extends Data.TaggedError("DropJournalError")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `drop journal ${this.path}: ${this.reason}`;
  }
}

const REASONS: readonly DropReason[] = ["stale", "zeroVariance", "duplicates", "invalid", "offPolicy"];
const FILE = /^drops-(\d+)\.jsonl$/;

export const dropJournalFile = (dir: string, generation: number) => join(dir, `drops-${generation}.jsonl`);

const failure = (path: string) => (error: unknown) =>
  new DropJournalError({ path, reason: error instanceof Error ? error.message : String(error) });

const isDrop = (value: unknown): value is Drop => {
  const v = value as Drop | null;
  return (
    typeof v === "object" &&
    v !== null &&
    REASONS.includes(v.reason) &&
    (v.id === undefined || typeof v.id === "string")
  );
};

/**
 * The drops journal `generation` holds (none when it does not exist). A line that does not parse is
 * the tail of a write cut off by a crash: it was never fsync'd, so its delivery was never settled.
 */
export const readDropJournal = (dir: string, generation: number): Effect.Effect<readonly Drop[], DropJournalError> => {
  const path = dropJournalFile(dir, generation);
  return Effect.tryPromise({
    try: () => readFile(path, "utf8").catch((error) => (error.code === "ENOENT" ? "" : Promise.reject(error))),
    catch: failure(path),
  }).pipe(
    Effect.map((text) =>
      text.split("\n").flatMap((line) => {
        try {
          const value: unknown = JSON.parse(line);
          return isDrop(value) ? [value] : [];
        } catch {
          return [];
        }
      }),
    ),
  );
};

/** Adds each drop to its count in `counts` (LearnerProgress or a since-the-last-step tally). */
export const countDrops = <C extends Record<DropReason, number>>(counts: C, drops: readonly Drop[]): C => {
  const next = { ...counts };
  for (const drop of drops) next[drop.reason] += 1;
  return next;
};

export interface DropJournal {
  /** The generation being written. */
  readonly generation: () => number;
  /** Appends `drops` and returns once they are on disk. */
  readonly record: (drops: readonly Drop[]) => Effect.Effect<void, DropJournalError>;
  /** Starts the next generation (call once a checkpoint naming it is on disk) and deletes the older ones. */
  readonly rotate: Effect.Effect<void, DropJournalError>;
}

/** Makes the directory entry of a file just created durable, not only its content. */
const syncDirectory = async (dir: string) => {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/** Opens journal `generation` for appending (deleting every other generation's file) until the scope closes. */
export const openDropJournal = (
  dir: string,
  generation: number,
): Effect.Effect<DropJournal, DropJournalError, Scope.Scope> =>
  Effect.gen(function* () {
    let current = generation;
    let handle: FileHandle | undefined;
    const start = (next: number) =>
      Effect.tryPromise({
        try: async () => {
          await mkdir(dir, { recursive: true });
          const opened = await open(dropJournalFile(dir, next), "a");
          await syncDirectory(dir);
          const previous = handle;
          handle = opened;
          current = next;
          await previous?.close();
          for (const name of await readdir(dir)) {
            const other = FILE.exec(name);
            if (other && Number(other[1]) !== next) await rm(join(dir, name), { force: true });
          }
        },
        catch: failure(dropJournalFile(dir, next)),
      });
    yield* Effect.acquireRelease(start(generation), () =>
      Effect.tryPromise(() => handle?.close() ?? Promise.resolve()).pipe(Effect.ignore),
    );
    return {
      generation: () => current,
      record: (drops) =>
        drops.length === 0
          ? Effect.void
          : Effect.tryPromise({
              try: async () => {
                await handle!.write(drops.map((drop) => `${JSON.stringify(drop)}\n`).join(""));
                await handle!.sync();
              },
              catch: failure(dropJournalFile(dir, current)),
            }),
      rotate: Effect.suspend(() => start(current + 1)),
    };
  });
