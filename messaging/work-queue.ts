/**
 * Durable work: prompts, rollouts and scored groups on JetStream work-queue streams, each read by one
 * durable pull consumer shared by every worker of that queue.
 *
 * - Publishing awaits the stream's ack and retries through outages with the same msgID, so a message
 *   is stored exactly once even when a publish is repeated.
 * - Fetching is demand-driven (a worker pulls only when it has room), so slow workers apply
 *   backpressure instead of buffering.
 * - Redelivery is bounded: the consumer allows `maxDeliver` attempts. A message that is rejected,
 *   still failing on its last attempt, undecodable, or delivered more often than allowed (its
 *   consumers died without acking) is published to `factrl.<exp>.deadletter.<queue>` with the reason
 *   in headers, acked (which removes it from the work stream) and counted. The server's max_deliver is
 *   maxDeliver + 1, so the extra delivery is the one on which the client dead-letters; if that one is
 *   lost too, the server's MAX_DELIVERIES advisory triggers the same by stream sequence.
 */
import { AckPolicy, type Consumer, DeliverPolicy, type JsMsg, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { nanos, headers as natsHeaders } from "@nats-io/transport-node";
import { Cause, Data, Duration, Effect, Either, Fiber, Runtime, Schedule, type Scope } from "effect";
import { decodeEnvelope, type Envelope, encodeEnvelope, envelope, type MessageTooLargeError } from "./codec.ts";
import { Nats, type NatsService } from "./connection.ts";
import { Experiment, type ExperimentService } from "./experiment.ts";
import type { MessageBody } from "./messages.ts";
import { type StreamSettings, upsertStream } from "./streams.ts";
import { WORK_QUEUES, type WorkQueueName } from "./subjects.ts";

/** Which message type each queue carries. */
export const QUEUE_MESSAGE_TYPE = {
  prompts: "PromptGroup",
  rollouts: "RolloutGroup",
  scored: "ScoredGroup",
} as const satisfies Record<WorkQueueName, string>;
export type QueueType<Q extends WorkQueueName> = (typeof QUEUE_MESSAGE_TYPE)[Q];
export type QueueBody<Q extends WorkQueueName> = MessageBody<QueueType<Q>>;

export class JetStreamError extends Data.TaggedError("JetStreamError")<{
  readonly operation: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `JetStream ${this.operation} failed: ${this.reason}`;
  }
}

const jsError = (operation: string) => (error: unknown) =>
  new JetStreamError({ operation, reason: error instanceof Error ? error.message : String(error) });

export interface WorkQueueSettings {
  /** How long a delivered message may go unacked before it is redelivered (default 30 s). */
  readonly ackWaitMs?: number;
  /** Attempts before a message is dead-lettered (default 5). */
  readonly maxDeliver?: number;
  /** msgID de-duplication window (default 2 min). */
  readonly duplicateWindowMs?: number;
  /** How long dead letters are kept (default 7 days). */
  readonly deadLetterMaxAgeMs?: number;
}

const DEFAULTS = { ackWaitMs: 30_000, maxDeliver: 5, duplicateWindowMs: 120_000, deadLetterMaxAgeMs: 7 * 86_400_000 };

/**
 * Creates (or updates) the three work-queue streams, their durable consumers and the dead-letter
 * stream of the experiment. Idempotent: every actor may call it at start.
 */
export const ensureWorkQueues = (
  settings: WorkQueueSettings = {},
): Effect.Effect<void, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const s = { ...DEFAULTS, ...settings };
    const upsert = (stream: StreamSettings) =>
      Effect.tryPromise({
        try: () => upsertStream(manager, stream),
        catch: jsError(`creating stream ${stream.name}`),
      });
    for (const queue of WORK_QUEUES) {
      yield* upsert({
        name: subjects.stream(queue),
        subjects: [subjects.work(queue)],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(s.duplicateWindowMs),
      });
      const consumer = {
        durable_name: subjects.consumer(queue),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(s.ackWaitMs),
        max_deliver: s.maxDeliver + 1,
      };
      yield* Effect.tryPromise({
        try: async () => {
          const stream = subjects.stream(queue);
          try {
            await manager.consumers.info(stream, consumer.durable_name);
          } catch {
            await manager.consumers.add(stream, consumer);
            return;
          }
          await manager.consumers.update(stream, consumer.durable_name, {
            ack_wait: consumer.ack_wait,
            max_deliver: consumer.max_deliver,
          });
        },
        catch: jsError(`creating consumer ${subjects.consumer(queue)}`),
      });
    }
    yield* upsert({
      name: subjects.deadLetterStream,
      subjects: [subjects.allDeadLetters],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(s.deadLetterMaxAgeMs),
      duplicate_window: nanos(s.duplicateWindowMs),
    });
  });

export interface PublishWorkOptions {
  /** De-duplication id; defaults to the envelope id. Pass a stable id (the group id) for idempotent re-sends. */
  readonly msgId?: string;
  /** How long to keep retrying through a server outage before failing (default 60 s). */
  readonly retryForMs?: number;
}

/** Publishes one work item and waits for the stream to store it; `duplicate` means it was already there. */
export const publishWork = <Q extends WorkQueueName>(
  queue: Q,
  body: QueueBody<Q>,
  options: PublishWorkOptions = {},
): Effect.Effect<
  { readonly seq: number; readonly duplicate: boolean },
  MessageTooLargeError | JetStreamError,
  Nats | Experiment
> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { subjects, sender } = yield* Experiment;
    const message = envelope(QUEUE_MESSAGE_TYPE[queue], body as never, {
      experiment: subjects.experiment,
      sender,
      ...(options.msgId !== undefined ? { id: options.msgId } : {}),
    });
    const bytes = yield* Effect.try({
      try: () => encodeEnvelope(message as Envelope, nats.maxPayload),
      catch: (error) => error as MessageTooLargeError,
    });
    const subject = subjects.work(queue);
    const retryFor = Duration.millis(options.retryForMs ?? 60_000);
    const ack = yield* Effect.tryPromise({
      try: () => nats.jetstream.publish(subject, bytes, { msgID: message.id, timeout: 5_000 }),
      catch: (error) => {
        const failure = jsError(`publish to ${subject}`)(error);
        const hint = /no responders/i.test(`${failure.reason} ${(error as Error)?.cause ?? ""}`)
          ? " (no stream stores this subject, or JetStream is restarting: did ensureWorkQueues run?)"
          : "";
        return new JetStreamError({ operation: failure.operation, reason: failure.reason + hint });
      },
    }).pipe(
      Effect.retry(
        Schedule.exponential(Duration.millis(100)).pipe(
          Schedule.either(Schedule.spaced(Duration.seconds(2))),
          Schedule.upTo(retryFor),
        ),
      ),
    );
    return { seq: ack.seq, duplicate: ack.duplicate };
  });

/** One item of a publishWorkAll batch: its body and (for idempotent re-sends) its msgID. */
export interface WorkToPublish<Q extends WorkQueueName> {
  readonly body: QueueBody<Q>;
  readonly msgId?: string;
}

/**
 * Publishes several work items at once and returns when the stream has stored every one (acks in
 * the items' order): the acks are awaited together, so a batch costs about one round trip, not one
 * per item. Each item retries like publishWork. It fails when any item fails; items already stored
 * stay stored, and re-sending them with the same msgID is a no-op.
 */
export const publishWorkAll = <Q extends WorkQueueName>(
  queue: Q,
  items: ReadonlyArray<WorkToPublish<Q>>,
  options: Omit<PublishWorkOptions, "msgId"> = {},
): Effect.Effect<
  ReadonlyArray<{ readonly seq: number; readonly duplicate: boolean }>,
  MessageTooLargeError | JetStreamError,
  Nats | Experiment
> =>
  Effect.forEach(
    items,
    (item) => publishWork(queue, item.body, item.msgId === undefined ? options : { ...options, msgId: item.msgId }),
    { concurrency: "unbounded" },
  );

/** What a handler decided about one work item. */
export type WorkOutcome =
  | { readonly _tag: "Done" }
  | { readonly _tag: "Retry"; readonly reason: string; readonly delayMs: number }
  | { readonly _tag: "Reject"; readonly reason: string };

export const WorkOutcome = {
  done: { _tag: "Done" } as WorkOutcome,
  /** Try again later (redelivered after `delayMs`); on the last allowed attempt it is dead-lettered instead. */
  retry: (reason: string, delayMs = 1_000): WorkOutcome => ({ _tag: "Retry", reason, delayMs }),
  /** Never retry: dead-letter now with `reason`. */
  reject: (reason: string): WorkOutcome => ({ _tag: "Reject", reason }),
};

/** Counts of what happened to this process's deliveries (read them for heartbeats and metrics). */
export interface WorkCounters {
  done: number;
  retried: number;
  deadLettered: number;
}

export const newWorkCounters = (): WorkCounters => ({ done: 0, retried: 0, deadLettered: 0 });

/** One delivered work item. Settle it exactly once (fetch API) — `consumeWork` does that for you. */
export interface WorkItem<Q extends WorkQueueName> {
  readonly envelope: Envelope<QueueType<Q>>;
  readonly body: QueueBody<Q>;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  readonly streamSequence: number;
  /** Tells the server this item is still being worked on (resets its ack timer). */
  readonly working: Effect.Effect<void>;
  /** Applies an outcome: ack, nak with delay, or dead-letter (see WorkOutcome). */
  readonly settle: (outcome: WorkOutcome) => Effect.Effect<void, JetStreamError>;
}

interface QueueRuntime {
  readonly nats: NatsService;
  readonly experiment: ExperimentService;
  readonly queue: WorkQueueName;
  readonly consumer: Consumer;
  /** Attempts allowed before dead-lettering (the server's max_deliver minus the dead-letter delivery). */
  readonly maxDeliver: number;
  readonly ackWaitMs: number;
  readonly counters: WorkCounters;
}

const openQueue = (queue: WorkQueueName, counters: WorkCounters) =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const experiment = yield* Experiment;
    const stream = experiment.subjects.stream(queue);
    const name = experiment.subjects.consumer(queue);
    const consumer = yield* Effect.tryPromise({
      try: () => nats.jetstream.consumers.get(stream, name),
      catch: jsError(`opening consumer ${name} on ${stream} (did ensureWorkQueues run?)`),
    });
    const info = yield* Effect.tryPromise({ try: () => consumer.info(true), catch: jsError(`reading ${name}`) });
    const runtime: QueueRuntime = {
      nats,
      experiment,
      queue,
      consumer,
      // A consumer made elsewhere without max_deliver (-1) never dead-letters for exhaustion.
      maxDeliver: (info.config.max_deliver ?? -1) > 1 ? (info.config.max_deliver ?? 0) - 1 : Number.POSITIVE_INFINITY,
      ackWaitMs: (info.config.ack_wait ?? nanos(DEFAULTS.ackWaitMs)) / 1_000_000,
      counters,
    };
    return runtime;
  });

interface DeadLetter {
  readonly data: Uint8Array;
  readonly seq: number;
  readonly deliveries: number;
}

/**
 * Publishes a work item to the dead-letter subject with the reason, then `remove`s it from the work
 * stream, logs and counts it. The msgID makes dead-lettering the same stream message twice (after a
 * crash, or by two advisory listeners) a no-op.
 */
const deadLetter = (runtime: QueueRuntime, letter: DeadLetter, reason: string, remove: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const { subjects } = runtime.experiment;
    const subject = subjects.deadLetter(runtime.queue);
    const h = natsHeaders();
    h.set("Factrl-Reason", reason.slice(0, 1_000).replace(/[\r\n]+/g, " "));
    h.set("Factrl-Queue", runtime.queue);
    h.set("Factrl-Stream-Seq", String(letter.seq));
    h.set("Factrl-Deliveries", String(letter.deliveries));
    const ack = yield* Effect.tryPromise({
      try: () =>
        runtime.nats.jetstream.publish(subject, letter.data, {
          msgID: `dl-${subjects.stream(runtime.queue)}-${letter.seq}`,
          headers: h,
        }),
      catch: jsError(`dead-lettering to ${subject}`),
    });
    yield* remove;
    if (ack.duplicate) return;
    runtime.counters.deadLettered += 1;
    runtime.nats.logger.warn(
      { queue: runtime.queue, seq: letter.seq, deliveries: letter.deliveries, reason },
      "work item dead-lettered",
    );
  });

/** Dead-letters a delivery; acking it removes it from the work-queue stream. */
const deadLetterDelivery = (runtime: QueueRuntime, msg: JsMsg, reason: string) =>
  deadLetter(
    runtime,
    { data: msg.data, seq: msg.seq, deliveries: msg.info.deliveryCount },
    reason,
    Effect.sync(() => msg.ack()),
  );

/**
 * The safety net behind dead-lettering on receipt: if the delivery on which a client would
 * dead-letter is itself lost (its consumer died), the server stops delivering and announces it with
 * a MAX_DELIVERIES advisory. On that advisory we dead-letter the message from the stream by sequence
 * and delete it. Every worker listens; the msgID and the idempotent delete make that safe.
 */
const sweepExhausted = (runtime: QueueRuntime) =>
  Effect.gen(function* () {
    const { subjects } = runtime.experiment;
    const stream = subjects.stream(runtime.queue);
    const subject = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${subjects.consumer(runtime.queue)}`;
    const sweep = (seq: number, deliveries: number) =>
      Effect.gen(function* () {
        const stored = yield* Effect.tryPromise({
          try: () => runtime.nats.manager.streams.getMessage(stream, { seq }),
          catch: jsError(`reading ${stream} #${seq}`),
        }).pipe(Effect.orElseSucceed(() => null));
        if (stored === null) return; // already dead-lettered or acked
        yield* deadLetter(
          runtime,
          { data: stored.data, seq, deliveries },
          `exhausted ${deliveries} deliveries without an ack (its consumers died or timed out)`,
          Effect.promise(() => runtime.nats.manager.streams.deleteMessage(stream, seq).catch(() => false)),
        );
      }).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() =>
            runtime.nats.logger.error({ queue: runtime.queue, seq, reason: error.message }, "sweep failed"),
          ),
        ),
      );
    const run = yield* Effect.runtime<never>();
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        runtime.nats.connection.subscribe(subject, {
          callback: (_error, msg) => {
            try {
              const advisory = msg.json<{ stream_seq?: number; deliveries?: number }>();
              if (typeof advisory.stream_seq === "number") {
                Runtime.runFork(run)(sweep(advisory.stream_seq, advisory.deliveries ?? runtime.maxDeliver + 1));
              }
            } catch {
              runtime.nats.logger.warn({ subject }, "unreadable MAX_DELIVERIES advisory");
            }
          },
        }),
      ),
      (subscription) => Effect.sync(() => subscription.unsubscribe()),
    );
    yield* Effect.promise(() => runtime.nats.connection.flush());
  });

const settleWith = (runtime: QueueRuntime, msg: JsMsg) => (outcome: WorkOutcome) =>
  Effect.gen(function* () {
    switch (outcome._tag) {
      case "Done":
        // Confirmed before the worker pulls again: the server handles a plain ack asynchronously, so
        // the next pull could be served first and a worker would hold two deliveries for a moment.
        yield* Effect.tryPromise({ try: () => msg.ackAck(), catch: jsError(`acking on ${runtime.queue}`) });
        runtime.counters.done += 1;
        return;
      case "Retry":
        if (msg.info.deliveryCount >= runtime.maxDeliver) {
          yield* deadLetterDelivery(
            runtime,
            msg,
            `still failing after ${msg.info.deliveryCount} deliveries: ${outcome.reason}`,
          );
          return;
        }
        msg.nak(outcome.delayMs);
        runtime.counters.retried += 1;
        return;
      case "Reject":
        yield* deadLetterDelivery(runtime, msg, `rejected: ${outcome.reason}`);
    }
  });

/**
 * Turns a delivery into a WorkItem, or dead-letters it when it cannot be worked on (undecodable,
 * or delivered more often than allowed because earlier consumers died without acking).
 */
const toWorkItem = <Q extends WorkQueueName>(runtime: QueueRuntime, msg: JsMsg) =>
  Effect.gen(function* () {
    if (msg.info.deliveryCount > runtime.maxDeliver) {
      yield* deadLetterDelivery(
        runtime,
        msg,
        `exhausted ${runtime.maxDeliver} deliveries without an ack (its consumers died or timed out)`,
      );
      return undefined;
    }
    const decoded = decodeEnvelope(msg.data, { accept: [QUEUE_MESSAGE_TYPE[runtime.queue]] });
    if (Either.isLeft(decoded)) {
      yield* deadLetterDelivery(runtime, msg, `undecodable: ${decoded.left.message}`);
      return undefined;
    }
    const message = decoded.right as unknown as Envelope<QueueType<Q>>;
    const item: WorkItem<Q> = {
      envelope: message,
      body: message.body as QueueBody<Q>,
      deliveryCount: msg.info.deliveryCount,
      streamSequence: msg.seq,
      working: Effect.sync(() => msg.working()),
      settle: settleWith(runtime, msg),
    };
    return item;
  });

/**
 * A step that could not reach the server (dead-lettering, say) leaves the message to come back: nak
 * it and log, rather than failing the worker over one message.
 */
const orHandBack = (runtime: QueueRuntime, msg: JsMsg) => (error: JetStreamError) =>
  Effect.sync(() => {
    runtime.nats.logger.warn(
      { queue: runtime.queue, seq: msg.seq, reason: error.message },
      "could not settle work item; it will be redelivered",
    );
    msg.nak(1_000);
  });

/** toWorkItem, handing the message back when dead-lettering it failed. */
const receive = <Q extends WorkQueueName>(runtime: QueueRuntime, msg: JsMsg) =>
  toWorkItem<Q>(runtime, msg).pipe(
    Effect.catchAll((error) => orHandBack(runtime, msg)(error).pipe(Effect.as(undefined))),
  );

export interface ConsumeWorkOptions {
  /** Items worked on at once (each worker pulls one when it is free). Default 1. */
  readonly concurrency?: number;
  /** Counters to update (default: a fresh set nobody reads). */
  readonly counters?: WorkCounters;
  /** How long one pull waits for a message before asking again (default 5 s). */
  readonly pullExpiresMs?: number;
}

/**
 * Works a queue until interrupted: each of `concurrency` workers pulls one item, runs `handler`
 * (extending the ack deadline while it runs), and applies the outcome. A handler that fails or dies
 * counts as `retry` with the error as reason.
 */
export const consumeWork = <Q extends WorkQueueName, E, R>(
  queue: Q,
  handler: (item: WorkItem<Q>) => Effect.Effect<WorkOutcome, E, R>,
  options: ConsumeWorkOptions = {},
): Effect.Effect<never, JetStreamError, Nats | Experiment | R> =>
  Effect.gen(function* () {
    const runtime = yield* openQueue(queue, options.counters ?? newWorkCounters());
    yield* sweepExhausted(runtime);
    const expires = Math.max(1_000, options.pullExpiresMs ?? 5_000);
    const keepAlive = Duration.millis(Math.max(100, runtime.ackWaitMs / 3));
    // Runs the handler; the outcome is applied afterwards, outside any interruption.
    const work = (msg: JsMsg) =>
      Effect.gen(function* () {
        const item = yield* receive<Q>(runtime, msg);
        if (item === undefined) return undefined;
        const ticker = yield* Effect.fork(
          Effect.repeat(item.working, Schedule.spaced(keepAlive)).pipe(Effect.delay(keepAlive)),
        );
        const outcome = yield* handler(item).pipe(
          Effect.sandbox,
          Effect.catchAll((cause) => {
            const error = Cause.squash(cause);
            return Effect.succeed(
              WorkOutcome.retry(`handler failed: ${error instanceof Error ? error.message : String(error)}`),
            );
          }),
          Effect.ensuring(Fiber.interrupt(ticker)),
        );
        return { item, outcome };
      });
    // Interrupting a worker (an actor draining) hands its message back at once — one still arriving
    // for a pull cut short, or one whose handler was cut short — instead of after ack_wait. Once the
    // handler has decided, the outcome is applied even if the worker is being interrupted: a Done
    // item handed back would be worked twice.
    const worker = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        const msg = yield* restore(
          Effect.tryPromise({
            try: (signal) =>
              runtime.consumer.next({ expires }).then((pulled) => {
                if (signal.aborted && pulled !== null) {
                  pulled.nak();
                  return null;
                }
                return pulled;
              }),
            catch: jsError(`pulling from ${queue}`),
          }).pipe(
            // A pull fails while the server is away; the client reconnects by itself, so wait and pull again.
            Effect.tapError((error) =>
              Effect.sync(() => runtime.nats.logger.warn({ queue, reason: error.message }, "pull failed; retrying")),
            ),
            Effect.retry(Schedule.spaced(Duration.millis(500))),
          ),
        );
        if (msg === null) return;
        const worked = yield* restore(work(msg)).pipe(Effect.onInterrupt(() => Effect.sync(() => msg.nak())));
        if (worked !== undefined) {
          yield* worked.item.settle(worked.outcome).pipe(Effect.catchAll(orHandBack(runtime, msg)));
        }
      }),
    ).pipe(Effect.forever);
    const concurrency = Math.max(1, options.concurrency ?? 1);
    return yield* Effect.all(
      Array.from({ length: concurrency }, () => worker),
      {
        concurrency: "unbounded",
      },
    ).pipe(Effect.andThen(Effect.never));
  }).pipe(Effect.scoped);

export interface WorkFetcher<Q extends WorkQueueName> {
  /**
   * Fetches up to `max` items (default 1), waiting at most `expiresMs` (default 1 s, the server's
   * minimum). Undecodable or over-delivered messages are dead-lettered and left out. A failed pull
   * (server away, missed heartbeats) is logged and returns what arrived, maybe nothing.
   */
  readonly fetch: (options?: {
    readonly max?: number;
    readonly expiresMs?: number;
  }) => Effect.Effect<ReadonlyArray<WorkItem<Q>>, JetStreamError>;
  readonly counters: WorkCounters;
}

/** The raw pull API (for the learner): fetch batches and settle each item yourself. */
export const openWorkFetcher = <Q extends WorkQueueName>(
  queue: Q,
  counters: WorkCounters = newWorkCounters(),
): Effect.Effect<WorkFetcher<Q>, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const runtime = yield* openQueue(queue, counters);
    const fetch: WorkFetcher<Q>["fetch"] = (options = {}) =>
      Effect.gen(function* () {
        const messages = yield* Effect.promise(async () => {
          const out: JsMsg[] = [];
          try {
            const batch = await runtime.consumer.fetch({
              max_messages: Math.max(1, options.max ?? 1),
              expires: Math.max(1_000, options.expiresMs ?? 1_000),
            });
            for await (const msg of batch) out.push(msg);
          } catch (error) {
            // A pull fails while the server is away or this process stalled (missed heartbeats on a
            // loaded machine): the client reconnects by itself and callers pull again, so keep what
            // arrived; a delivery cut off on the way is redelivered after ack_wait.
            runtime.nats.logger.warn(
              { queue, reason: error instanceof Error ? error.message : String(error), received: out.length },
              "fetch failed; keeping what arrived",
            );
          }
          return out;
        });
        const items: WorkItem<Q>[] = [];
        for (const msg of messages) {
          const item = yield* receive<Q>(runtime, msg);
          if (item !== undefined) items.push(item);
        }
        return items;
      });
    return { fetch, counters };
  });

/**
 * Dead-letters messages of `queue` whose last allowed delivery was lost (see sweepExhausted) until
 * the scope closes. consumeWork does this itself; a fetch-only reader (the learner) runs it beside
 * its loop.
 */
export const sweepExhaustedDeliveries = (
  queue: WorkQueueName,
  counters: WorkCounters = newWorkCounters(),
): Effect.Effect<void, JetStreamError, Nats | Experiment | Scope.Scope> =>
  openQueue(queue, counters).pipe(Effect.flatMap(sweepExhausted));

/** How many messages the dead-letter stream holds for `queue`. */
export const deadLetterCount = (queue: WorkQueueName): Effect.Effect<number, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const subject = subjects.deadLetter(queue);
    const info = yield* Effect.tryPromise({
      try: () => manager.streams.info(subjects.deadLetterStream, { subjects_filter: subject }),
      catch: jsError(`reading ${subjects.deadLetterStream}`),
    });
    return info.state.subjects?.[subject] ?? 0;
  });

export interface DeadLetterRecord {
  /** Sequence in the dead-letter stream. */
  readonly seq: number;
  readonly time: Date;
  readonly reason: string;
  readonly deliveries: number;
  /** Sequence the message had in its work stream. */
  readonly workSeq: number;
  /** The message itself, or why it could not be decoded. */
  readonly message: Either.Either<Envelope, string>;
}

/** The oldest `limit` dead letters of `queue`, with their reasons, for operators and tools. */
export const readDeadLetters = (
  queue: WorkQueueName,
  limit = 100,
): Effect.Effect<ReadonlyArray<DeadLetterRecord>, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const stream = subjects.deadLetterStream;
    const subject = subjects.deadLetter(queue);
    return yield* Effect.tryPromise({
      try: async () => {
        const { state } = await manager.streams.info(stream);
        const records: DeadLetterRecord[] = [];
        for (let seq = state.first_seq; seq <= state.last_seq && records.length < limit; seq++) {
          const stored = await manager.streams.getMessage(stream, { seq }).catch(() => null);
          if (stored === null || stored.subject !== subject) continue;
          const decoded = decodeEnvelope(stored.data);
          records.push({
            seq,
            time: stored.time,
            reason: stored.header.get("Factrl-Reason"),
            deliveries: Number(stored.header.get("Factrl-Deliveries")),
            workSeq: Number(stored.header.get("Factrl-Stream-Seq")),
            message: Either.mapLeft(decoded, (error) => error.message),
          });
        }
        return records;
      },
      catch: jsError(`reading ${stream}`),
    });
  });

/** How many messages wait in a work queue (not yet acked). */
export const pendingWork = (queue: WorkQueueName): Effect.Effect<number, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const info = yield* Effect.tryPromise({
      try: () => manager.streams.info(subjects.stream(queue)),
      catch: jsError(`reading ${subjects.stream(queue)}`),
    });
    return info.state.messages;
  });
