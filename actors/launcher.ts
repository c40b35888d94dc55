/**
 * The launcher behind `factrl run`: starts (or connects to) NATS, creates the experiment's streams,
 * publishes the resolved config for actors joining from other hosts, spawns every actor as its own
 * OS process, supervises them, scales roles on request, shows progress, and stops everything
 * cleanly.
 *
 * - A process that crashes (non-zero exit other than 1/2, or killed by a signal) is restarted with
 *   jittered exponential backoff; more than `runtime.restart.maxRestarts` restarts of one actor within
 *   `windowMs` fail the experiment. Exit 1 (the actor gave up after its own restarts) and 2 (bad
 *   config) fail it at once: restarting would only repeat them.
 * - An actor of a role that `endsExperiment` (the learner) exiting 0 completes the experiment.
 * - `scale ROLE N` control requests grow or shrink a role; shrinking drains the newest processes.
 * - SIGINT/SIGTERM: every actor drains (SIGTERM), stragglers are killed after the drain timeout, the
 *   embedded server stops; success. Children also drain by themselves if the launcher disappears.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Data, Deferred, Duration, Effect, Schedule } from "effect";
import {
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
  type ControlReply,
  connectNats,
  Experiment,
  ensureWorkQueues,
  experimentSubjects,
  type FactrlLogger,
  type Heartbeat,
  localServer,
  makeLogger,
  Nats,
  putState,
  serveControl,
  subscribe,
} from "../messaging/index.ts";
import type { RoleRegistry } from "./roles.ts";

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

type Outcome = { readonly ok: true; readonly reason: string } | { readonly ok: false; readonly reason: string };

/** Where `factrl status`/`scale` on this machine find the experiment's NATS server. */
export const natsUrlFile = (config: ExperimentConfig): string => join(runDirectory(config), "nats-url");

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
    const child = spawn(process.execPath, args, { stdio: ["ignore", log, log] });
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
      void options.roles.load(slot.role).then((role) => {
        if (role?.endsExperiment) finish({ ok: true, reason: `${slot.id} completed the experiment` });
      });
      return;
    }
    const logFile = join(logDir, `${slot.id}.log`);
    if (code === 1 || code === 2) {
      finish({ ok: false, reason: `${slot.id} ${how} (${code === 1 ? "gave up" : "bad config"}); see ${logFile}` });
      return;
    }
    const now = Date.now();
    const { maxRestarts, windowMs } = config.runtime.restart;
    while (slot.restarts.length > 0 && slot.restarts[0]! < now - windowMs) slot.restarts.shift();
    if (slot.restarts.length >= maxRestarts) {
      finish({
        ok: false,
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
    /** Processes running now, per role, and the restart count. */
    snapshot: () => ({
      running: [...slots.values()].filter((slot) => slot.child !== undefined),
      restarts: totalRestarts,
    }),
  };
}

const SUMMARY_FIELDS: readonly (readonly [string, string, (v: number) => string])[] = [
  ["learner.step", "step", (v) => String(v)],
  ["learner.rewardMean", "reward", (v) => v.toFixed(3)],
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

/** One progress line: processes per role, work done, restarts, newest policy version. */
function progressLine(
  config: ExperimentConfig,
  startedAt: number,
  running: readonly Slot[],
  restarts: number,
  heartbeats: ReadonlyMap<string, Heartbeat & { readonly at: number }>,
): string {
  const elapsed = Math.round((Date.now() - startedAt) / 1000);
  const clock = `${String(Math.floor(elapsed / 3600)).padStart(2, "0")}:${String(Math.floor(elapsed / 60) % 60).padStart(2, "0")}:${String(elapsed % 60).padStart(2, "0")}`;
  const fresh = [...heartbeats.values()].filter((h) => Date.now() - h.at < config.runtime.heartbeatMs * 3);
  const roles = ROLE_NAMES.flatMap((role) => {
    const wanted = running.filter((slot) => slot.role === role).length;
    const up = fresh.filter((h) => h.role === role && h.state === "running").length;
    return wanted > 0 || up > 0 ? [`${role} ${up}/${wanted}`] : [];
  });
  const processed = fresh.reduce((sum, h) => sum + h.processed, 0);
  const failed = fresh.reduce((sum, h) => sum + h.failed, 0);
  const versions = fresh.flatMap((h) => (h.policyVersion !== undefined ? [h.policyVersion] : []));
  const policy = versions.length > 0 ? ` · policy v${Math.max(...versions)}` : "";
  return `${config.experiment} ${clock} · ${roles.join(" · ") || "no actors"} · processed ${processed} · failed ${failed} · restarts ${restarts}${policy}`;
}

/** Runs the experiment until it completes (success), fails (ExperimentFailed) or is stopped by a signal (success). */
export const launch = (options: LaunchOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { config } = options;
      const logger = makeLogger({ experiment: config.experiment, role: "launcher" });
      for (const role of ROLE_NAMES) {
        if (config.actors[role] > 0 && !options.roles.has(role)) {
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
      );
      const nats = yield* connectNats({ ...connectionOptions, logger });
      const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        effect.pipe(
          Effect.provideService(Nats, nats),
          Effect.provideService(Experiment, {
            subjects: experimentSubjects(config.experiment),
            sender: "launcher",
          }),
        );
      const subjects = experimentSubjects(config.experiment);
      yield* provide(
        ensureWorkQueues({ ackWaitMs: config.runtime.ackWaitMs, maxDeliver: config.runtime.maxDeliveries }),
      );
      yield* provide(putState(CONFIG_KEY, config));

      const outcome = yield* Deferred.make<Outcome>();
      const finish = (result: Outcome) => Effect.runSync(Deferred.succeed(outcome, result));
      const supervisor = makeSupervisor(config, options, natsUrl, configFile, logger, finish);
      // Whatever ends this scope (success, failure, interruption), no actor process outlives it.
      yield* Effect.addFinalizer(() => Effect.promise(() => supervisor.stopAll()));

      if (options.stop !== undefined) {
        yield* Effect.forkScoped(
          Effect.map(Deferred.await(options.stop), (reason) => finish({ ok: true, reason: `stopped by ${reason}` })),
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
      const beats = yield* provide(subscribe(subjects.allHeartbeats, ["Heartbeat"]));
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.map(beats.messages.take, (message) => {
            heartbeats.set(message.body.id, { ...message.body, at: Date.now() });
          }),
        ),
      );

      // The monitor's summary of the experiment's metrics (learner step, reward, evaluation…).
      let summary: Readonly<Record<string, number>> = {};
      const summaries = yield* provide(subscribe(subjects.metrics("monitor"), ["MetricsEvent"]));
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.map(summaries.messages.take, (message) => {
            summary = message.body.values;
          }),
        ),
      );

      for (const role of ROLE_NAMES) {
        for (let n = 0; n < config.actors[role]; n++) supervisor.grow(role);
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
          const line = progressLine(config, startedAt, running, restarts, heartbeats) + summaryText(summary);
          if (tty) process.stderr.write(`\r\x1b[K${line}`);
          else logger.info(line);
        });
        yield* Effect.forkScoped(
          Effect.repeat(show, Schedule.spaced(Duration.millis(tty ? 1_000 : (options.progressEveryMs ?? 10_000)))),
        );
        if (tty) yield* Effect.addFinalizer(() => Effect.sync(() => process.stderr.write("\n")));
      }

      const result = yield* Deferred.await(outcome);
      logger.info({ reason: result.reason }, result.ok ? "stopping the experiment" : "experiment failed; stopping");
      yield* Effect.promise(() => supervisor.stopAll());
      if (!result.ok) return yield* new ExperimentFailed({ reason: result.reason });
      logger.info(`experiment ${config.experiment} stopped: ${result.reason}`);
    }),
  );
