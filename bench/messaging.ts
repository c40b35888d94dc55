/**
 * Messaging benchmarks (issue 2), each a ratio measured within this one run:
 *   1. msgpack (factrl codec, validation included) vs JSON, encode+decode of a rollout group
 *   2. core pub/sub throughput through factrl (schema validation included) vs the raw client
 *   3. JetStream publish → pull-consume → ack throughput of rollout groups
 *   4. 4 MB and 20 MB weight blobs through factrl vs raw Object Store put/get
 * Run: node bin/run-ts.mjs bench/messaging.ts [--quick] [codec|pubsub|workqueue|blobs …]
 */
import { Objm } from "@nats-io/obj";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Effect, Either, Fiber, Layer, Queue, type Scope } from "effect";
import { Packr } from "msgpackr";
import { ROLLOUTS_QUEUE, type RolloutGroup, RolloutGroupMessage } from "../actors/topology.ts";
import {
  consumeWork,
  decodeEnvelope,
  type Experiment,
  ExperimentLive,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  experimentSubjects,
  getBlob,
  type MetricsEvent,
  MetricsEventMessage,
  makePublisher,
  Nats,
  NatsLive,
  newWorkCounters,
  openWorkFetcher,
  publishWork,
  putBlob,
  startLocalServer,
  subscribe,
  WorkOutcome,
} from "../messaging/index.ts";
import { sampleRolloutGroup } from "../test/messaging/fixtures.ts";
import { median } from "./lib/stats.ts";

const quick = process.argv.includes("--quick");
// Sections to run (codec, pubsub, workqueue, blobs); all when none is named.
const sections = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
const wanted = (section: string) => sections.length === 0 || sections.includes(section);
const scale = quick ? 0.2 : 1;
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

// ── 1. codec ────────────────────────────────────────────────────────────────────────────────────
function benchCodec() {
  const body = sampleRolloutGroup("g-bench", 8, 96);
  const meta = { experiment: "bench", sender: "bench" };
  // The JSON a user would otherwise write: typed arrays as number arrays, rebuilt after parsing.
  const toJson = (rollout: RolloutGroup) =>
    JSON.stringify(envelope(RolloutGroupMessage, rollout, meta), (_key, value) =>
      value instanceof Int32Array || value instanceof Float32Array ? Array.from(value) : value,
    );
  const fromJson = (text: string) => {
    const parsed = JSON.parse(text);
    parsed.body.group.promptTokens = Int32Array.from(parsed.body.group.promptTokens);
    for (const answer of parsed.body.answers) {
      answer.tokens = Int32Array.from(answer.tokens);
      answer.logProbs = Float32Array.from(answer.logProbs);
    }
    return parsed;
  };
  const raw = new Packr({ useRecords: false, moreTypes: true });
  const iterations = Math.round(2_000 * scale);
  const time = (run: () => void) => {
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) run();
      samples.push((performance.now() - start) / iterations);
    }
    return median(samples) * 1000; // µs per encode+decode
  };
  const factrl = time(() => {
    const decoded = decodeEnvelope(encodeEnvelope(envelope(RolloutGroupMessage, body, meta)), {
      accept: [RolloutGroupMessage],
    });
    if (Either.isLeft(decoded)) throw decoded.left;
  });
  const msgpackOnly = time(() => raw.unpack(raw.pack(envelope(RolloutGroupMessage, body, meta))));
  const json = time(() => fromJson(toJson(body)));
  const msgpackBytes = encodeEnvelope(envelope(RolloutGroupMessage, body, meta)).byteLength;
  const jsonBytes = Buffer.byteLength(toJson(body));
  console.log("\n## 1. Codec: rollout group, 8 answers × 96 tokens (encode + decode)");
  console.log(`factrl codec (msgpack + schema validation): ${fmt(factrl, 1)} µs, ${fmt(msgpackBytes)} bytes`);
  console.log(`msgpackr alone (no validation):             ${fmt(msgpackOnly, 1)} µs`);
  console.log(`JSON (typed arrays as number arrays):       ${fmt(json, 1)} µs, ${fmt(jsonBytes)} bytes`);
  console.log(
    `→ JSON / factrl time: ${fmt(json / factrl, 2)}×; JSON / msgpack size: ${fmt(jsonBytes / msgpackBytes, 2)}×`,
  );
}

// ── 2. pub/sub throughput ───────────────────────────────────────────────────────────────────────
const metricsBody: MetricsEvent = {
  source: "rollout-1",
  step: 120,
  values: { reward: 0.71, precision: 0.83, detail: 2.1, relevance: 0.5, tokens_per_s: 812.5, answer_len: 96 },
  tags: { suite: "factworld-train" },
};

interface Run {
  /** messages per second, wall clock */
  readonly rate: number;
  /** CPU µs this process spent per message (publisher + subscriber; the server is another process) */
  readonly cpuPerMessage: number;
}

const cpuMicros = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};

// Both sides use factrl's subject names, so the client does the same subject work.
const PUBSUB_SUBJECTS = experimentSubjects("bench");

async function rawPubSub(url: string, count: number): Promise<Run> {
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const packr = new Packr({ useRecords: false, moreTypes: true });
  const meta = { experiment: "bench", sender: "bench" };
  let received = 0;
  const done = new Promise<void>((resolve) => {
    sub.subscribe(PUBSUB_SUBJECTS.allMetrics, {
      callback: (_err, msg) => {
        packr.unpack(msg.data);
        if (++received === count) resolve();
      },
    });
  });
  await sub.flush();
  const subject = PUBSUB_SUBJECTS.metrics("rollout-1");
  const start = performance.now();
  const cpu = cpuMicros();
  for (let i = 0; i < count; i++) {
    pub.publish(subject, packr.pack(envelope(MetricsEventMessage, metricsBody, meta)));
    if (i % 1000 === 999) await pub.flush();
  }
  await done;
  const run = { rate: count / ((performance.now() - start) / 1000), cpuPerMessage: (cpuMicros() - cpu) / count };
  await pub.close();
  await sub.close();
  return run;
}

const withMessaging = <A, E>(url: string, program: Effect.Effect<A, E, Nats | Experiment | Scope.Scope>) =>
  Effect.runPromise(
    program.pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(NatsLive({ servers: url }), ExperimentLive("bench", "bench"))),
    ),
  );

async function factrlPubSub(url: string, count: number): Promise<Run> {
  const subjects = PUBSUB_SUBJECTS;
  // Two connections, publisher and subscriber, as two actors would have.
  const subLayer = Layer.merge(NatsLive({ servers: url }), ExperimentLive("bench", "monitor"));
  const pubLayer = Layer.merge(NatsLive({ servers: url }), ExperimentLive("bench", "rollout-1"));
  return Effect.runPromise(
    Effect.gen(function* () {
      const sub = yield* subscribe(subjects.allMetrics, [MetricsEventMessage], { buffer: count + 1 });
      const taken = yield* Effect.fork(
        Effect.gen(function* () {
          // A reader drains what has arrived in one go, as the monitor does.
          let taken = 0;
          while (taken < count) taken += (yield* Queue.takeBetween(sub.messages, 1, 4096)).length;
        }),
      );
      const rate = yield* Effect.gen(function* () {
        const { connection } = yield* Nats;
        const publish = yield* makePublisher(subjects.metrics("rollout-1"), MetricsEventMessage);
        const start = performance.now();
        const cpu = cpuMicros();
        for (let i = 0; i < count; i++) {
          yield* publish(metricsBody);
          if (i % 1000 === 999) yield* Effect.promise(() => connection.flush());
        }
        yield* Fiber.join(taken);
        return { rate: count / ((performance.now() - start) / 1000), cpuPerMessage: (cpuMicros() - cpu) / count };
      }).pipe(Effect.scoped, Effect.provide(pubLayer));
      if (sub.counters.rejected > 0) throw new Error("unexpected rejections");
      return rate;
    }).pipe(Effect.scoped, Effect.provide(subLayer)),
  );
}

async function benchPubSub(url: string) {
  const count = Math.round(100_000 * scale);
  const rounds = 5;
  // One discarded round each warms up the JIT for both sides.
  await rawPubSub(url, count / 4);
  await factrlPubSub(url, count / 4);
  // Adjacent runs share the machine's load of the moment: compare them pairwise.
  const pairs: { raw: Run; factrl: Run }[] = [];
  for (let round = 0; round < rounds; round++) {
    const raw = await rawPubSub(url, count);
    const factrl = await factrlPubSub(url, count);
    pairs.push({ raw, factrl });
  }
  const ratios = pairs.map((pair) => pair.factrl.rate / pair.raw.rate);
  const cpuRatios = pairs.map((pair) => pair.raw.cpuPerMessage / pair.factrl.cpuPerMessage);
  const size = encodeEnvelope(envelope(MetricsEventMessage, metricsBody, { experiment: "bench", sender: "rollout-1" }));
  const row = (name: string, runs: Run[]) =>
    `${name}: median ${fmt(median(runs.map((r) => r.rate)))} msg/s, ${fmt(median(runs.map((r) => r.cpuPerMessage)), 2)} CPU µs/msg`;
  const spread = (values: number[]) =>
    `median ${fmt(median(values), 2)} (min ${fmt(Math.min(...values), 2)}, max ${fmt(Math.max(...values), 2)})`;
  console.log(
    `\n## 2. Core pub/sub: ${fmt(count)} MetricsEvents (${size.byteLength} bytes), ${rounds} alternating rounds`,
  );
  console.log(
    row(
      "raw @nats-io client (msgpackr pack/unpack)",
      pairs.map((p) => p.raw),
    ),
  );
  console.log(
    row(
      "factrl (envelope + schema validation + Effect Queue)",
      pairs.map((p) => p.factrl),
    ),
  );
  console.log(`→ factrl / raw throughput per round: ${spread(ratios)}`);
  console.log(`→ factrl / raw by CPU per message (raw CPU ÷ factrl CPU) per round: ${spread(cpuRatios)}`);
}

// ── 3. JetStream work queue ─────────────────────────────────────────────────────────────────────
async function benchWorkQueue(url: string) {
  const count = Math.round(2_000 * scale);
  const bytes = encodeEnvelope(
    envelope(RolloutGroupMessage, sampleRolloutGroup(), { experiment: "bench", sender: "b" }),
  );
  const result = await withMessaging(
    url,
    Effect.gen(function* () {
      yield* ensureWorkQueues([ROLLOUTS_QUEUE]);
      const publishAll = (concurrency: number) =>
        Effect.gen(function* () {
          const start = performance.now();
          yield* Effect.forEach(
            Array.from({ length: count }, (_, i) => i),
            (i) => publishWork(ROLLOUTS_QUEUE, sampleRolloutGroup(`g-${concurrency}-${i}`)),
            { concurrency, discard: true },
          );
          return count / ((performance.now() - start) / 1000);
        });
      const consumeAll = (concurrency: number) =>
        Effect.gen(function* () {
          const counters = newWorkCounters();
          const start = performance.now();
          const fiber = yield* Effect.fork(
            consumeWork(ROLLOUTS_QUEUE, () => Effect.succeed(WorkOutcome.done), { concurrency, counters }),
          );
          while (counters.done < count) yield* Effect.sleep("2 millis");
          const rate = count / ((performance.now() - start) / 1000);
          yield* Fiber.interrupt(fiber);
          return rate;
        });
      const fetchAll = (batch: number) =>
        Effect.gen(function* () {
          const fetcher = yield* openWorkFetcher(ROLLOUTS_QUEUE);
          const start = performance.now();
          let done = 0;
          while (done < count) {
            // Ask for no more than remain: a pull for more waits out its expiry.
            const items = yield* fetcher.fetch({ max: Math.min(batch, count - done) });
            for (const item of items) yield* item.settle(WorkOutcome.done);
            done += items.length;
          }
          return count / ((performance.now() - start) / 1000);
        });
      const publishSequential = yield* publishAll(1);
      const consume1 = yield* consumeAll(1);
      const publishPipelined = yield* publishAll(32);
      const consume8 = yield* consumeAll(8);
      yield* publishAll(32);
      const fetch64 = yield* fetchAll(64);
      return { publishSequential, publishPipelined, consume1, consume8, fetch64 };
    }),
  );
  console.log(`\n## 3. JetStream work queue: ${fmt(count)} rollout groups (${fmt(bytes.byteLength)} bytes each)`);
  console.log(`publish, one at a time (await each ack):  ${fmt(result.publishSequential)} msg/s`);
  console.log(`publish, 32 in flight:                    ${fmt(result.publishPipelined)} msg/s`);
  console.log(`consumeWork, 1 worker (pull → ack):       ${fmt(result.consume1)} msg/s`);
  console.log(`consumeWork, 8 workers:                   ${fmt(result.consume8)} msg/s`);
  console.log(`fetch batches of 64 + ack (learner API):  ${fmt(result.fetch64)} msg/s`);
}

// ── 4. blobs ────────────────────────────────────────────────────────────────────────────────────
async function benchBlobs(url: string) {
  const raw: NatsConnection = await connect({ servers: url });
  const rawStore = await new Objm(raw).create("bench_raw_weights");
  const rows: string[] = [];
  for (const megabytes of [0.25, 4, 20]) {
    const name = `w${Math.round(megabytes * 1024)}k`;
    const weights = new Float32Array((megabytes * 1024 * 1024) / 4).map((_, i) => Math.sin(i));
    const bytes = new Uint8Array(weights.buffer);
    const rounds = quick ? 1 : 3;
    const rawPut: number[] = [];
    const rawGet: number[] = [];
    const ourPut: number[] = [];
    const ourGet: number[] = [];
    for (let round = 0; round < rounds; round++) {
      let start = performance.now();
      await rawStore.putBlob({ name }, bytes);
      rawPut.push(performance.now() - start);
      start = performance.now();
      await rawStore.getBlob(name);
      rawGet.push(performance.now() - start);
      const [put, get] = await withMessaging(
        url,
        Effect.gen(function* () {
          let t = performance.now();
          yield* putBlob(name, bytes);
          const putMs = performance.now() - t;
          t = performance.now();
          const back = yield* getBlob(name);
          if (back.byteLength !== bytes.byteLength) throw new Error("size mismatch");
          return [putMs, performance.now() - t] as const;
        }),
      );
      ourPut.push(put);
      ourGet.push(get);
    }
    rows.push(
      `${megabytes} MB: put ${fmt(median(ourPut))} ms vs raw ${fmt(median(rawPut))} ms (${fmt(median(ourPut) / median(rawPut), 2)}×); ` +
        `get ${fmt(median(ourGet))} ms vs raw ${fmt(median(rawGet))} ms (${fmt(median(ourGet) / median(rawGet), 2)}×)`,
    );
  }
  await raw.close();
  console.log("\n## 4. Weight blobs: factrl's blob stream (direct gets, node:crypto SHA-256) vs the raw Object Store");
  for (const row of rows) console.log(row);
}

const server = await startLocalServer();
try {
  console.log(`factrl messaging benchmarks${quick ? " (quick)" : ""} — node ${process.version}, nats-server 2.9`);
  if (wanted("codec")) benchCodec();
  if (wanted("pubsub")) await benchPubSub(server.url);
  if (wanted("workqueue")) await benchWorkQueue(server.url);
  if (wanted("blobs")) await benchBlobs(server.url);
} finally {
  await server.stop();
}
