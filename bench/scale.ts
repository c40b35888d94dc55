/**
 * Many rollout actors through the real broker (issue 19, part 4): groups/s, publish-ack latency,
 * the ledger and the staleness of consumed groups for 1, 4, 16 and 64 replaying actors, on one
 * nats-server and on a 3-node cluster (R3 streams), arms interleaved within one run.
 *
 * What runs (factrl's own messaging code, nothing re-implemented):
 *   - recording: the serial runner (`factrl run --serial`) on configs/tiny.yaml samples and scores a
 *     few real groups (G = 8, the default); their ScoredGroups are encoded with the real codec and
 *     handed to the actors, which decode them (sampling is replaced by replaying these);
 *   - a curator-like feeder publishes PromptGroups (publishWorkAll) to the `prompts` work queue,
 *     keeping at most `--in-flight-per-actor` (16) groups per actor outstanding (the curator's credits;
 *     `--in-flight N` fixes the window whatever the actor count, as curation.maxGroupsInFlight does);
 *   - each actor is the rollout actor's messaging loop on its own NATS connection: fetch up to
 *     `--batch` prompt groups (openWorkFetcher), take the newest version announced on the `policy` KV
 *     key (watchState), publish the replayed groups stamped with it and the prompt's group id as msgID
 *     (publishWork, all of a batch in flight at once, as publishWorkAll does), then ack the prompts;
 *     actors publish straight to `scored` (the reward hop is the same publish/fetch/ack again);
 *   - a learner-like consumer fetches `scored` in batches of `--fetch` (openWorkFetcher), records
 *     each group's policy lag and acks it (settle done, one after another as the learner does),
 *     while it announces a new policy version every `--version-ms` (putState on `policy`).
 * Actors live `--actors-per-process` (16) to a worker process, each with its own connection, so
 * the broker sees one client per actor as in a deployment (one actor per process there).
 *
 * Run: node bin/run-ts.mjs bench/scale.ts [--actors 1,4,16,64] [--seconds 10] [--warmup 2] [--topologies single,cluster]
 *        [--acks serial[,parallel]] [--in-flight N] [--batch 4] [--fetch 8] [--version-ms 250]
 *        [--nats URL --replicas N]  (an existing server or cluster instead of local ones)
 */
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Deferred, Duration, Effect, Either, Fiber, Layer, Queue } from "effect";
import {
  PROMPTS_QUEUE,
  type PromptGroup,
  SCORED_QUEUE,
  type ScoredGroup,
  ScoredGroupMessage,
} from "../actors/topology.ts";
import {
  deadLetterCount,
  decodeEnvelope,
  ExperimentLive,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  type LocalCluster,
  type LocalServer,
  Nats,
  NatsLive,
  openWorkFetcher,
  POLICY_KEY,
  pendingWork,
  publishWork,
  publishWorkAll,
  putState,
  rootLogger,
  startLocalCluster,
  startLocalServer,
  WorkOutcome,
  watchState,
  weightsBlobName,
} from "../messaging/index.ts";
import { processTreeCpu, totalCpu } from "./lib/process-tree.ts";

const REPO = resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: {
    worker: { type: "boolean", default: false },
    actors: { type: "string", default: "1,4,16,64" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "1" },
    topologies: { type: "string", default: "single,cluster" },
    nats: { type: "string" },
    replicas: { type: "string", default: "1" },
    batch: { type: "string", default: "4" },
    fetch: { type: "string", default: "8" },
    "in-flight-per-actor": { type: "string", default: "16" },
    "in-flight": { type: "string" },
    "version-ms": { type: "string", default: "250" },
    "actors-per-process": { type: "string", default: "16" },
    record: { type: "string", default: "16" },
    acks: { type: "string", default: "serial" },
  },
});
const quiet = rootLogger().child({ component: "bench-scale" }, { level: process.env.SCALE_LOG ?? "error" });
const connection = (url: string, replicas: number, name: string) =>
  NatsLive({ servers: url.split(","), replicas, name, logger: quiet });

// ── the actors (worker processes) ─────────────────────────────────────────────────────────────────

/** What the parent asks a worker to run. */
interface WorkerSpec {
  readonly url: string;
  readonly replicas: number;
  readonly experiment: string;
  readonly actorIds: readonly string[];
  readonly batch: number;
  /** Encoded ScoredGroup envelopes to replay. */
  readonly recorded: readonly Uint8Array[];
}

interface WorkerResult {
  /** Stored by this worker's publishes in the window (acks not answered "duplicate"). */
  readonly publishedInWindow: number;
  /**
   * Every group id whose publish was acknowledged, "duplicate" answers included: publishWork retries
   * an ack that timed out with the same msgID, and the retry finds the first attempt stored.
   */
  readonly storedIds: readonly string[];
  /** Acks answered "duplicate". */
  readonly duplicates: number;
  readonly promptsAcked: number;
  /** ms from each publish to its ack, and from each batch's first publish to its last ack. */
  readonly ackMs: readonly number[];
  readonly batchMs: readonly number[];
  /** The worker's CPU seconds over the window. */
  readonly cpuSeconds: number;
}

type ToWorker = { readonly go: number; readonly windowFrom: number; readonly stopAt: number };
type FromWorker = { readonly ready: true } | { readonly result: WorkerResult };

/** A recorded group replayed as the answer to `prompt`, sampled by `version`. */
const replay = (recorded: ScoredGroup, prompt: PromptGroup, version: number, actor: string): ScoredGroup => {
  const now = Date.now();
  return {
    ...recorded,
    rollout: {
      ...recorded.rollout,
      group: prompt,
      policyVersion: version,
      actor,
      timings: { startedAt: now, finishedAt: now },
    },
  };
};

async function runWorker() {
  const spec = await new Promise<WorkerSpec>((resolve) => process.once("message", (m) => resolve(m as WorkerSpec)));
  const recorded = spec.recorded.map((bytes) => {
    const decoded = decodeEnvelope(bytes, { accept: [ScoredGroupMessage] });
    if (Either.isLeft(decoded)) throw decoded.left;
    return decoded.right.body as ScoredGroup;
  });
  let release: (go: ToWorker) => void = () => {};
  const go = new Promise<ToWorker>((resolve) => {
    release = resolve;
  });
  process.on("message", (m) => release(m as ToWorker));
  const stats = {
    publishedInWindow: 0,
    storedIds: [] as string[],
    duplicates: 0,
    promptsAcked: 0,
    ackMs: [] as number[],
    batchMs: [] as number[],
  };
  const ready = await Effect.runPromise(Deferred.make<void>());
  let readyCount = 0;

  const actor = (id: string) =>
    Effect.gen(function* () {
      const prompts = yield* openWorkFetcher(PROMPTS_QUEUE);
      const versions = yield* watchState(POLICY_KEY);
      if (++readyCount === spec.actorIds.length) yield* Deferred.succeed(ready, undefined);
      const { windowFrom, stopAt } = yield* Effect.promise(() => go);
      let version = 0;
      let replayed = 0;
      while (Date.now() < stopAt) {
        const fetched = yield* prompts.fetch({ max: spec.batch, expiresMs: 1_000 });
        if (fetched.length === 0) continue;
        // Between batches, as the rollout actor loads a newer version: the newest announced.
        for (const entry of yield* Queue.takeAll(versions)) version = Math.max(version, entry.value.version);
        const started = performance.now();
        // publishWorkAll's own composition (every publish in flight at once), each publish timed.
        const acks = yield* Effect.forEach(
          fetched,
          (item) =>
            Effect.timed(
              publishWork(SCORED_QUEUE, replay(recorded[replayed++ % recorded.length]!, item.body, version, id), {
                msgId: item.body.groupId,
              }),
            ),
          { concurrency: "unbounded" },
        );
        const now = Date.now();
        stats.batchMs.push(performance.now() - started);
        for (const [i, [took, ack]] of acks.entries()) {
          stats.ackMs.push(Duration.toMillis(took));
          stats.storedIds.push(fetched[i]!.body.groupId);
          if (ack.duplicate) stats.duplicates += 1;
          else if (now >= windowFrom && now <= stopAt) stats.publishedInWindow += 1;
        }
        // The prompts are settled only once their groups are stored, as the rollout actor does.
        for (const item of fetched) yield* item.settle(WorkOutcome.done);
        stats.promptsAcked += fetched.length;
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(connection(spec.url, spec.replicas, id), ExperimentLive(spec.experiment, id))),
    );

  const all = Effect.runFork(Effect.all(spec.actorIds.map(actor), { concurrency: "unbounded", discard: true }));
  await Effect.runPromise(Deferred.await(ready));
  process.send!({ ready: true } satisfies FromWorker);
  const { windowFrom, stopAt } = await go;
  await new Promise((r) => setTimeout(r, Math.max(0, windowFrom - Date.now())));
  const cpuFrom = process.cpuUsage();
  await new Promise((r) => setTimeout(r, Math.max(0, stopAt - Date.now())));
  const cpu = process.cpuUsage(cpuFrom);
  const exit = await Effect.runPromise(Fiber.await(all));
  if (exit._tag === "Failure") throw new Error(`actors failed: ${String(exit.cause)}`);
  const result: WorkerResult = { ...stats, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
  process.send!({ result } satisfies FromWorker, () => process.exit(0));
}

// ── the parent: recording, feeder, consumer, arms ─────────────────────────────────────────────────

/** Real sampled and scored groups: the serial runner on configs/tiny.yaml (G = 8), encoded with the real codec. */
async function recordGroups(count: number): Promise<Uint8Array[]> {
  // Imported here: the worker processes need neither tfjs nor the config loader.
  const [{ loadConfig }, { runSerial }] = await Promise.all([
    import("../configs/index.ts"),
    import("../pipeline/index.ts"),
  ]);
  const config = await Effect.runPromise(
    loadConfig(join(REPO, "configs/tiny.yaml"), {
      set: [
        "rollout.groupSize=8",
        "rollout.maxNewTokens=128",
        "learner.groupsPerStep=4",
        `learner.totalSteps=${Math.ceil(count / 4)}`,
        `output.dir=${join(tmpdir(), `factrl-bench-scale-${process.pid}`)}`,
        `experiment=scale-record-${process.pid}`,
      ],
    }),
  );
  const groups: ScoredGroup[] = [];
  await Effect.runPromise(Effect.scoped(runSerial(config, { onStep: (step) => groups.push(...step.groups) })));
  await rm(config.output.dir, { recursive: true, force: true });
  return groups
    .slice(0, count)
    .map((body) => encodeEnvelope(envelope(ScoredGroupMessage, body, { experiment: "bench", sender: "recorder" })));
}

interface Broker {
  readonly label: string;
  readonly url: string;
  readonly replicas: number;
  /** The broker's CPU seconds so far (undefined for a server that is not ours). */
  readonly cpu: () => number | undefined;
}

interface ArmResult {
  readonly broker: string;
  readonly actors: number;
  readonly processes: number;
  readonly consumedPerSecond: number;
  readonly publishedPerSecond: number;
  readonly ackMs: readonly number[];
  readonly batchMs: readonly number[];
  readonly lags: readonly number[];
  /** ms per consumer ack (settle done: an ack the server confirms). */
  readonly settleMs: readonly number[];
  /** The whole machine's busy share over the window (every tenant's processes, not only this bench's). */
  readonly boxBusy: number;
  readonly ledger: {
    /** Distinct groups the actors' publishes stored. */
    readonly published: number;
    /** Publishes answered "duplicate" (a retried publish whose first attempt was stored). */
    readonly duplicateAcks: number;
    readonly consumed: number;
    readonly pending: number;
    readonly deadLettered: number;
    readonly duplicatesConsumed: number;
    readonly promptsPublished: number;
    readonly promptsAcked: number;
    readonly promptsPending: number;
  };
  /** Cores used over the window: broker, the parent (feeder + consumer), the actor processes. */
  readonly cores: { readonly broker: number | undefined; readonly consumer: number; readonly actors: number };
  readonly versions: number;
}

/** The machine's CPU time so far, busy and total (clock ticks, from the first line of /proc/stat). */
const boxCpu = () => {
  const ticks = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields.
  return { busy: total - ticks[3]! - ticks[4]!, total };
};

const spawnWorker = () =>
  fork(join(REPO, "bin/run-ts.mjs"), ["bench/scale.ts", "--worker"], {
    cwd: REPO,
    serialization: "advanced",
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });

const nextMessage = (child: ChildProcess) =>
  new Promise<FromWorker>((resolve, reject) => {
    child.once("message", (m) => resolve(m as FromWorker));
    child.once("exit", (code) => reject(new Error(`worker exited with ${code}`)));
  });

async function runArm(
  broker: Broker,
  actors: number,
  acks: string,
  recorded: readonly Uint8Array[],
  arm: string,
): Promise<ArmResult> {
  const seconds = Number(args.seconds);
  const warmup = Number(args.warmup);
  const perProcess = Number(args["actors-per-process"]);
  const inFlight = Number(args["in-flight"] ?? actors * Number(args["in-flight-per-actor"]));
  const experiment = `scale-${process.pid}-${arm}`;
  const processes = Math.ceil(actors / perProcess);
  const layer = Layer.merge(
    connection(broker.url, broker.replicas, "bench-consumer"),
    ExperimentLive(experiment, "learner"),
  );

  return Effect.runPromise(
    Effect.gen(function* () {
      yield* ensureWorkQueues([PROMPTS_QUEUE, SCORED_QUEUE]);
      let version = 0;
      yield* putState(POLICY_KEY, { version, weights: weightsBlobName(version), publishedAt: Date.now() });

      const workers = Array.from({ length: processes }, (_, p) => {
        const child = spawnWorker();
        const ids = Array.from({ length: actors }, (_, a) => `rollout-${a}`).filter((_, a) => a % processes === p);
        child.send({
          url: broker.url,
          replicas: broker.replicas,
          experiment,
          actorIds: ids,
          batch: Number(args.batch),
          recorded,
        } satisfies WorkerSpec);
        return child;
      });
      yield* Effect.promise(() => Promise.all(workers.map(nextMessage)));
      const results = workers.map((child) => nextMessage(child));

      const goAt = Date.now() + 200;
      const windowFrom = goAt + warmup * 1_000;
      const stopAt = windowFrom + seconds * 1_000;
      for (const child of workers) child.send({ go: goAt, windowFrom, stopAt } satisfies ToWorker);

      // The consumer: the learner's fetch, each group's lag against the version it has announced.
      const scored = yield* openWorkFetcher(SCORED_QUEUE);
      const lags: number[] = [];
      const settleMs: number[] = [];
      const seen = new Set<string>();
      let consumed = 0;
      let consumedInWindow = 0;
      let duplicatesConsumed = 0;
      let draining = false;
      const consumer = yield* Effect.fork(
        Effect.gen(function* () {
          for (;;) {
            const items = yield* scored.fetch({ max: Number(args.fetch), expiresMs: 1_000 });
            if (items.length === 0 && draining) return;
            const now = Date.now();
            for (const item of items) {
              const id = item.body.rollout.group.groupId;
              if (seen.has(id)) duplicatesConsumed += 1;
              seen.add(id);
              lags.push(version - item.body.rollout.policyVersion);
            }
            // The learner settles its groups one after another (each ack confirmed); `--acks parallel` all at once.
            const acked = yield* Effect.forEach(items, (item) => Effect.timed(item.settle(WorkOutcome.done)), {
              concurrency: acks === "parallel" ? "unbounded" : 1,
            });
            for (const [took] of acked) settleMs.push(Duration.toMillis(took));
            consumed += items.length;
            if (now >= windowFrom && now <= stopAt) consumedInWindow += items.length;
          }
        }),
      );
      // New versions at a fixed rate, from go to stop.
      const ticker = yield* Effect.fork(
        Effect.gen(function* () {
          yield* Effect.sleep(Math.max(0, goAt - Date.now()));
          while (Date.now() < stopAt) {
            yield* Effect.sleep(Number(args["version-ms"]));
            version += 1;
            yield* putState(POLICY_KEY, { version, weights: weightsBlobName(version), publishedAt: Date.now() });
          }
        }),
      );
      // The feeder: the curator's credits (at most inFlight groups published and not yet consumed).
      let promptsPublished = 0;
      const template = decodeEnvelope(recorded[0]!, { accept: [ScoredGroupMessage] });
      if (Either.isLeft(template)) return yield* Effect.die(template.left);
      const prompt = (template.right.body as ScoredGroup).rollout.group;
      const feeder = yield* Effect.fork(
        Effect.gen(function* () {
          while (Date.now() < stopAt) {
            const credits = Math.min(64, inFlight - (promptsPublished - consumed));
            if (credits <= 0) {
              yield* Effect.sleep(2);
              continue;
            }
            const batch = Array.from({ length: credits }, (_, i) => {
              const groupId = `g${promptsPublished + i}`;
              return { body: { ...prompt, groupId, createdAt: Date.now() }, msgId: groupId };
            });
            yield* publishWorkAll(PROMPTS_QUEUE, batch);
            promptsPublished += credits;
          }
        }),
      );

      yield* Effect.sleep(Math.max(0, windowFrom - Date.now()));
      const cpuFrom = { broker: broker.cpu(), consumer: process.cpuUsage(), box: boxCpu() };
      yield* Effect.sleep(Math.max(0, stopAt - Date.now()));
      const brokerCpu = broker.cpu();
      const consumerCpu = process.cpuUsage(cpuFrom.consumer);
      const box = boxCpu();
      const boxBusy = (box.busy - cpuFrom.box.busy) / (box.total - cpuFrom.box.total);
      yield* Fiber.join(feeder);
      yield* Fiber.join(ticker);
      const done = yield* Effect.promise(() => Promise.all(results));
      // Every actor has stopped: drain what they stored, then read the ledger.
      draining = true;
      yield* Fiber.join(consumer);
      const workerResults = done.map((m) => (m as { result: WorkerResult }).result);
      const sum = (f: (r: WorkerResult) => number) => workerResults.reduce((total, r) => total + f(r), 0);
      const ledger = {
        published: new Set(workerResults.flatMap((r) => r.storedIds)).size,
        duplicateAcks: sum((r) => r.duplicates),
        consumed,
        pending: yield* pendingWork(SCORED_QUEUE),
        deadLettered: (yield* deadLetterCount(SCORED_QUEUE)) + (yield* deadLetterCount(PROMPTS_QUEUE)),
        duplicatesConsumed,
        promptsPublished,
        promptsAcked: sum((r) => r.promptsAcked),
        promptsPending: yield* pendingWork(PROMPTS_QUEUE),
      };
      // Leave the broker as it was: this arm's streams and its KV bucket go.
      const { manager } = yield* Nats;
      const names: string[] = [];
      yield* Effect.promise(async () => {
        for await (const name of manager.streams.names()) names.push(name);
      });
      const token = experiment.replaceAll("-", "_");
      for (const name of names.filter((n) => n.includes(experiment) || n.includes(token))) {
        yield* Effect.promise(() => manager.streams.delete(name));
      }
      return {
        broker: acks === "parallel" ? `${broker.label}, parallel acks` : broker.label,
        actors,
        processes,
        consumedPerSecond: consumedInWindow / seconds,
        publishedPerSecond: sum((r) => r.publishedInWindow) / seconds,
        ackMs: workerResults.flatMap((r) => r.ackMs),
        batchMs: workerResults.flatMap((r) => r.batchMs),
        lags,
        settleMs,
        boxBusy,
        ledger,
        cores: {
          broker:
            brokerCpu === undefined || cpuFrom.broker === undefined
              ? undefined
              : (brokerCpu - cpuFrom.broker) / seconds,
          consumer: (consumerCpu.user + consumerCpu.system) / 1e6 / seconds,
          actors: sum((r) => r.cpuSeconds) / seconds,
        },
        versions: version,
      } satisfies ArmResult;
    }).pipe(Effect.scoped, Effect.provide(layer)),
  );
}

const percentile = (values: readonly number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? Number.NaN;
const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n)
    ? "—"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function report(results: readonly ArmResult[]) {
  console.log("\n## Throughput and publish-ack latency");
  console.log(
    "| broker | actors (processes) | groups/s consumed | groups/s stored | publish-ack p50 / p95 / p99 ms | batch p50 / p99 ms | consumer ack p50 / p99 ms | cores: broker / consumer / actors | machine busy |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.broker} | ${r.actors} (${r.processes}) | ${fmt(r.consumedPerSecond)} | ${fmt(r.publishedPerSecond)} | ` +
        `${fmt(percentile(r.ackMs, 0.5), 1)} / ${fmt(percentile(r.ackMs, 0.95), 1)} / ${fmt(percentile(r.ackMs, 0.99), 1)} | ` +
        `${fmt(percentile(r.batchMs, 0.5), 1)} / ${fmt(percentile(r.batchMs, 0.99), 1)} | ` +
        `${fmt(percentile(r.settleMs, 0.5), 1)} / ${fmt(percentile(r.settleMs, 0.99), 1)} | ` +
        `${fmt(r.cores.broker, 2)} / ${fmt(r.cores.consumer, 2)} / ${fmt(r.cores.actors, 2)} | ${fmt(100 * r.boxBusy)} % |`,
    );
  }
  console.log("\n## Ledger (after the actors stopped and the consumer drained)");
  console.log(
    "| broker | actors | scored stored | consumed | pending | dead-lettered | consumed twice | adds up | acks answered duplicate | prompts published | acked | pending |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const l = r.ledger;
    const addsUp = l.published === l.consumed + l.pending + l.deadLettered && l.duplicatesConsumed === 0;
    const promptsAddUp = l.promptsPublished === l.promptsAcked + l.promptsPending;
    console.log(
      `| ${r.broker} | ${r.actors} | ${l.published} | ${l.consumed} | ${l.pending} | ${l.deadLettered} | ${l.duplicatesConsumed} | ` +
        `${addsUp && promptsAddUp ? "yes" : "**NO**"} | ${l.duplicateAcks} | ${l.promptsPublished} | ${l.promptsAcked} | ${l.promptsPending} |`,
    );
  }
  console.log(`\n## Policy lag of consumed groups (a new version every ${args["version-ms"]} ms)`);
  console.log("| broker | actors | versions | lag 0 | 1 | 2 | 3 | ≥ 4 | p50 | p95 | max |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    const share = (f: (lag: number) => boolean) => `${fmt((100 * r.lags.filter(f).length) / r.lags.length, 1)} %`;
    console.log(
      `| ${r.broker} | ${r.actors} | ${r.versions} | ${share((l) => l === 0)} | ${share((l) => l === 1)} | ${share((l) => l === 2)} | ` +
        `${share((l) => l === 3)} | ${share((l) => l >= 4)} | ${percentile(r.lags, 0.5)} | ${percentile(r.lags, 0.95)} | ${Math.max(...r.lags)} |`,
    );
  }
}

async function main() {
  const counts = args.actors.split(",").map(Number);
  const topologies = args.topologies.split(",");
  console.log(
    `factrl scale bench — node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} at start`,
  );
  console.log(
    `settings: batch ${args.batch}, consumer fetch ${args.fetch}, acks ${args.acks}, in flight ${args["in-flight"] ?? `${args["in-flight-per-actor"]} per actor`}, ` +
      `a version every ${args["version-ms"]} ms, ${args["actors-per-process"]} actors a process, window ${args.seconds} s after ${args.warmup} s`,
  );
  const started = performance.now();
  const recorded = await recordGroups(Number(args.record));
  console.log(
    `recorded ${recorded.length} real scored groups (serial runner, configs/tiny.yaml, G = 8) in ${fmt((performance.now() - started) / 1000, 1)} s: ` +
      `${fmt(recorded.reduce((s, b) => s + b.byteLength, 0) / recorded.length)} bytes each on average`,
  );
  const brokers: Broker[] = [];
  const stops: (() => Promise<void>)[] = [];
  const cpuOf = (pids: () => number[]) => () => pids().reduce((s, pid) => s + totalCpu(processTreeCpu(pid)), 0);
  try {
    if (args.nats !== undefined) {
      brokers.push({ label: "given", url: args.nats, replicas: Number(args.replicas), cpu: () => undefined });
    } else {
      if (topologies.includes("single")) {
        const server: LocalServer = await startLocalServer();
        stops.push(server.stop);
        brokers.push({ label: "1 node", url: server.url, replicas: 1, cpu: cpuOf(() => [server.pid]) });
      }
      if (topologies.includes("cluster")) {
        const dir = join(tmpdir(), `factrl-bench-scale-${process.pid}-nats`);
        const cluster: LocalCluster = await startLocalCluster({ nodes: 3, dir });
        stops.push(async () => {
          await cluster.stop();
          await rm(dir, { recursive: true, force: true });
        });
        const pids = () => cluster.nodes.flatMap((node) => (node.server() ? [node.server()!.pid] : []));
        brokers.push({ label: "3 nodes, R3", url: cluster.url, replicas: 3, cpu: cpuOf(pids) });
      }
    }
    const results: ArmResult[] = [];
    // Arms interleaved (each actor count on every broker before the next count): they share the machine's load of the moment.
    for (const actors of counts) {
      for (const [b, broker] of brokers.entries()) {
        for (const acks of args.acks.split(",")) {
          const result = await runArm(broker, actors, acks, recorded, `${actors}a${b}${acks[0]}`);
          console.log(
            `${result.broker}, ${actors} actors: ${fmt(result.consumedPerSecond)} groups/s consumed, ack p50 ${fmt(percentile(result.ackMs, 0.5), 1)} ms`,
          );
          results.push(result);
        }
      }
    }
    report(results);
    console.log(
      `\nload average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")} at the end`,
    );
  } finally {
    for (const stop of stops) await stop();
  }
}

if (args.worker) await runWorker();
else await main();
