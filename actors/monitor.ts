/**
 * monitor: collects every metrics event and heartbeat of the experiment into
 * `runs/<experiment>/metrics.jsonl` (one JSON object a line: time, type, sender, body), and
 * publishes a one-line summary (`metrics.monitor`) that the launcher's progress display shows:
 * learner step and reward, rollout throughput, the latest evaluation. With `dashboard.enabled` it
 * also serves the live dashboard and Prometheus `/metrics` (dashboard/, docs/metrics.md) from what
 * it receives, and the summary's `dashboard` tag says where.
 *
 * Subjects: subscribes `metrics.>` and `heartbeat.>`; publishes MetricsEvent on `metrics.monitor`.
 */
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Chunk, Duration, Effect, Queue, Schedule } from "effect";
import { makeDashboardState, startDashboard } from "../dashboard/index.ts";
import {
  deadLetterCount,
  Experiment,
  HeartbeatMessage,
  MetricsEventMessage,
  pendingWork,
  publishMessage,
  subscribe,
} from "../messaging/index.ts";
import { tryIo } from "./io.ts";
import type { RoleDefinition } from "./runtime.ts";
import { PIPELINE_QUEUES } from "./topology.ts";

/** The summary the launcher shows: the newest value of each of these metrics. */
const SUMMARY_KEYS = [
  "learner.step",
  "learner.reward.mean",
  "learner.policyVersion",
  "learner.drops.stale",
  "rollout.tokensPerSecond",
  "eval.hallucinationRate",
  "eval.detail",
] as const;
const SUMMARY_EVERY = Duration.seconds(1);
/** How often the work queues' depths are read from JetStream (a stream-info request per queue). */
const QUEUES_EVERY = Duration.seconds(5);

export const monitorRole: RoleDefinition = {
  name: "monitor",
  description: "writes metrics and heartbeats to runs/<experiment>/metrics.jsonl; summarises progress",
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      const { subjects } = yield* Experiment;
      const dir = join(config.output.dir, config.experiment);
      yield* Effect.promise(() => mkdir(dir, { recursive: true }));
      const file = yield* Effect.acquireRelease(
        Effect.sync(() => createWriteStream(join(dir, "metrics.jsonl"), { flags: "a" })),
        (stream) =>
          Effect.async<void>((resume) => {
            stream.end(() => resume(Effect.void));
          }),
      );
      const metrics = yield* subscribe(subjects.allMetrics, [MetricsEventMessage]);
      const heartbeats = yield* subscribe(subjects.allHeartbeats, [HeartbeatMessage]);
      const latest = new Map<string, number>();

      const dashboardState = config.dashboard.enabled ? makeDashboardState() : undefined;
      const dashboard = dashboardState
        ? yield* Effect.acquireRelease(
            tryIo(`starting the dashboard on ${config.dashboard.host}:${config.dashboard.port}`, () =>
              startDashboard({
                runDir: dir,
                state: dashboardState,
                host: config.dashboard.host,
                port: config.dashboard.port,
                ...(config.dashboard.token === undefined ? {} : { token: config.dashboard.token }),
              }),
            ),
            (server) => Effect.promise(() => server.close()),
          )
        : undefined;
      if (dashboard) yield* Effect.logInfo(`dashboard: ${dashboard.url}`);
      let rejectedSeen = 0;

      const record = (type: string, sender: string, sentAt: number, body: unknown) => {
        const line = JSON.stringify({ time: sentAt, type, sender, body });
        file.write(`${line}\n`);
        dashboardState?.ingestLine(line);
        actor.recordProcessed();
      };

      const collectMetrics = Effect.gen(function* () {
        const batch = yield* Queue.takeBetween(metrics.messages, 1, 1_000);
        for (const message of Chunk.toReadonlyArray(batch)) {
          if (message.sender === actor.id) continue;
          record(message.type, message.sender, message.sentAt, message.body);
          const { values, step } = message.body;
          if (step !== undefined && message.body.tags.role === "learner") latest.set("learner.step", step);
          for (const [key, value] of Object.entries(values)) latest.set(key, value);
        }
      }).pipe(Effect.forever);

      const collectHeartbeats = Effect.gen(function* () {
        const batch = yield* Queue.takeBetween(heartbeats.messages, 1, 1_000);
        for (const message of Chunk.toReadonlyArray(batch))
          record(message.type, message.sender, message.sentAt, message.body);
      }).pipe(Effect.forever);

      const summarise = Effect.gen(function* () {
        const rejected = metrics.counters.rejected + heartbeats.counters.rejected;
        dashboardState?.countMalformed("message", rejected - rejectedSeen);
        rejectedSeen = rejected;
        const values = Object.fromEntries(SUMMARY_KEYS.flatMap((k) => (latest.has(k) ? [[k, latest.get(k)!]] : [])));
        if (Object.keys(values).length === 0 && !dashboard) return;
        yield* publishMessage(subjects.metrics("monitor"), MetricsEventMessage, {
          source: actor.id,
          values,
          tags: { role: "monitor", kind: "summary", ...(dashboard ? { dashboard: dashboard.url } : {}) },
        });
      }).pipe(Effect.repeat(Schedule.spaced(SUMMARY_EVERY)));

      // Queue depths: messages waiting in each work queue, and those dead-lettered so far.
      const readQueues = Effect.gen(function* () {
        const values: Record<string, number> = {};
        for (const queue of PIPELINE_QUEUES) {
          values[`queue.${queue.name}.pending`] = yield* pendingWork(queue);
          values[`queue.${queue.name}.deadLettered`] = yield* deadLetterCount(queue);
        }
        record("MetricsEvent", actor.id, Date.now(), { source: actor.id, values, tags: { role: "queue" } });
      }).pipe(
        Effect.catchAll((error) => Effect.logWarning(`cannot read the work queues' depths: ${error.message}`)),
        Effect.repeat(Schedule.spaced(QUEUES_EVERY)),
      );

      return Effect.all([collectMetrics, collectHeartbeats, summarise, readQueues], {
        concurrency: "unbounded",
        discard: true,
      });
    }),
};
