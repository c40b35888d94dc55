/**
 * What lineage costs the run directory's writes: a finished run's directory is written again into a
 * scratch directory with the primitives the run uses — its lineage lines serialised and appended one
 * by one to a stream (learner/lineage.ts), and everything else as the run writes it (metrics lines
 * appended to a stream by the monitor, checkpoint and evaluation files written whole) — the two arms
 * alternated, `rounds` times. Reports the lineage's write time as a share of the rest's.
 *
 *   node bin/run-ts.mjs bench/lineage.ts RUN_DIR [rounds=9]
 *
 * RUN_DIR is `runs/<experiment>` of a run made with `output.lineageShare` > 0 (the quick start's
 * default is 1: every group).
 */
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { median } from "./lib/stats.ts";

const [runDir, roundsArg] = process.argv.slice(2);
if (!runDir) {
  console.error("usage: bench/lineage.ts RUN_DIR [rounds=9]");
  process.exit(2);
}
const rounds = Number(roundsArg ?? 9);

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)],
  );
const all = files(runDir).map((path) => relative(runDir, path));
const APPENDED = new Set(["lineage.jsonl", "metrics.jsonl"]);
const lineage = readFileSync(join(runDir, "lineage.jsonl"), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line) as unknown);
const metricsLines = readFileSync(join(runDir, "metrics.jsonl"), "utf8").split("\n").filter(Boolean);
const whole = all.filter((f) => !APPENDED.has(f)).map((f) => ({ path: f, bytes: readFileSync(join(runDir, f)) }));

/** Appends each line to a fresh stream, as the learner and the monitor do; ms until flushed. */
async function appendLines(path: string, lines: readonly string[]): Promise<number> {
  const started = performance.now();
  const stream = createWriteStream(path, { flags: "a" });
  for (const line of lines) stream.write(`${line}\n`);
  await new Promise<void>((resolve) => stream.end(resolve));
  return performance.now() - started;
}

async function lineageArm(scratch: string): Promise<number> {
  const started = performance.now();
  // Serialising is part of the learner's cost, so it is inside the timed span.
  const lines = lineage.map((record) => JSON.stringify(record));
  const serialiseMs = performance.now() - started;
  return serialiseMs + (await appendLines(join(scratch, "lineage.jsonl"), lines));
}

async function restArm(scratch: string): Promise<number> {
  const started = performance.now();
  for (const file of whole) {
    await mkdir(dirname(join(scratch, file.path)), { recursive: true });
    await writeFile(join(scratch, file.path), file.bytes);
  }
  const wholeMs = performance.now() - started;
  return wholeMs + (await appendLines(join(scratch, "metrics.jsonl"), metricsLines));
}

const lineageMs: number[] = [];
const restMs: number[] = [];
for (let round = 0; round < rounds; round++) {
  const scratch = mkdtempSync(join(tmpdir(), "factrl-lineage-bench-"));
  if (round % 2 === 0) {
    lineageMs.push(await lineageArm(scratch));
    restMs.push(await restArm(scratch));
  } else {
    restMs.push(await restArm(scratch));
    lineageMs.push(await lineageArm(scratch));
  }
  rmSync(scratch, { recursive: true, force: true });
}

const size = (f: string) => statSync(join(runDir, f)).size;
const lineageBytes = size("lineage.jsonl");
const restBytes = all.filter((f) => f !== "lineage.jsonl").reduce((sum, f) => sum + size(f), 0);
const lm = median(lineageMs);
const rm = median(restMs);
console.log(
  JSON.stringify(
    {
      runDir,
      rounds,
      lineageRecords: lineage.length,
      lineageBytes,
      restBytes,
      lineageMsMedian: Number(lm.toFixed(2)),
      restMsMedian: Number(rm.toFixed(2)),
      lineageShareOfRestTime: Number((lm / rm).toFixed(4)),
      lineageShareOfRestBytes: Number((lineageBytes / restBytes).toFixed(4)),
    },
    null,
    1,
  ),
);
