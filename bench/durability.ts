/**
 * What syncing every JetStream write to disk would cost here (issue 13, item 4).
 *
 * nats-server 2.9.10 (Debian's, the one on this machine) has no `sync_interval: always`, so the real
 * A/B cannot run. Two proxies instead, measured on the filesystem of the store directory:
 *   1. fsync: write 1 KiB and fdatasync, one after another (what "a sync on every write" adds per write);
 *   2. the work queue: publish-ack latency and throughput of `publishWork` (prompt groups and
 *      rollout groups) against a local server whose store is in that directory. Run it once on an
 *      ordinary directory and once on a filesystem mounted with `-o sync` (every write synchronous:
 *      the closest this server gets to sync_interval: always) and compare.
 * Run: node bin/run-ts.mjs bench/durability.ts [--store DIR] [--quick]
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Effect, Layer } from "effect";
import { PIPELINE_QUEUES, PROMPTS_QUEUE, ROLLOUTS_QUEUE } from "../actors/topology.ts";
import {
  ExperimentLive,
  ensureWorkQueues,
  NatsLive,
  publishWork,
  startLocalServer,
  type WorkQueue,
} from "../messaging/index.ts";
import { samplePromptGroup, sampleRolloutGroup } from "../test/messaging/fixtures.ts";

const argument = (name: string) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const quick = process.argv.includes("--quick");
const parent = argument("--store") ?? "/tmp";
const percentile = (values: readonly number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? Number.NaN;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function benchFsync(dir: string, count: number) {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const block = new Uint8Array(1024).fill(7);
  const micros: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const start = process.hrtime.bigint();
      writeSync(fd, block);
      fdatasyncSync(fd);
      micros.push(Number(process.hrtime.bigint() - start) / 1_000);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  console.log(
    `fsync: 1 KiB write + fdatasync, ${count} in a row: median ${fmt(percentile(micros, 0.5))} µs, ` +
      `p99 ${fmt(percentile(micros, 0.99))} µs → at most ${fmt(1e6 / percentile(micros, 0.5))} synced writes/s`,
  );
}

/** One queue's publishes: one at a time (latency) and `inFlight` at once (throughput). */
const benchPublishes = <A>(label: string, queue: WorkQueue<A>, make: (i: number) => A, count: number) =>
  Effect.gen(function* () {
    const micros: number[] = [];
    let start = performance.now();
    for (let i = 0; i < count; i++) {
      const sent = process.hrtime.bigint();
      yield* publishWork(queue, make(i), { msgId: `${label}-seq-${i}` });
      micros.push(Number(process.hrtime.bigint() - sent) / 1_000);
    }
    const sequentialRate = count / ((performance.now() - start) / 1_000);
    start = performance.now();
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) => publishWork(queue, make(i), { msgId: `${label}-par-${i}` }),
      { concurrency: 32, discard: true },
    );
    const parallelRate = count / ((performance.now() - start) / 1_000);
    console.log(
      `${label}: one at a time ${fmt(sequentialRate)} msg/s, publish-ack median ${fmt(percentile(micros, 0.5))} µs, ` +
        `p99 ${fmt(percentile(micros, 0.99))} µs; 32 in flight ${fmt(parallelRate)} msg/s`,
    );
  });

const dir = mkdtempSync(join(parent, "factrl-durability-"));
try {
  const count = quick ? 300 : 2_000;
  console.log(`durability benchmarks${quick ? " (quick)" : ""} — node ${process.version}, store under ${parent}`);
  benchFsync(dir, quick ? 200 : 1_000);
  const server = await startLocalServer({ storeDir: join(dir, "nats"), syncAlways: false });
  try {
    const layer = Layer.merge(NatsLive({ servers: server.url }), ExperimentLive("durability", "bench"));
    await Effect.runPromise(
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        // Warm-up: stream files created, connections and JIT settled.
        yield* benchPublishes("warm-up", PROMPTS_QUEUE, (i) => samplePromptGroup(`w${i}`), 100);
        const prompt = samplePromptGroup("g0");
        const rollout = sampleRolloutGroup("g0");
        yield* benchPublishes("prompt groups", PROMPTS_QUEUE, (i) => ({ ...prompt, groupId: `g${i}` }), count);
        yield* benchPublishes(
          "rollout groups",
          ROLLOUTS_QUEUE,
          (i) => ({ ...rollout, group: { ...rollout.group, groupId: `g${i}` } }),
          count,
        );
      }).pipe(Effect.provide(layer)),
    );
  } finally {
    await server.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
