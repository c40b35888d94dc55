/**
 * Soak (issue 19 part 3): the quick start's actor pipeline kept running for N minutes, every
 * process's resident memory and open descriptors (/proc/PID/status, /proc/PID/fd) and the work
 * queues' depths sampled throughout. Reports each process's memory slope (MB/min, a least-squares
 * line through the samples after the warm-up), its growth in open handles, and each queue's
 * maximum depth. Outside CI: it takes its minutes.
 *
 *   node bin/run-ts.mjs bench/soak.ts [--minutes 30] [--warmup 5] [--every 10] [--config configs/quickstart.yaml] [--set key=value …]
 *
 * The run's learner.totalSteps is set out of reach; the run is stopped (SIGINT, a graceful drain)
 * when the minutes are up. Figures in BENCHMARKS.md, "Soak".
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Layer, ManagedRuntime } from "effect";
import { PIPELINE_QUEUES } from "../actors/index.ts";
import { ExperimentLive, NatsLive, pendingWork, rootLogger, startLocalServer } from "../messaging/index.ts";
import { processTree, spawnFactrlRun } from "./lib/process-tree.ts";
import { type ProcessSample, processTrend } from "./lib/soak-stats.ts";

const { values: args } = parseArgs({
  options: {
    config: { type: "string", default: "configs/quickstart.yaml" },
    minutes: { type: "string", default: "30" },
    warmup: { type: "string", default: "5" },
    every: { type: "string", default: "10" },
    set: { type: "string", multiple: true, default: [] },
  },
});
const minutes = Number(args.minutes);
const warmup = Math.min(Number(args.warmup), minutes / 2);
const logger = rootLogger().child({ component: "bench-soak" }, { level: "warn" });

const rssMb = (pid: number) => {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) / 1024;
};
const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

const server = await startLocalServer();
const experiment = `soak-${process.pid}`;
const outDir = mkdtempSync(join(tmpdir(), "factrl-soak-"));
const runtime = ManagedRuntime.make(
  Layer.merge(NatsLive({ servers: server.url, name: "bench-soak", logger }), ExperimentLive(experiment, "bench")),
);
const logFile = join(outDir, "factrl-run.log");
const child = spawnFactrlRun(
  args.config!,
  server.url,
  [`experiment=${experiment}`, `output.dir=${outDir}`, "learner.totalSteps=1000000", ...args.set!],
  logFile,
);
let exitCode: number | null | undefined;
const exited = new Promise<void>((done) =>
  child.once("exit", (code) => {
    exitCode = code;
    done();
  }),
);
console.log(`# Soak: ${args.config} for ${minutes} min (warm-up ${warmup} min), sampling every ${args.every} s`);
console.log(`run log: ${logFile}`);

/** Samples by process, keyed `role pid` (several rollout actors share a role). */
const samples = new Map<string, ProcessSample[]>();
const queueMax = new Map<string, number>();
const queueLast = new Map<string, number>();
const started = Date.now();
const sample = async () => {
  const minute = (Date.now() - started) / 60_000;
  for (const p of [...processTree(child.pid!), { pid: server.pid, role: "nats-server", cpu: 0, cmd: "nats-server" }]) {
    try {
      const key = `${p.role} ${p.pid}`;
      samples.set(key, [...(samples.get(key) ?? []), { minute, rssMb: rssMb(p.pid), fds: openFds(p.pid) }]);
    } catch {} // exited meanwhile
  }
  for (const queue of PIPELINE_QUEUES) {
    const depth = await runtime.runPromise(pendingWork(queue)).catch(() => undefined);
    if (depth === undefined) continue;
    queueMax.set(queue.name, Math.max(queueMax.get(queue.name) ?? 0, depth));
    queueLast.set(queue.name, depth);
  }
};
while (Date.now() - started < minutes * 60_000 && exitCode === undefined) {
  await sample();
  await Promise.race([exited, new Promise((tick) => setTimeout(tick, Number(args.every) * 1000))]);
}
if (exitCode !== undefined) {
  console.error(`factrl run exited early with ${exitCode}; see ${logFile}`);
  process.exitCode = 1;
}
child.kill("SIGINT");
await exited;
await runtime.dispose();
await server.stop();

// Progress reached, from the learner's metrics the monitor wrote.
const metricsFile = join(outDir, experiment, "metrics.jsonl");
const learnerSteps = (existsSync(metricsFile) ? readFileSync(metricsFile, "utf8") : "")
  .split("\n")
  .filter((line) => line.includes('"role":"learner"'))
  .map((line) => (JSON.parse(line) as { body: { step?: number } }).body.step ?? 0)
  .reduce((a, b) => Math.max(a, b), 0);
console.log(
  `\nran ${((Date.now() - started) / 60_000).toFixed(1)} min, ${learnerSteps} learner steps; load average at the end ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}\n`,
);
console.log(
  "| process | RSS after warm-up → end (MB) | max RSS (MB) | RSS slope (MB/min) | open handles: growth (max) |",
);
console.log("|---|---|---|---|---|");
for (const [key, series] of [...samples].sort(([a], [b]) => a.localeCompare(b))) {
  const trend = processTrend(series, warmup);
  if (!trend) continue;
  console.log(
    `| ${key} | ${trend.rssFirstMb.toFixed(0)} → ${trend.rssLastMb.toFixed(0)} | ${trend.rssMaxMb.toFixed(0)} | ` +
      `${trend.rssSlopeMbPerMin >= 0 ? "+" : ""}${trend.rssSlopeMbPerMin.toFixed(2)} | ${trend.fdGrowth >= 0 ? "+" : ""}${trend.fdGrowth} (${trend.fdMax}) |`,
  );
}
console.log("\n| queue | max depth | depth at the end |");
console.log("|---|---|---|");
for (const [name, max] of queueMax) console.log(`| ${name} | ${max} | ${queueLast.get(name)} |`);
