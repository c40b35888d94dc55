/**
 * What the dashboard costs the monitor: per record of a real run's metrics.jsonl, the monitor's own
 * work (serialise and write the line) against the same plus the dashboard's (parse it back, update
 * the curves and the Prometheus registry), and the time to render /metrics afterwards.
 *
 *   node bin/run-ts.mjs bench/dashboard.ts runs/<experiment>/metrics.jsonl [records=50000]
 *
 * The file's lines are replayed (steps shifted so curves keep growing) until `records` have passed.
 */
import { readFileSync } from "node:fs";
import { makeDashboardState } from "../dashboard/index.ts";

const [file, recordsArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: bench/dashboard.ts METRICS_JSONL [records=50000]");
  process.exit(2);
}
const target = Number(recordsArg ?? 50_000);
const source = readFileSync(file, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((line) => JSON.parse(line) as { time: number; type: string; sender: string; body: { step?: number } });
const maxStep = Math.max(1, ...source.map((r) => r.body.step ?? 0));
const records = Array.from({ length: target }, (_, i) => {
  const r = source[i % source.length]!;
  const round = Math.floor(i / source.length);
  return r.body.step === undefined ? r : { ...r, body: { ...r.body, step: r.body.step + round * maxStep } };
});

/** ms for one pass: serialise every record (the monitor's line), and optionally ingest it. */
function pass(withDashboard: boolean): number {
  const state = withDashboard ? makeDashboardState() : undefined;
  let bytes = 0;
  const started = performance.now();
  for (const r of records) {
    const line = JSON.stringify(r);
    bytes += line.length;
    state?.ingestLine(line);
  }
  const ms = performance.now() - started;
  if (bytes === 0) throw new Error("nothing serialised");
  return ms;
}

// Warm up, then alternate so drift in machine load hits both alike.
pass(false);
pass(true);
const plain: number[] = [];
const dashboard: number[] = [];
for (let i = 0; i < 3; i++) {
  plain.push(pass(false));
  dashboard.push(pass(true));
}
const best = (xs: number[]) => Math.min(...xs);
const state = makeDashboardState();
for (const r of records) state.ingestLine(JSON.stringify(r));
const renderStarted = performance.now();
const text = await state.prometheus.text();
const renderMs = performance.now() - renderStarted;

const perRecord = (ms: number) => (1000 * ms) / records.length;
console.log(`${records.length} records replayed from ${file} (${source.length} lines, ${maxStep} learner steps)`);
console.log(`monitor alone:           ${perRecord(best(plain)).toFixed(2)} µs/record`);
console.log(`monitor + dashboard:     ${perRecord(best(dashboard)).toFixed(2)} µs/record`);
console.log(`dashboard's share:       ${perRecord(best(dashboard) - best(plain)).toFixed(2)} µs/record`);
console.log(
  `records per learner step: ${(source.length / maxStep).toFixed(1)} → dashboard ${((source.length / maxStep) * perRecord(best(dashboard) - best(plain))).toFixed(0)} µs of monitor CPU per step`,
);
console.log(`/metrics render:         ${renderMs.toFixed(1)} ms (${text.length} bytes)`);
