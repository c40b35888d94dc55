import { appendFile, mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { countDrops, dropJournalFile, openDropJournal, readDropJournal } from "./drop-journal.ts";

describe("the drop journal", () => {
  it("reads back what was recorded, generation by generation; rotating deletes the older files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-drops-"));
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const journal = yield* openDropJournal(dir, 3);
          yield* journal.record([
            { reason: "stale", id: "g1" },
            { reason: "zeroVariance", id: "g2" },
          ]);
          yield* journal.record([{ reason: "invalid" }]);
          const third = yield* readDropJournal(dir, 3);
          yield* journal.rotate;
          yield* journal.record([{ reason: "duplicates", id: "g1" }]);
          return { third, generation: journal.generation(), fourth: yield* readDropJournal(dir, 4) };
        }),
      ),
    );
    expect(result.third).toEqual([
      { reason: "stale", id: "g1" },
      { reason: "zeroVariance", id: "g2" },
      { reason: "invalid" },
    ]);
    expect(result.generation).toBe(4);
    expect(result.fourth).toEqual([{ reason: "duplicates", id: "g1" }]);
    expect(await readdir(dir)).toEqual(["drops-4.jsonl"]);
    expect(await Effect.runPromise(readDropJournal(dir, 3))).toEqual([]);
  });

  it("skips a line cut off by a crash (never fsync'd, so its delivery was never settled)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-drops-"));
    await appendFile(dropJournalFile(dir, 0), '{"reason":"stale","id":"g1"}\n{"reason":"zeroVar');
    expect(await Effect.runPromise(readDropJournal(dir, 0))).toEqual([{ reason: "stale", id: "g1" }]);
  });

  it("adds drops to their counts", () => {
    const counts = { stale: 1, zeroVariance: 0, duplicates: 2, invalid: 0, offPolicy: 0, step: 7 };
    expect(
      countDrops(counts, [{ reason: "stale", id: "a" }, { reason: "stale", id: "b" }, { reason: "invalid" }]),
    ).toEqual({ stale: 3, zeroVariance: 0, duplicates: 2, invalid: 1, offPolicy: 0, step: 7 });
  });
});
