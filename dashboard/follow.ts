/**
 * Follows a run directory's `metrics.jsonl` into a dashboard state: everything written so far, then
 * each line as it is appended (the file is polled: it may be on a network file system, and a run
 * that has not started writing yet is fine). A line cut mid-write waits for its end.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DashboardState } from "./state.ts";

const POLL_MS = 1_000;
const CHUNK = 1 << 20;

export function followRunFile(runDir: string, state: DashboardState, pollMs = POLL_MS): { readonly stop: () => void } {
  const file = join(runDir, "metrics.jsonl");
  let offset = 0;
  let partial = "";
  const readNew = () => {
    if (!existsSync(file)) return;
    const size = statSync(file).size;
    // A file that shrank was started over (`--fresh`): read it again from the start.
    if (size < offset) {
      offset = 0;
      partial = "";
    }
    if (size === offset) return;
    const fd = openSync(file, "r");
    try {
      const buffer = Buffer.alloc(CHUNK);
      while (offset < size) {
        const n = readSync(fd, buffer, 0, Math.min(CHUNK, size - offset), offset);
        if (n === 0) break;
        offset += n;
        const lines = (partial + buffer.subarray(0, n).toString("utf8")).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) state.ingestLine(line);
      }
    } finally {
      closeSync(fd);
    }
  };
  readNew();
  const timer = setInterval(readNew, pollMs);
  return { stop: () => clearInterval(timer) };
}
