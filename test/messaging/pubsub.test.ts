import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { connect } from "@nats-io/transport-node";
import { Effect, Queue } from "effect";
import { Packr } from "msgpackr";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  ControlRequestError,
  ControlRequestMessage,
  envelope,
  experimentSubjects,
  HeartbeatMessage,
  type LocalServer,
  MessageTooLargeError,
  MetricsEventMessage,
  publishMessage,
  requestControl,
  serveControl,
  startLocalServer,
  subscribe,
} from "../../messaging/index.ts";
import { freshExperiment, runWith } from "./fixtures.ts";

const rawPackr = new Packr({ useRecords: false, moreTypes: true });

/** A pino logger whose lines we can read back. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, sink), lines };
}

describe("core subscriptions", () => {
  // Its own server with a 4 MB max_payload, so an oversize message can reach a subscriber at all.
  let server: LocalServer;
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-conf-"));
    const config = join(dir, "nats.conf");
    await writeFile(config, "max_payload: 4194304\n");
    server = await startLocalServer({ extraArgs: ["-c", config] });
  });
  afterAll(async () => {
    await server.stop();
  });

  it("rejects bad input on every subscribed subject, logs subject and reason, counts it, keeps serving", async () => {
    const experiment = freshExperiment();
    const subjects = experimentSubjects(experiment);
    const { logger, lines } = capturingLogger();
    const raw = await connect({ servers: server.url });
    const meta = { experiment, sender: "evil" };
    const badPayloads = (valid: ReturnType<typeof envelope>) => [
      Uint8Array.from({ length: 64 }, (_, i) => (i * 97 + 13) % 256), // random bytes
      rawPackr.pack({ ...valid, body: { nonsense: true } }), // msgpack, wrong shape
      rawPackr.pack({ ...valid, version: 99 }), // unknown version
      new Uint8Array(2 * 1024 * 1024).fill(0x90), // oversize
    ];
    const validMetrics = envelope(MetricsEventMessage, { source: "learner", values: { loss: 1.5 }, tags: {} }, meta);
    const validHeartbeat = envelope(
      HeartbeatMessage,
      { role: "rollout", id: "1", host: "h", pid: 1, uptimeMs: 1, processed: 0, failed: 0, state: "running" },
      meta,
    );
    const validRequest = envelope(ControlRequestMessage, { command: "status", args: {} }, meta);

    const result = await runWith(
      server.url,
      experiment,
      Effect.gen(function* () {
        const metrics = yield* subscribe(subjects.allMetrics, [MetricsEventMessage]);
        const heartbeats = yield* subscribe(subjects.allHeartbeats, [HeartbeatMessage]);
        const control = yield* serveControl(subjects.control("rollout"), (request) =>
          Effect.succeed({ ok: true, message: `did ${request.body.command}` }),
        );
        const controlReplies: unknown[] = [];
        yield* Effect.promise(async () => {
          for (const bytes of badPayloads(validMetrics)) raw.publish(subjects.metrics("learner"), bytes);
          for (const bytes of badPayloads(validHeartbeat)) raw.publish(subjects.heartbeat("rollout", "1"), bytes);
          for (const bytes of badPayloads(validRequest)) {
            const reply = await raw.request(subjects.control("rollout"), bytes, { timeout: 2_000 });
            controlReplies.push(rawPackr.unpack(reply.data).body);
          }
          // After the bad ones, good ones still get through.
          raw.publish(subjects.metrics("learner"), rawPackr.pack(validMetrics));
          raw.publish(subjects.heartbeat("rollout", "1"), rawPackr.pack(validHeartbeat));
          await raw.flush();
        });
        const metric = yield* Queue.take(metrics.messages);
        const beat = yield* Queue.take(heartbeats.messages);
        const reply = yield* requestControl(subjects.control("rollout"), { command: "status", args: {} });
        return {
          metrics: metrics.counters,
          heartbeats: heartbeats.counters,
          control,
          metric,
          beat,
          reply,
          controlReplies,
        };
      }),
      { logger },
    );
    await raw.close();

    const everyKind = { "not-msgpack": 1, "bad-body": 1, "unknown-version": 1, "too-large": 1 };
    expect(result.metrics.rejectedByKind).toEqual(everyKind);
    expect(result.heartbeats.rejectedByKind).toEqual(everyKind);
    expect(result.control.rejectedByKind).toEqual(everyKind);
    expect(result.metrics).toMatchObject({ accepted: 1, rejected: 4 });
    expect(result.metric.body.values).toEqual({ loss: 1.5 });
    expect(result.beat.body.role).toBe("rollout");
    expect(result.reply.body).toEqual({ ok: true, message: "did status" });
    expect(result.controlReplies).toHaveLength(4);
    for (const reply of result.controlReplies) expect(reply).toMatchObject({ ok: false, message: /^bad request: / });
    const rejections = lines.filter((line) => line.msg === "rejected message");
    expect(rejections).toHaveLength(12);
    for (const subject of [
      subjects.metrics("learner"),
      subjects.heartbeat("rollout", "1"),
      subjects.control("rollout"),
    ]) {
      const kinds = rejections.filter((line) => line.subject === subject).map((line) => line.kind);
      expect(kinds.sort()).toEqual(Object.keys(everyKind).sort());
    }
    expect(rejections.find((line) => line.kind === "unknown-version")?.reason).toMatch(/version 99 is not supported/);
  });

  it("refuses an oversize message before sending it", async () => {
    const experiment = freshExperiment();
    const subjects = experimentSubjects(experiment);
    const result = await runWith(
      server.url,
      experiment,
      Effect.gen(function* () {
        const sub = yield* subscribe(subjects.allMetrics, [MetricsEventMessage]);
        const values = Object.fromEntries(Array.from({ length: 120_000 }, (_, i) => [`metric_${i}`, i]));
        const error = yield* Effect.flip(
          publishMessage(subjects.metrics("x"), MetricsEventMessage, { source: "x", values, tags: {} }),
        );
        yield* publishMessage(subjects.metrics("x"), MetricsEventMessage, { source: "x", values: { ok: 1 }, tags: {} });
        const first = yield* Queue.take(sub.messages);
        return { error, first, counters: sub.counters };
      }),
    );
    expect(result.error).toBeInstanceOf(MessageTooLargeError);
    expect(result.error.message).toMatch(
      /MetricsEvent message is \d+ bytes, over the 1048576-byte limit; nothing was sent/,
    );
    expect(result.first.body.values).toEqual({ ok: 1 });
    expect(result.counters).toMatchObject({ accepted: 1, rejected: 0 });
  });
});

describe("control requests", () => {
  it("fails clearly when nobody serves the subject", async () => {
    const experiment = freshExperiment();
    const error = await runWith(
      inject("natsUrl"),
      experiment,
      Effect.flip(requestControl(experimentSubjects(experiment).control("nobody"), { command: "x", args: {} }, 1_000)),
    );
    expect(error).toBeInstanceOf(ControlRequestError);
    expect(error.kind).toBe("no-responders");
  });

  it("turns a failing command into an error reply", async () => {
    const experiment = freshExperiment();
    const subjects = experimentSubjects(experiment);
    const reply = await runWith(
      inject("natsUrl"),
      experiment,
      Effect.gen(function* () {
        yield* serveControl(subjects.control("learner"), () => Effect.fail(new Error("checkpoint dir is read-only")));
        return yield* requestControl(subjects.control("learner"), { command: "checkpoint", args: { step: 3 } });
      }),
    );
    expect(reply.body.ok).toBe(false);
    expect(reply.body.message).toMatch(/command failed: .*checkpoint dir is read-only/);
    expect(reply.sender).toBe("tester");
  });
});
