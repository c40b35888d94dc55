/**
 * The launcher behind `factrl run`: starts (or connects to) NATS, creates the experiment's streams,
 * publishes the resolved config for actors joining from other hosts, spawns every actor as its own
 * OS process, supervises them, scales roles on request, shows progress, and stops everything
 * cleanly.
 *
 * - A process that crashes (non-zero exit other than 1/2, or killed by a signal) is restarted with
 *   jittered exponential backoff; more than `runtime.restart.maxRestarts` restarts of one actor within
 *   `windowMs` fail the experiment. Exit 1 (the actor gave up after its own restarts) and 2 (bad
 *   config) fail it at once: restarting would only repeat them. The restart figure shown adds the
 *   roles' in-process restarts (from heartbeats) to these process restarts.
 * - An actor of a role that `endsExperiment` (the learner) exiting 0 completes the experiment only
 *   if the learner's progress says it reached `learner.totalSteps`; a learner that exited 0 short of
 *   it (drained, stopped) fails the experiment, with the step it stopped at and why.
 * - The outcome (running, then completed / failed / stopped, with the reason) goes to KV, where
 *   actors that joined from other hosts follow it, and to `runs/<experiment>/outcome.md`.
 * - `scale ROLE N` control requests grow or shrink a role; shrinking drains the newest processes.
 * - SIGINT/SIGTERM: every actor drains (SIGTERM), stragglers are killed after the drain timeout, the
 *   embedded server stops; success. Children also drain by themselves if the launcher disappears.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, hostname } from "node:os";
import { join, resolve } from "node:path";
import { Context, Data, Deferred, Duration, Effect, Layer, Schedule } from "effect";
import {
  actorCount,
  CONFIG_KEY,
  ConfigError,
  type ExperimentConfig,
  embeddedServerAuthArgs,
  natsConnectionOptions,
  ROLE_NAMES,
  type RoleName,
  runDirectory,
  writeResolvedConfig,
} from "../configs/index.ts";
import {
  actorStatusKey,
  type ControlReply,
  EXPERIMENT_OUTCOME_KEY,
  Experiment,
  ensureBlobStream,
  ensureWorkQueues,
  type FactrlLogger,
  getState,
  type Heartbeat,
  HeartbeatMessage,
  type JetStreamError,
  localServer,
  MetricsEventMessage,
  makeLogger,
  type Nats,
  putState,
  serveControl,
  subscribe,
  type WorkQueue,
  type WorkQueuesReport,
  watchState,
} from "../messaging/index.ts";
import { renderOutcome } from "./report.ts";
import type { RoleRegistry } from "./roles.ts";
import { actorServices } from "./runtime.ts";
import { LEARNER_PROGRESS_KEY, type LearnerProgress, PIPELINE_QUEUES } from "./topology.ts";

export class ExperimentFailed extends Data.TaggedError("ExperimentFailed")<{ readonly reason: string }> {
  override get message(): string {
    return `experiment failed: ${this.reason}`;
  }
}

/** The subject-name role of the launcher's control endpoint (`factrl.<exp>.control.launcher`). */
export const LAUNCHER_CONTROL_ROLE = "launcher";

/** The largest count `scale` accepts for one role on one machine. */
export const MAX_PROCESSES_PER_ROLE = 64;

export interface LaunchOptions {
  readonly config: ExperimentConfig;
  /** The roles this build can run (cli/roles.ts). */
  readonly roles: RoleRegistry;
  /** The factrl entry point children run (`bin/factrl.mjs`). */
  readonly entryPoint: string;
  /** Progress display: a redrawn status line (tty), periodic log lines (plain), or none. */
  readonly progress: "tty" | "plain" | "none";
  /** Completing it stops the experiment cleanly (the CLI completes it on SIGINT/SIGTERM). */
  readonly stop?: Deferred.Deferred<string>;
  /** Plain progress period (default 10 s). */
  readonly progressEveryMs?: number;
}

interface Slot {
  readonly role: RoleName;
  readonly id: string;
  child: ChildProcess | undefined;
  /** Set when the launcher asked it to stop: its exit is expected. */
  stopping: boolean;
  readonly restarts: number[];
  respawnTimer: NodeJS.Timeout | undefined;
}

/** How the experiment ends: completed (the learner reached its budget), failed, or stopped by a signal. */
interface Outcome {
  readonly outcome: "completed" | "failed" | "stopped";
  readonly reason: string;
}

/** Where `factrl status`/`scale` on this machine find the experiment's NATS server. */
export const natsUrlFile = (config: ExperimentConfig): string => join(runDirectory(config), "nats-url");

/** Where the launcher writes how the run ended (for every run; report.md only comes with a final evaluation). */
export const outcomeFile = (config: ExperimentConfig): string => join(runDirectory(config), "outcome.md");

/** The URL recorded by a launcher of `experiment` under `outputDir`, if any. */
export function recordedNatsUrl(outputDir: string, experiment: string): string | undefined {
  try {
    return readFileSync(join(resolve(outputDir), experiment, "nats-url"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

function restartDelayMs(config: ExperimentConfig, attempt: number): number {
  const { baseDelayMs, maxDelayMs } = config.runtime.restart;
  const exponential = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt);
  return Math.round(exponential * (0.5 + Math.random() * 0.5));
}

/** Child processes of one experiment, by actor id. Plain callbacks: process events are not Effects. */
function makeSupervisor(
  config: ExperimentConfig,
  options: LaunchOptions,
  natsUrl: string,
  configFile: string,
  logger: FactrlLogger,
  finish: (outcome: Outcome) => void,
  /** How an experiment-ending actor that exited 0 left it: completed, or stopped short. */
  judgeEnding: (actorId: string) => Promise<Outcome>,
) {
  const slots = new Map<string, Slot>();
  const nextIndex = new Map<string, number>();
  const logDir = join(runDirectory(config), "logs");
  mkdirSync(logDir, { recursive: true });
  let shuttingDown = false;
  let totalRestarts = 0;

  const spawnChild = (slot: Slot) => {
    slot.respawnTimer = undefined;
    const log = openSync(join(logDir, `${slot.id}.log`), "a");
    const args = [
      options.entryPoint,
      "actor",
      slot.role,
      "--experiment",
      config.experiment,
      "--nats",
      natsUrl,
      "--config",
      configFile,
      "--id",
      slot.id,
      "--parent-pid",
      String(process.pid),
    ];
    // Node's own flags pass on: `node --cpu-prof bin/factrl.mjs run …` profiles every actor process.
    const child = spawn(process.execPath, [...process.execArgv, ...args], { stdio: ["ignore", log, log] });
    closeSync(log);
    slot.child = child;
    child.once("error", (error) => logger.error({ actor: slot.id, err: error }, "could not start actor process"));
    child.once("exit", (code, signal) => onExit(slot, child, code, signal));
    logger.debug({ actor: slot.id, pid: child.pid }, "actor process started");
  };

  const onExit = (slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
    if (slot.child !== child) return;
    slot.child = undefined;
    const how = signal !== null ? `killed by ${signal}` : `exited ${code}`;
    if (slot.stopping || shuttingDown) {
      slots.delete(slot.id);
      logger.info({ actor: slot.id, code, signal }, `${slot.id} stopped`);
      return;
    }
    if (code === 0) {
      slots.delete(slot.id);
      logger.info({ actor: slot.id }, `${slot.id} completed`);
      void options.roles.load(slot.role).then(async (role) => {
        if (role?.endsExperiment) finish(await judgeEnding(slot.id));
      });
      return;
    }
    const logFile = join(logDir, `${slot.id}.log`);
    if (code === 1 || code === 2) {
      finish({
        outcome: "failed",
        reason: `${slot.id} ${how} (${code === 1 ? "gave up" : "bad config"}); see ${logFile}`,
      });
      return;
    }
    const now = Date.now();
    const { maxRestarts, windowMs } = config.runtime.restart;
    while (slot.restarts.length > 0 && slot.restarts[0]! < now - windowMs) slot.restarts.shift();
    if (slot.restarts.length >= maxRestarts) {
      finish({
        outcome: "failed",
        reason: `${slot.id} ${how} after ${slot.restarts.length} restarts within ${windowMs} ms; see ${logFile}`,
      });
      return;
    }
    const delay = restartDelayMs(config, slot.restarts.length);
    slot.restarts.push(now);
    totalRestarts += 1;
    logger.warn({ actor: slot.id, code, signal, delayMs: delay }, `${slot.id} ${how}; restarting`);
    slot.respawnTimer = setTimeout(() => {
      if (!slot.stopping && !shuttingDown) spawnChild(slot);
    }, delay);
  };

  const live = (role: string) => [...slots.values()].filter((slot) => slot.role === role && !slot.stopping);

  const grow = (role: RoleName) => {
    const index = (nextIndex.get(role) ?? 0) + 1;
    nextIndex.set(role, index);
    const slot: Slot = {
      role,
      id: `${role}-${index}`,
      child: undefined,
      stopping: false,
      restarts: [],
      respawnTimer: undefined,
    };
    slots.set(slot.id, slot);
    spawnChild(slot);
    return slot.id;
  };

  const stopSlot = (slot: Slot) => {
    slot.stopping = true;
    if (slot.respawnTimer !== undefined) {
      clearTimeout(slot.respawnTimer);
      slots.delete(slot.id);
    }
    if (slot.child === undefined) slots.delete(slot.id);
    else slot.child.kill("SIGTERM");
  };

  /** Grows or shrinks `role` to `count` processes; shrinking drains the newest first. */
  const scale = (role: RoleName, count: number) => {
    const current = live(role);
    const started: string[] = [];
    const stopping: string[] = [];
    for (let n = current.length; n < count; n++) started.push(grow(role));
    for (const slot of current.slice(count).reverse()) {
      stopSlot(slot);
      stopping.push(slot.id);
    }
    return { from: current.length, to: count, started, stopping };
  };

  /** Drains every process (SIGTERM), kills what is still there after the timeout, waits for all. */
  const stopAll = async () => {
    shuttingDown = true;
    const children = [...slots.values()].flatMap((slot) => {
      stopSlot(slot);
      return slot.child !== undefined ? [slot.child] : [];
    });
    const exited = (child: ChildProcess) =>
      child.exitCode !== null || child.signalCode !== null
        ? Promise.resolve()
        : new Promise<void>((done) => child.once("exit", () => done()));
    const graceMs = config.runtime.drainTimeoutMs + 5_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((done) => {
      timer = setTimeout(() => done("timeout"), graceMs);
    });
    const result = await Promise.race([Promise.all(children.map(exited)), timedOut]);
    clearTimeout(timer);
    if (result === "timeout") {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          logger.warn({ pid: child.pid }, "actor did not stop in time; killing it");
          child.kill("SIGKILL");
        }
      }
      await Promise.all(children.map(exited));
    }
  };

  return {
    scale,
    stopAll,
    grow,
    live,
    /** Processes running now, per role, and the count of process restarts. */
    snapshot: () => ({
      running: [...slots.values()].filter((slot) => slot.child !== undefined),
      restarts: totalRestarts,
    }),
  };
}

const SUMMARY_FIELDS: readonly (readonly [string, string, (v: number) => string])[] = [
  ["learner.reward.mean", "reward", (v) => v.toFixed(3)],
  ["rollout.tokensPerSecond", "tok/s", (v) => v.toFixed(0)],
  ["eval.hallucinationRate", "eval hallucination", (v) => `${(100 * v).toFixed(1)}%`],
  ["eval.detail", "eval detail", (v) => v.toFixed(2)],
];

/** The monitor's summary, as the end of the progress line. */
function summaryText(summary: Readonly<Record<string, number>>): string {
  const parts = SUMMARY_FIELDS.flatMap(([key, label, format]) =>
    summary[key] === undefined ? [] : [`${label} ${format(summary[key])}`],
  );
  return parts.length > 0 ? ` · ${parts.join(" · ")}` : "";
}

const clockTime = (epochMs: number): string => new Date(epochMs).toTimeString().slice(0, 8);

/**
 * The learner's progress for the progress line: its step against the budget, and — when the learner
 * reports one (`stalledSince`, epoch ms) — since when it has made none.
 */
export function learnerProgressText(progress: LearnerProgress | undefined, totalSteps: number): string {
  if (progress === undefined) return "";
  // Read defensively: older learners do not write stalledSince.
  const stalledSince = (progress as { readonly stalledSince?: unknown }).stalledSince;
  const stalled = typeof stalledSince === "number" ? ` · learner stalled since ${clockTime(stalledSince)}` : "";
  return ` · learner step ${progress.step}/${totalSteps}${stalled}`;
}

/** One progress line: processes per role, work done, restarts (process and in-process), newest policy version. */
function progressLine(
  config: ExperimentConfig,
  startedAt: number,
  running: readonly Slot[],
  restarts: number,
  heartbeats: ReadonlyMap<string, Heartbeat & { readonly at: number }>,
): string {
  const now = Date.now();
  const elapsed = Math.round((now - startedAt) / 1000);
  const clock = `${String(Math.floor(elapsed / 3600)).padStart(2, "0")}:${String(Math.floor(elapsed / 60) % 60).padStart(2, "0")}:${String(elapsed % 60).padStart(2, "0")}`;
  // A busy actor sends no heartbeat until its section ends: it counts as up meanwhile.
  const fresh = [...heartbeats.values()].filter(
    (h) => h.busy !== undefined || now - h.at < config.runtime.heartbeatMs * 3,
  );
  const roles = ROLE_NAMES.flatMap((role) => {
    const wanted = running.filter((slot) => slot.role === role).length;
    const up = fresh.filter((h) => h.role === role && h.state === "running").length;
    return wanted > 0 || up > 0 ? [`${role} ${up}/${wanted}`] : [];
  });
  const busy = fresh.flatMap((h) =>
    h.busy !== undefined ? [`${h.id} busy ${Math.round((now - h.busy.since) / 1000)}s: ${h.busy.what}`] : [],
  );
  const processed = fresh.reduce((sum, h) => sum + h.processed, 0);
  const failed = fresh.reduce((sum, h) => sum + h.failed, 0);
  const versions = fresh.flatMap((h) => (h.policyVersion !== undefined ? [h.policyVersion] : []));
  const policy = versions.length > 0 ? ` · policy v${Math.max(...versions)}` : "";
  return `${config.experiment} ${clock} · ${[...roles, ...busy].join(" · ") || "no actors"} · processed ${processed} · failed ${failed} · restarts ${restarts}${policy}`;
}

/** Two declarations of one work queue name carry different messages: they would share one stream. */
export class QueueConflict extends Data.TaggedError("QueueConflict")<{
  readonly queue: string;
  readonly declaredBy: readonly [string, string];
  readonly carrying: readonly [string, string];
}> {
  override get message(): string {
    const [first, second] = this.declaredBy;
    return (
      `${first} and ${second} both declare a work queue named ${this.queue}, carrying ${this.carrying[0]} and ` +
      `${this.carrying[1]}: one stream cannot carry both; rename one of the queues`
    );
  }
}

const carries = (queue: WorkQueue<unknown>) => `${queue.message.name} v${queue.message.version}`;

/** The queues of every declaration, each name once; a name declared with two message types fails. */
const unionOfQueues = (
  declarations: ReadonlyArray<readonly [by: string, queues: readonly WorkQueue<unknown>[]]>,
): Effect.Effect<readonly WorkQueue<unknown>[], QueueConflict> =>
  Effect.suspend(() => {
    const byName = new Map<string, { readonly queue: WorkQueue<unknown>; readonly by: string }>();
    for (const [by, queues] of declarations) {
      for (const queue of queues) {
        const seen = byName.get(queue.name);
        if (seen === undefined) byName.set(queue.name, { queue, by });
        else if (carries(seen.queue) !== carries(queue)) {
          return Effect.fail(
            new QueueConflict({
              queue: queue.name,
              declaredBy: [seen.by, by],
              carrying: [carries(seen.queue), carries(queue)],
            }),
          );
        }
      }
    }
    return Effect.succeed([...byName.values()].map(({ queue }) => queue));
  });

/**
 * Creates the experiment's work queues before any actor starts: the pipeline's, and every queue a role
 * of the registry declares (`RoleDefinition.takes` and `gives`: a role added with its own queue needs nothing
 * else), with the run's redelivery settings; removes the acked work a broker crash left in them. It
 * loads every role of the registry — in `factrl run` their code is loaded already (the serial
 * runner imports it).
 */
export const ensureExperimentQueues = (
  config: ExperimentConfig,
  roles: RoleRegistry,
): Effect.Effect<WorkQueuesReport, QueueConflict | JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const definitions = yield* Effect.promise(() => Promise.all(roles.names.map(roles.load)));
    const queues = yield* unionOfQueues([
      ["the pipeline", PIPELINE_QUEUES],
      ...definitions.flatMap((role) =>
        role === undefined ? [] : [[`role ${role.name}`, [...(role.takes ?? []), ...(role.gives ?? [])]] as const],
      ),
    ]);
    return yield* ensureWorkQueues(queues, {
      ackWaitMs: config.runtime.ackWaitMs,
      maxDeliver: config.runtime.maxDeliveries,
    });
  });

/** Runs the experiment until it completes (success), fails (ExperimentFailed) or is stopped by a signal (success). */
export const launch = (options: LaunchOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config } = options;
      const logger = makeLogger({ experiment: config.experiment, role: "launcher" });
      for (const role of ROLE_NAMES) {
        if (config.actors[role] !== 0 && !options.roles.has(role)) {
          return yield* new ConfigError({
            source: "actors",
            problems: [
              `actors.${role}: the ${role} role is not available in this build (available: ${ROLE_NAMES.filter(options.roles.has).join(", ")}); set actors.${role}: 0`,
            ],
          });
        }
      }
      const configFile = yield* writeResolvedConfig(config);

      let natsUrl = config.nats.url;
      if (natsUrl === undefined) {
        const extraArgs = yield* Effect.try({
          try: () => embeddedServerAuthArgs(config.nats),
          catch: (error) => error as ConfigError,
        });
        const server = yield* localServer({
          port: config.nats.embedded.port === 0 ? undefined : config.nats.embedded.port,
          storeDir: resolve(config.nats.embedded.storeDir ?? join(runDirectory(config), "nats")),
          extraArgs,
        });
        natsUrl = server.url;
        logger.info({ url: natsUrl, pid: server.pid }, "embedded nats-server started");
      }
      writeFileSync(natsUrlFile(config), `${natsUrl}\n`);

      const connectionOptions = yield* natsConnectionOptions(
        config.nats,
        natsUrl,
        `factrl-launcher-${config.experiment}`,
        { kind: "launcher", experiment: config.experiment },
      );
      const services = yield* Layer.build(
        actorServices({ ...connectionOptions, logger }, config.experiment, "launcher", logger),
      );
      const { subjects } = Context.get(services, Experiment);
      const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, services);
      yield* provide(ensureExperimentQueues(config, options.roles));
      // The blob stream too: the learner may store blobs in it, but creating it is the launcher's right.
      yield* provide(ensureBlobStream);
      yield* provide(putState(CONFIG_KEY, config));

      // A re-run starts over from "running": actors joining it must not read the last run's end.
      yield* provide(
        putState(EXPERIMENT_OUTCOME_KEY, {
          outcome: "running" as const,
          reason: `started by the launcher on ${hostname()} (pid ${process.pid})`,
          at: Date.now(),
        }),
      );

      const totalSteps = config.learner.totalSteps;
      const readLearnerProgress = provide(getState(LEARNER_PROGRESS_KEY)).pipe(
        Effect.map((entry) => entry?.value),
        Effect.tapError((error) =>
          Effect.sync(() => logger.warn({ reason: error.message }, "cannot read learner progress")),
        ),
        Effect.orElseSucceed(() => undefined),
      );
      /**
       * Completion is the learner reaching its step budget, as its progress records it — not its exit
       * code: a drain request (anyone on the server can send one) or a signal also ends it with 0.
       */
      const judgeEnding = (actorId: string): Effect.Effect<Outcome> =>
        Effect.gen(function* () {
          const progress = yield* readLearnerProgress;
          if (progress?.done && progress.step >= totalSteps) {
            return {
              outcome: "completed",
              reason: `${actorId} reached step ${progress.step} of ${totalSteps}`,
            } as const;
          }
          // Its last heartbeat, stored before it exited, says why it stopped.
          const record = yield* provide(getState(actorStatusKey(actorId))).pipe(Effect.orElseSucceed(() => undefined));
          const why = record?.value.reason ?? "it exited 0 without saying why";
          return {
            outcome: "failed",
            reason: `${actorId} stopped at step ${progress?.step ?? 0} of ${totalSteps} without completing: ${why}`,
          } as const;
        });

      const outcome = yield* Deferred.make<Outcome>();
      const finish = (result: Outcome) => Effect.runSync(Deferred.succeed(outcome, result));
      const supervisor = makeSupervisor(config, options, natsUrl, configFile, logger, finish, (actorId) =>
        Effect.runPromise(judgeEnding(actorId)),
      );
      // Whatever ends this scope (success, failure, interruption), no actor process outlives it.
      yield* Effect.addFinalizer(() => Effect.promise(() => supervisor.stopAll()));

      if (options.stop !== undefined) {
        yield* Effect.forkScoped(
          Effect.map(Deferred.await(options.stop), (reason) =>
            finish({ outcome: "stopped", reason: `stopped by ${reason}` }),
          ),
        );
      }

      yield* provide(
        serveControl(subjects.control(LAUNCHER_CONTROL_ROLE), (request) =>
          Effect.sync((): ControlReply => {
            const { command, args } = request.body;
            if (command !== "scale")
              return { ok: false, message: `unknown command ${JSON.stringify(command)} (known: scale)` };
            const role = args.role;
            const count = args.count;
            if (typeof role !== "string" || !(ROLE_NAMES as readonly string[]).includes(role)) {
              return { ok: false, message: `unknown role ${JSON.stringify(role)} (roles: ${ROLE_NAMES.join(", ")})` };
            }
            if (!options.roles.has(role))
              return { ok: false, message: `the ${role} role is not available in this build` };
            if (typeof count !== "number" || !Number.isInteger(count) || count < 0 || count > MAX_PROCESSES_PER_ROLE) {
              return {
                ok: false,
                message: `count must be an integer from 0 to ${MAX_PROCESSES_PER_ROLE}, got ${JSON.stringify(count)}`,
              };
            }
            const change = supervisor.scale(role as RoleName, count);
            const parts = [
              ...(change.started.length > 0 ? [`started ${change.started.join(", ")}`] : []),
              ...(change.stopping.length > 0 ? [`draining ${change.stopping.join(", ")}`] : []),
            ];
            const message = `${role}: ${change.from} → ${change.to}${parts.length > 0 ? ` (${parts.join("; ")})` : " (no change)"}`;
            logger.info({ role, ...change }, message);
            return { ok: true, message, data: { role, ...change } };
          }),
        ),
      );

      const heartbeats = new Map<string, Heartbeat & { readonly at: number }>();
      /** Each actor process's in-process role restarts (by id, host and pid: a restarted process starts at 0). */
      const inProcessRestarts = new Map<string, number>();
      const beats = yield* provide(subscribe(subjects.allHeartbeats, [HeartbeatMessage]));
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.map(beats.messages.take, (message) => {
            const beat = message.body;
            heartbeats.set(beat.id, { ...beat, at: Date.now() });
            if (beat.restarts !== undefined && beat.restarts > 0)
              inProcessRestarts.set(`${beat.id}@${beat.host}:${beat.pid}`, beat.restarts);
          }),
        ),
      );

      let learnerProgress: LearnerProgress | undefined;
      if (config.actors.learner > 0) {
        const progressUpdates = yield* provide(watchState(LEARNER_PROGRESS_KEY));
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.map(progressUpdates.take, (entry) => {
              learnerProgress = entry.value;
            }),
          ),
        );
      }

      // The monitor's summary of the experiment's metrics (learner step, reward, evaluation…).
      let summary: Readonly<Record<string, number>> = {};
      const dashboards = new Set<string>();
      const summaries = yield* provide(subscribe(subjects.metrics("monitor"), [MetricsEventMessage]));
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.map(summaries.messages.take, (message) => {
            summary = message.body.values;
            // Where the monitor serves the dashboard: told once per monitor.
            const url = message.body.tags.dashboard;
            if (url !== undefined && !dashboards.has(url)) {
              dashboards.add(url);
              logger.info(
                { dashboard: url },
                `dashboard: ${url} (Prometheus: ${url.replace(/\/(\?.*)?$/, "/metrics")})`,
              );
            }
          }),
        ),
      );

      for (const role of ROLE_NAMES) {
        const count = actorCount(config, role, availableParallelism());
        for (let n = 0; n < count; n++) supervisor.grow(role);
      }
      const startedAt = Date.now();
      logger.info(
        { nats: natsUrl, config: configFile, runDir: runDirectory(config) },
        `experiment ${config.experiment} started (status: factrl status --experiment ${config.experiment})`,
      );

      if (options.progress !== "none") {
        const tty = options.progress === "tty";
        const show = Effect.sync(() => {
          const { running, restarts } = supervisor.snapshot();
          const allRestarts = [...inProcessRestarts.values()].reduce((sum, n) => sum + n, restarts);
          const line =
            progressLine(config, startedAt, running, allRestarts, heartbeats) +
            learnerProgressText(learnerProgress, totalSteps) +
            summaryText(summary);
          if (tty) process.stderr.write(`\r\x1b[K${line}`);
          else logger.info(line);
        });
        yield* Effect.forkScoped(
          Effect.repeat(show, Schedule.spaced(Duration.millis(tty ? 1_000 : (options.progressEveryMs ?? 10_000)))),
        );
        if (tty) yield* Effect.addFinalizer(() => Effect.sync(() => process.stderr.write("\n")));
      }

      const result = yield* Deferred.await(outcome);
      logger.info(
        { outcome: result.outcome, reason: result.reason },
        result.outcome === "failed" ? "experiment failed; stopping" : "stopping the experiment",
      );
      // First, so that actors joined from other hosts start leaving while these stop.
      yield* provide(putState(EXPERIMENT_OUTCOME_KEY, { ...result, at: Date.now() })).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() => logger.warn({ reason: error.message }, "cannot record the outcome for joined actors")),
        ),
      );
      yield* Effect.promise(() => supervisor.stopAll());
      const finalProgress = config.actors.learner > 0 ? yield* readLearnerProgress : undefined;
      const file = outcomeFile(config);
      const text = renderOutcome({
        experiment: config.experiment,
        ...result,
        ...(finalProgress !== undefined
          ? { learner: { step: finalProgress.step, totalSteps, done: finalProgress.done } }
          : {}),
        startedAt,
        endedAt: Date.now(),
      });
      yield* Effect.try(() => writeFileSync(file, text)).pipe(
        Effect.match({
          onFailure: (error) => logger.warn({ file, reason: String(error.error) }, "cannot write the outcome file"),
          onSuccess: () => logger.info({ file }, `outcome written to ${file}`),
        }),
      );
      if (result.outcome === "failed") return yield* new ExperimentFailed({ reason: result.reason });
      logger.info(`experiment ${config.experiment} stopped: ${result.reason}`);
    }),
  );
