/**
 * The actor runtime: what every role (curator, rollout, reward, learner, evaluator, monitor, echo)
 * runs inside. An actor is a long-running Effect program with a role, an id and an experiment.
 *
 * - Start: connect, open the role's subscriptions/consumers eagerly, flush, then announce (first
 *   heartbeat, NATS services registration answering $SRV.PING/INFO/STATS).
 * - Run: heartbeat every `runtime.heartbeatMs`; the services STATS reply carries the same snapshot,
 *   so `factrl status` (or `nats micro stats`) sees every actor without waiting for a heartbeat. Each
 *   heartbeat is also kept in KV (`actor-status.<id>`), and a role announces a section that may block
 *   its event loop (`busy`) before entering it: status lists a silent actor from that record.
 * - Drain (SIGTERM/SIGINT, a `drain` control request — logged with its sender —, the launcher going
 *   away, or, for an actor not started by a launcher, the experiment's outcome): stop taking work,
 *   let work in hand finish for up to `runtime.drainTimeoutMs`, hand back (nak) what is left, flush,
 *   succeed — the process exits 0 and nothing accepted is lost. An actor that leaves because the
 *   experiment failed fails with JoinedExperimentFailed instead.
 * - Crash: a failure or defect of the role restarts it (jittered exponential backoff), counted in the
 *   heartbeat's `restarts`; more than `runtime.restart.maxRestarts` restarts within `windowMs` gives
 *   up loudly (ActorGaveUp, exit 1).
 */
import { hostname } from "node:os";
import { Svcm } from "@nats-io/services";
import {
  Cause,
  Context,
  Data,
  Deferred,
  Duration,
  Effect,
  Either,
  Fiber,
  Layer,
  Queue,
  Schedule,
  type Scope,
} from "effect";
import { ConfigError, type ExperimentConfig, natsConnectionOptions } from "../configs/index.ts";
import {
  actorStatusKey,
  type ConnectError,
  type ConnectionOptions,
  type ConsumeWorkOptions,
  ControlReplyMessage,
  ControlRequestMessage,
  consumeWork,
  decodeEnvelope,
  EXPERIMENT_OUTCOME_KEY,
  Experiment,
  ExperimentLive,
  encodeEnvelope,
  envelope,
  type FactrlLogger,
  type Heartbeat,
  HeartbeatMessage,
  type InvalidNameError,
  type JetStreamError,
  makeLogger,
  Nats,
  NatsLive,
  pinoLoggerLayer,
  putState,
  validateToken,
  type WorkItem,
  WorkOutcome,
  type WorkQueue,
  watchState,
} from "../messaging/index.ts";

/** The role gave up: too many restarts in the window. The process exits 1. */
export class ActorGaveUp extends Data.TaggedError("ActorGaveUp")<{
  readonly role: string;
  readonly id: string;
  readonly restarts: number;
  readonly windowMs: number;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.id} gave up after ${this.restarts} restarts within ${this.windowMs} ms: ${this.reason}`;
  }
}

/** What a role's code sees of its actor. */
export interface ActorContext {
  readonly role: string;
  readonly id: string;
  readonly config: ExperimentConfig;
  /** pino logger annotated with experiment, role and id (Effect.log* goes to it too). */
  readonly logger: FactrlLogger;
  /** Counts shown in heartbeats and `factrl status`. */
  readonly recordProcessed: (count?: number) => void;
  readonly recordFailed: (count?: number) => void;
  /** The policy version the actor works with, when it has one (shown in heartbeats). */
  readonly setPolicyVersion: (version: number) => void;
  /**
   * Runs `effect` as a long section that may block the event loop (a training step): publishes a
   * heartbeat saying `busy: { what, since }` and stores it as the actor's status record first, so
   * `factrl status` lists the actor as busy while it cannot answer. Nested sections keep the outer one.
   */
  readonly busy: <A, E, R>(what: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>;
  /** True once draining started: take no new work. */
  readonly isDraining: () => boolean;
  /** Completes when draining starts (race a long wait against it). */
  readonly draining: Effect.Effect<void>;
  /**
   * Runs `work` as work in hand: a drain waits for it (up to runtime.drainTimeoutMs) before
   * stopping the role. Refuses to start once draining (fails with Draining).
   */
  readonly inHand: <A, E, R>(work: Effect.Effect<A, E, R>) => Effect.Effect<A, E | Draining, R>;
  /**
   * Works a queue (messaging's consumeWork) the drain-aware way: an item that arrives once draining
   * started is handed back at once (so is one cut off by the drain timeout: consumeWork naks on
   * interruption). Counts
   * Done as processed and anything else as failed.
   */
  /**
   * Answers requests on `factrl.<exp>.<endpoint>` (declared in RoleDefinition.serves) as an endpoint
   * of the actor's NATS service, so `$SRV.INFO`/`STATS` list it with its request and error counts;
   * the role's actors share it as one queue group. `answer` gets the request's bytes; a reply with
   * `error` set is sent with the services protocol's error headers (Nats-Service-Error) and counted as
   * failed in the heartbeat (`factrl status`, the STATS data), one without as processed.
   */
  readonly serve: (endpoint: string, answer: (request: Uint8Array) => Promise<ServedReply>) => Effect.Effect<void>;
  readonly consume: <A, E, R>(
    queue: WorkQueue<A>,
    handler: (item: WorkItem<A>) => Effect.Effect<WorkOutcome, E, R>,
    options?: Omit<ConsumeWorkOptions, "counters">,
  ) => Effect.Effect<never, JetStreamError, Nats | Experiment | R>;
}

/** An endpoint's reply: the bytes to send, and why the request was refused or failed, if it was. */
export interface ServedReply {
  readonly data: Uint8Array;
  readonly error?: string;
}

export class Draining extends Data.TaggedError("Draining")<{ readonly id: string }> {}

/**
 * The experiment this actor joined (from outside its launcher) failed: the actor drained and stopped.
 * Not the actor's own failure — a supervisor should not restart it (exit code: cli/exit-codes.ts).
 */
export class JoinedExperimentFailed extends Data.TaggedError("JoinedExperimentFailed")<{
  readonly experiment: string;
  readonly id: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `experiment ${this.experiment} failed (${this.reason}); ${this.id} drained and stopped`;
  }
}

/**
 * A failure that restarting cannot mend (the run's shared state was tampered with, say): the role is
 * not restarted, the actor exits 1 with `reason`, and the launcher fails the experiment.
 */
export class RoleFatal extends Data.TaggedError("RoleFatal")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

const isFatal = (cause: Cause.Cause<unknown>): boolean =>
  [...Cause.failures(cause)].some((error) => error instanceof RoleFatal);

/** The services a role's effects may require: the connection and the experiment's names. */
export type ActorServices = Nats | Experiment;

/**
 * The services an actor's (or the launcher's) effects run with, as one Layer: its NATS connection
 * (closed with the scope), the experiment's names with `sender` as its id, and logs through pino.
 */
export const actorServices = (
  connection: ConnectionOptions,
  experiment: string,
  sender: string,
  logger: FactrlLogger,
): Layer.Layer<ActorServices, ConnectError | InvalidNameError> =>
  Layer.mergeAll(NatsLive(connection), ExperimentLive(experiment, sender), pinoLoggerLayer(logger));

/**
 * A role: `start` opens its subscriptions and consumers (in the given scope — they close when the
 * role stops or restarts) and returns its work loop. The loop runs until interrupted, or returns when
 * the role's job is done (e.g. the learner after its last step): the actor then stops with success.
 */
export interface RoleDefinition {
  readonly name: string;
  /** One line for `factrl actor --help`. */
  readonly description: string;
  /**
   * What the role does on the server, declared once: the launcher creates every queue of every role in
   * its registry before it starts any actor (`ensureExperimentQueues`), and `factrl nats auth` gives the
   * role's users exactly these rights (messaging/permissions.ts). An undeclared write is refused by a
   * server running with the generated permissions.
   */
  /** Work queues its actors take work from. */
  readonly takes?: readonly WorkQueue<unknown>[];
  /** Work queues its actors publish to. */
  readonly gives?: readonly WorkQueue<unknown>[];
  /** State keys its actors write (besides each actor's own status record, which every actor writes). */
  readonly writes?: readonly { readonly key: string }[];
  /** Whether its actors store blobs (the policy's weights and tokenizer). */
  readonly writesBlobs?: boolean;
  /** Subjects of outside services its actors send requests to (NATS wildcards allowed). */
  readonly requests?: readonly string[];
  /** Endpoints its actors answer requests on, each `factrl.<exp>.<endpoint>` (ActorContext.serve). */
  readonly serves?: readonly string[];
  /** Endpoints of its own experiment its actors send requests to, each `factrl.<exp>.<endpoint>` (the retriever's `retrieve`). */
  readonly asks?: readonly string[];
  /** When an actor of this role completes, the experiment is over (the launcher stops everything). */
  readonly endsExperiment?: boolean;
  readonly start: (
    context: ActorContext,
  ) => Effect.Effect<Effect.Effect<unknown, unknown, ActorServices>, unknown, ActorServices | Scope.Scope>;
}

export interface RunActorOptions {
  readonly role: RoleDefinition;
  readonly config: ExperimentConfig;
  /** Unique in the experiment; default `<role>-<random>`. */
  readonly id?: string;
  /** Overrides config.nats.url. */
  readonly natsUrl?: string;
  /**
   * Drain when this process's parent changes (the launcher died): no orphaned actors. An actor
   * without one (joined from another host) follows the experiment's outcome instead: it drains when
   * the experiment completes, and fails with JoinedExperimentFailed when it fails.
   */
  readonly parentPid?: number;
  /** Completing it starts a drain, with the value as the reason (the CLI completes it on SIGTERM/SIGINT). */
  readonly drain?: Deferred.Deferred<string>;
}

export const defaultActorId = (role: string): string => `${role}-${Math.random().toString(36).slice(2, 8)}`;

/** How long writing the status record may hold up a heartbeat (the server may be away). */
const STATUS_RECORD_TIMEOUT = Duration.seconds(2);

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}…` : text);
/** A sender named by a message (it may be anyone's), quoted and bounded for logs and heartbeats. */
const quotedSender = (sender: string): string => JSON.stringify(clip(sender, 80));
/** A heartbeat's reason stays small whatever an error message holds (a heartbeat is one NATS message). */
const MAX_REASON_LENGTH = 500;

/** The jittered, capped exponential backoff between restarts, giving up after too many in the window. */
function restartSchedule(
  config: ExperimentConfig,
  on: { readonly restart: () => void; readonly giveUp: (restarts: number) => void },
) {
  const policy = config.runtime.restart;
  const recent: number[] = [];
  return Schedule.exponential(Duration.millis(policy.baseDelayMs)).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((delay) => Duration.min(delay, Duration.millis(policy.maxDelayMs))),
    Schedule.whileInput((cause: Cause.Cause<unknown>) => {
      if (Cause.isInterruptedOnly(cause) || isFatal(cause)) return false;
      const now = Date.now();
      while (recent.length > 0 && recent[0]! < now - policy.windowMs) recent.shift();
      if (recent.length >= policy.maxRestarts) {
        on.giveUp(recent.length);
        return false;
      }
      recent.push(now);
      on.restart();
      return true;
    }),
  );
}

const causeText = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause);
  return error instanceof Error ? error.message : String(error);
};

/** Runs one actor until it is drained (success), its role completes (success) or it gives up (ActorGaveUp). */
export const runActor = (options: RunActorOptions) =>
  Effect.scoped(
    Effect.gen(function* () {
      const { role, config } = options;
      const id = validateToken("actor id", options.id ?? defaultActorId(role.name));
      const experiment = config.experiment;
      const logger = makeLogger({ experiment, role: role.name, id });
      const startedAt = Date.now();
      const url = options.natsUrl ?? config.nats.url;
      if (url === undefined) {
        return yield* new ConfigError({
          source: "nats.url",
          problems: ["nats.url: no NATS server to connect to; pass --nats URL or set nats.url"],
        });
      }

      // ── state shown in heartbeats ──
      let state: Heartbeat["state"] = "starting";
      let processed = 0;
      let failed = 0;
      let policyVersion: number | undefined;
      let inFlight = 0;
      let restarts = 0;
      let busy: Heartbeat["busy"];
      let reason: string | undefined;
      let lastHeartbeatAt = 0;
      let rejectedRequests = 0;
      const drainRequested = options.drain ?? (yield* Deferred.make<string>());
      const drainStarted = yield* Deferred.make<void>();
      let draining = false;

      const connectionOptions = yield* natsConnectionOptions(config.nats, url, `factrl-${id}`, {
        kind: role.name,
        experiment,
      });
      const services = yield* Layer.build(actorServices({ ...connectionOptions, logger }, experiment, id, logger));
      const nats = Context.get(services, Nats);
      const { subjects } = Context.get(services, Experiment);
      const provide = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, services);

      const heartbeat = (): Heartbeat => ({
        role: role.name,
        id,
        host: hostname(),
        pid: process.pid,
        uptimeMs: Date.now() - startedAt,
        processed,
        failed,
        ...(policyVersion !== undefined ? { policyVersion } : {}),
        state,
        restarts,
        ...(busy !== undefined ? { busy } : {}),
        ...(rejectedRequests > 0 ? { rejectedRequests } : {}),
        ...(reason !== undefined ? { reason } : {}),
      });
      const statusRecord = actorStatusKey(id);
      let statusRecordFailing = false;
      /** Publishes a heartbeat and stores it as the actor's status record (awaited, best effort). */
      const publishHeartbeat = Effect.suspend(() => {
        lastHeartbeatAt = Date.now();
        const beat = heartbeat();
        const message = envelope(HeartbeatMessage, beat, { experiment, sender: id, sentAt: lastHeartbeatAt });
        nats.connection.publish(subjects.heartbeat(role.name, id), encodeEnvelope(message));
        return provide(putState(statusRecord, { ...beat, sentAt: lastHeartbeatAt })).pipe(
          Effect.timeoutFail({
            duration: STATUS_RECORD_TIMEOUT,
            onTimeout: () => new Error(`no answer within ${Duration.format(STATUS_RECORD_TIMEOUT)}`),
          }),
          Effect.match({
            onFailure: (error) => {
              if (!statusRecordFailing) logger.warn({ reason: error.message }, "cannot store the status record");
              statusRecordFailing = true;
            },
            onSuccess: () => {
              if (statusRecordFailing) logger.info("status record stored again");
              statusRecordFailing = false;
            },
          }),
        );
      });

      const countOutcome = (done: boolean) => {
        if (done) processed += 1;
        else failed += 1;
      };

      // ── work in hand, drain-aware ──
      const inHand: ActorContext["inHand"] = <A, E, R>(work: Effect.Effect<A, E, R>) =>
        Effect.suspend((): Effect.Effect<A, E | Draining, R> => {
          if (draining) return Effect.fail(new Draining({ id }));
          inFlight += 1;
          return Effect.ensuring(
            work,
            Effect.sync(() => {
              inFlight -= 1;
            }),
          );
        });
      const consume: ActorContext["consume"] = (queue, handler, consumeOptions = {}) => {
        // Hand the item back at once, then park this worker until the drain ends: pulling again
        // would only bounce items (each bounce counts as a delivery towards dead-lettering).
        const handBack = (item: WorkItem<unknown>) =>
          item.settle(WorkOutcome.retry(`${id} is draining`, 0)).pipe(Effect.ignore, Effect.zipRight(Effect.never));
        return consumeWork(
          queue,
          (item) =>
            Effect.suspend(() => {
              if (draining) return handBack(item);
              return inHand(
                handler(item).pipe(
                  Effect.tapBoth({
                    onFailure: () => Effect.sync(() => countOutcome(false)),
                    onSuccess: (outcome) => Effect.sync(() => countOutcome(outcome._tag === "Done")),
                  }),
                ),
              ).pipe(Effect.catchTag("Draining", () => handBack(item)));
            }),
          consumeOptions,
        );
      };

      const context: ActorContext = {
        role: role.name,
        id,
        config,
        logger,
        recordProcessed: (count = 1) => {
          processed += count;
        },
        recordFailed: (count = 1) => {
          failed += count;
        },
        setPolicyVersion: (version) => {
          policyVersion = version;
        },
        busy: (what, effect) =>
          Effect.suspend(() =>
            busy !== undefined
              ? effect
              : Effect.acquireUseRelease(
                  Effect.suspend(() => {
                    busy = { what, since: Date.now() };
                    return publishHeartbeat;
                  }),
                  () => effect,
                  () =>
                    Effect.suspend(() => {
                      busy = undefined;
                      return publishHeartbeat;
                    }),
                ),
          ),
        isDraining: () => draining,
        draining: Deferred.await(drainStarted),
        inHand,
        consume,
        serve: (endpoint, answer) =>
          Effect.sync(() => {
            if (!(role.serves ?? []).includes(endpoint))
              throw new Error(`role ${role.name} serves ${endpoint} without declaring it (RoleDefinition.serves)`);
            service.addEndpoint(endpoint, {
              subject: `${subjects.root}.${endpoint}`,
              queue: subjects.service(role.name),
              handler: (error, msg) => {
                if (error) return;
                answer(msg.data).then(
                  (reply) => {
                    countOutcome(reply.error === undefined);
                    if (reply.error === undefined) msg.respond(reply.data);
                    else msg.respondError(400, reply.error, reply.data);
                  },
                  (failure: unknown) => {
                    countOutcome(false);
                    logger.error({ subject: msg.subject, err: failure }, `${endpoint} failed`);
                    msg.respondError(500, failure instanceof Error ? failure.message : String(failure));
                  },
                );
              },
            });
          }),
      };

      // ── control endpoint + NATS services protocol ($SRV.PING/INFO/STATS) ──
      const service = yield* Effect.acquireRelease(
        Effect.promise(() =>
          // @nats-io/services bundles its own nats-core types; the connection is the same at run time.
          new Svcm(nats.connection as unknown as ConstructorParameters<typeof Svcm>[0]).add({
            name: subjects.service(role.name),
            version: "0.1.0",
            description: `factrl ${role.name} actor of experiment ${experiment}`,
            metadata: { experiment, role: role.name, actor: id, host: hostname(), pid: String(process.pid) },
            // STATS carries the heartbeat snapshot, so status needs no wait for the next heartbeat.
            // The age is measured here, on the actor's own clock: no skew between hosts.
            statsHandler: async () => ({ ...heartbeat(), heartbeatAgeMs: Date.now() - lastHeartbeatAt }),
          }),
        ),
        (svc) => Effect.promise(() => svc.stop().catch(() => null)),
      );
      service.addEndpoint("control", {
        subject: subjects.control(role.name, id),
        metadata: { commands: "drain,status" },
        handler: (error, msg) => {
          const reply = (ok: boolean, message: string, data?: unknown) =>
            msg.respond(
              encodeEnvelope(envelope(ControlReplyMessage, { ok, message, data }, { experiment, sender: id })),
            );
          /** Logs and counts a refused request (a flood logs ~10 lines, then every power of ten), and says why. */
          const refuse = (why: string) => {
            rejectedRequests += 1;
            if (rejectedRequests <= 10 || Number.isInteger(Math.log10(rejectedRequests)))
              logger.warn({ subject: msg.subject, reason: why, count: rejectedRequests }, "refused control request");
            return reply(false, why);
          };
          if (error) return refuse(`control request failed: ${error.message}`);
          const decoded = decodeEnvelope(msg.data, { accept: [ControlRequestMessage], maxBytes: nats.maxPayload });
          if (Either.isLeft(decoded)) return refuse(`bad control request: ${decoded.left.message}`);
          const { command } = decoded.right.body;
          if (command === "drain") {
            // Anyone on the server may send one (no auth yet): say who claims to have.
            const sender = quotedSender(decoded.right.sender);
            logger.info({ sender, subject: msg.subject }, `drain requested by ${sender}`);
            Effect.runSync(Deferred.succeed(drainRequested, `drain control request from ${sender}`));
            return reply(true, `${id} draining`);
          }
          if (command === "status") return reply(true, `${id} ${state}`, heartbeat());
          return refuse(`unknown command ${JSON.stringify(command.slice(0, 80))} (known: drain, status)`);
        },
      });

      // ── what starts a drain besides a control request ──
      /** Set when the experiment's launcher says it failed: the actor drains, then fails. */
      let experimentFailure: string | undefined;
      if (options.parentPid === undefined) {
        const followOutcome = Effect.scoped(
          Effect.gen(function* () {
            const outcomes = yield* watchState(EXPERIMENT_OUTCOME_KEY);
            for (;;) {
              const { value } = yield* Queue.take(outcomes);
              if (value.outcome === "completed") {
                yield* Deferred.succeed(drainRequested, `experiment ${experiment} completed (${value.reason})`);
              } else if (value.outcome === "failed") {
                const first = yield* Deferred.succeed(
                  drainRequested,
                  `experiment ${experiment} failed (${value.reason})`,
                );
                if (first) experimentFailure = value.reason;
              } else if (value.outcome === "stopped") {
                logger.info(
                  { reason: value.reason },
                  `experiment ${experiment} was stopped by its launcher; waiting for it to resume`,
                );
              }
            }
          }),
        ).pipe(
          Effect.catchAll((error) =>
            Effect.sync(() =>
              logger.warn({ reason: error.message }, "cannot follow the experiment's outcome; stop this actor by hand"),
            ),
          ),
        );
        yield* Effect.forkScoped(provide(followOutcome));
      } else {
        const parent = options.parentPid;
        yield* Effect.forkScoped(
          Effect.repeat(
            Effect.suspend(() =>
              process.ppid !== parent ? Deferred.succeed(drainRequested, "launcher went away") : Effect.void,
            ),
            Schedule.spaced(Duration.millis(500)),
          ),
        );
      }

      // ── the role, supervised ──
      const ready = yield* Deferred.make<void>();
      let gaveUpAfter = 0;
      const supervised = Effect.scoped(
        Effect.gen(function* () {
          const loop = yield* role.start(context);
          // Subscriptions exist on the client; flush so the server has them before we announce.
          yield* Effect.promise(() => nats.connection.flush());
          yield* Deferred.succeed(ready, undefined);
          return yield* loop;
        }),
      ).pipe(
        Effect.sandbox,
        Effect.tapError((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.sync(() => logger.error({ cause: Cause.pretty(cause) }, `${role.name} crashed; restarting`)),
        ),
        Effect.retry(
          restartSchedule(config, {
            restart: () => {
              restarts += 1;
            },
            giveUp: (count) => {
              gaveUpAfter = count;
            },
          }),
        ),
        Effect.unsandbox,
      );
      const work = yield* Effect.fork(provide(supervised));

      const started = yield* Effect.raceFirst(
        Deferred.await(ready).pipe(Effect.as(true)),
        Fiber.await(work).pipe(Effect.as(false)),
      );
      if (started) {
        state = "running";
        yield* publishHeartbeat;
        logger.info({ nats: nats.connection.getServer() }, `${role.name} actor started`);
      }
      yield* Effect.forkScoped(
        Effect.repeat(publishHeartbeat, Schedule.spaced(Duration.millis(config.runtime.heartbeatMs))),
      );

      const ended = yield* Effect.raceFirst(
        Fiber.await(work).pipe(Effect.map((exit) => ({ _tag: "finished" as const, exit }))),
        Deferred.await(drainRequested).pipe(Effect.map((reason) => ({ _tag: "drain" as const, reason }))),
      );

      if (ended._tag === "drain") {
        draining = true;
        state = "draining";
        reason = clip(ended.reason, MAX_REASON_LENGTH);
        yield* Deferred.succeed(drainStarted, undefined);
        yield* publishHeartbeat;
        logger.info({ reason: ended.reason, inFlight }, "draining: taking no new work");
        const idle = Effect.repeat(Effect.sleep(Duration.millis(20)), { until: () => inFlight === 0 });
        const finished = yield* Effect.raceFirst(
          Fiber.await(work).pipe(Effect.as(true)),
          idle.pipe(Effect.as(false)),
        ).pipe(
          Effect.timeoutTo({ duration: config.runtime.drainTimeoutMs, onTimeout: () => false, onSuccess: (x) => x }),
        );
        if (!finished && inFlight > 0) logger.warn({ inFlight }, "drain timeout: handing back unfinished work");
        yield* Fiber.interrupt(work);
        state = "stopped";
        yield* publishHeartbeat;
        yield* Effect.promise(() => nats.connection.flush());
        logger.info({ processed, failed, reason: ended.reason }, `${role.name} actor drained: ${ended.reason}`);
        if (experimentFailure !== undefined) {
          return yield* new JoinedExperimentFailed({ experiment, id, reason: experimentFailure });
        }
        return;
      }

      const exit = ended.exit;
      if (exit._tag === "Success") {
        state = "stopped";
        reason = "its work is done";
        yield* publishHeartbeat;
        logger.info({ processed, failed }, `${role.name} actor completed`);
        return;
      }
      state = "failed";
      const failure = causeText(exit.cause);
      reason = clip(failure, MAX_REASON_LENGTH);
      yield* publishHeartbeat;
      yield* Effect.promise(() => nats.connection.flush());
      const error = new ActorGaveUp({
        role: role.name,
        id,
        restarts: gaveUpAfter,
        windowMs: config.runtime.restart.windowMs,
        reason: failure,
      });
      logger.fatal({ cause: Cause.pretty(exit.cause) }, error.message);
      return yield* Effect.fail(error);
    }),
  );
