/**
 * Durable work on JetStream work-queue streams. A work queue is a value (`defineWorkQueue`): its name,
 * the message type it carries and where that message names its group; each is one stream read by one
 * durable pull consumer shared by every worker of that queue. Which queues exist is the user's to
 * declare (factrl's pipeline: actors/topology.ts); this file knows none.
 *
 * - Publishing awaits the stream's ack and retries through outages with the same msgID, so a message
 *   is stored exactly once even when a publish is repeated (within the duplicate window, and — after a
 *   broker restart — only while an earlier copy is still stored: see the last point).
 * - Fetching is demand-driven (a worker pulls only when it has room), so slow workers apply
 *   backpressure instead of buffering.
 * - Redelivery is bounded by the workers: a message gets `maxDeliver` attempts (the consumer's
 *   description carries the number). A message that is rejected, still failing on its last attempt,
 *   undecodable, or delivered more often than allowed (its consumers died without acking) is
 *   published to `factrl.<exp>.deadletter.<queue>` with the reason and, when it names one, its group
 *   id in headers — a copy cut to fit under max_payload when the original is too big to carry headers —
 *   then acked (which removes it from the work stream) and counted. The server itself never gives up
 *   on a message (max_deliver unlimited): whichever worker receives it after its last attempt
 *   dead-letters it, so a lost dead-lettering delivery simply comes again, and the server never moves
 *   the consumer's ack floor past a message that was not acked.
 * - Acked work does not stay after a broker crash. nats-server (2.9 seen here), killed and restarted
 *   on the same store, can bring back acked messages: at or below the consumer's ack floor, or above
 *   it behind a delivery still unacked at the crash (neither is ever delivered again), or past the
 *   last delivery its consumer state recorded (delivered again). Because of the point above, a stored
 *   message at or below the ack floor was acked: such messages are deleted, counted and logged by
 *   ensureWorkQueues, and by each worker on its first pull from a server it has not seen (a restarted
 *   server has a new id) and every 2 s after, until the floor passes what was delivered before.
 *   A message delivered again is a duplicate that its reader recognises by its group id: msgID
 *   de-duplication remembers, after a restart, only the messages still stored.
 */
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  DeliverPolicy,
  type JsMsg,
  type MsgRequest,
  PubHeaders,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type MsgHdrs, nanos, headers as natsHeaders } from "@nats-io/transport-node";
import { Cause, Data, Duration, Effect, Either, Fiber, Schedule } from "effect";
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  envelope,
  type MessageTooLargeError,
  type MessageType,
  payloadRoom,
  unpackUnchecked,
} from "./codec.ts";
import { isPermissionViolation, Nats, type NatsService } from "./connection.ts";
import { Experiment, type ExperimentService } from "./experiment.ts";
import { type StreamSettings, upsertStream } from "./streams.ts";
import { type ExperimentSubjects, validateQueueName } from "./subjects.ts";

/**
 * A durable work queue: subject `factrl.<exp>.<name>`, stream `factrl_<exp>_<name>`, consumer
 * `<name>_workers`, dead letters on `factrl.<exp>.deadletter.<name>`. Every message on it is of
 * type `message`.
 */
export interface WorkQueue<A> {
  readonly name: string;
  readonly message: MessageType<A>;
  /**
   * Where a body keeps the id of the group it carries (`["rollout", "group", "groupId"]`). A dead
   * letter names that group in its `Factrl-Group` header, read from the raw bytes so that a message
   * failing to decode still says which group it was. Absent: dead letters name no group.
   */
  readonly groupIdPath?: readonly string[];
}

/** Defines a work queue; throws InvalidNameError for a name that is not a token or is reserved. */
export const defineWorkQueue = <A>(definition: WorkQueue<A>): WorkQueue<A> => ({
  ...definition,
  name: validateQueueName(definition.name),
});

/** A group id fit for a header: printable ASCII without spaces, at most 128 characters. */
const GROUP_ID = /^[\x21-\x7e]{1,128}$/;

/**
 * The group id a message of `queue` names, read from its raw bytes so that a message that fails to
 * decode (a bad field elsewhere, an unknown version) still tells which group it was; undefined when
 * the queue's messages name none, or the bytes are not msgpack or hold no such string.
 */
const groupIdIn = (queue: WorkQueue<unknown>, data: Uint8Array): string | undefined => {
  if (queue.groupIdPath === undefined) return undefined;
  let node: unknown = (unpackUnchecked(data) as { body?: unknown } | undefined)?.body;
  for (const key of queue.groupIdPath) {
    node = typeof node === "object" && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  }
  return typeof node === "string" && GROUP_ID.test(node) ? node : undefined;
};

export class JetStreamError extends Data.TaggedError("JetStreamError")<{
  readonly operation: string;
  readonly reason: string;
  /** The server refused this user the subject (its permissions): permanent, not retried. */
  readonly denied?: boolean;
}> {
  override get message(): string {
    return `JetStream ${this.operation} failed: ${this.reason}`;
  }
}

const jsError = (operation: string) => (error: unknown) =>
  new JetStreamError({
    operation,
    reason: error instanceof Error ? error.message : String(error),
    denied: isPermissionViolation(error),
  });

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

/** JetStream 2.9 consumers have no metadata: the attempts allowed travel in the description, for every reader. */
const describeAttempts = (maxDeliver: number) => `factrl work queue: dead-lettered after ${maxDeliver} deliveries`;
const ATTEMPTS_IN_DESCRIPTION = /dead-lettered after (\d+) deliveries/;

/** Attempts a message of this consumer gets before it is dead-lettered. */
const attemptsAllowed = (config: Partial<ConsumerConfig>): number => {
  const described = ATTEMPTS_IN_DESCRIPTION.exec(config.description ?? "");
  if (described) return Number(described[1]);
  // A consumer made by an older factrl: its max_deliver was the attempts plus the dead-lettering delivery.
  const serverLimit = config.max_deliver ?? -1;
  return serverLimit > 1 ? serverLimit - 1 : Number.POSITIVE_INFINITY;
};

export interface WorkQueuesReport {
  /** Acked messages found below each consumer's ack floor (brought back by a broker crash) and deleted. */
  readonly strandedRemoved: Readonly<Record<string, number>>;
}

/**
 * Creates (or updates) the streams of `queues`, their durable consumers and the dead-letter stream of
 * the experiment, then removes the acked work a broker crash left in those streams. Idempotent:
 * every actor may call it at start. A queue listed twice is made once.
 */
export const ensureWorkQueues = (
  queues: readonly WorkQueue<unknown>[],
  settings: WorkQueueSettings = {},
): Effect.Effect<WorkQueuesReport, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { manager } = nats;
    const { subjects } = yield* Experiment;
    const s = { ...DEFAULTS, ...settings };
    const upsert = (stream: StreamSettings) =>
      Effect.tryPromise({
        try: () => upsertStream(manager, stream),
        catch: jsError(`creating stream ${stream.name}`),
      });
    const names = [...new Set(queues.map((queue) => queue.name))];
    for (const queue of names) {
      yield* upsert({
        name: subjects.stream(queue),
        subjects: [subjects.work(queue)],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        duplicate_window: nanos(s.duplicateWindowMs),
        num_replicas: nats.replicas,
      });
      const consumer = {
        durable_name: subjects.consumer(queue),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(s.ackWaitMs),
        // Unlimited: the workers dead-letter after maxDeliver attempts (see the top of this file).
        max_deliver: -1,
        description: describeAttempts(s.maxDeliver),
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
            description: consumer.description,
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
      num_replicas: nats.replicas,
    });
    const strandedRemoved: Record<string, number> = {};
    for (const queue of names) strandedRemoved[queue] = (yield* removeStranded(nats, subjects, queue)).removed;
    return { strandedRemoved };
  });

/** The server's answer to deleting a message that is already gone (another process deleted it first). */
const isNoMessage = (error: unknown) =>
  /no message found/i.test(error instanceof Error ? error.message : String(error));

/** What one look for stranded work found. */
interface StrandedCheck {
  /** Messages this look deleted (one another process deleted first is not counted). */
  readonly removed: number;
  /** The consumer's ack floor and last delivered stream sequence at the look. */
  readonly ackFloor: number;
  readonly delivered: number;
}

/**
 * Deletes the acked work a broker crash brought back that can be told apart now: messages still
 * stored at or below the consumer's ack floor (the server never moves the floor past an unacked
 * message, since it never gives up on one). Acked messages brought back above the floor (between
 * deliveries still unacked at the crash) fall below it as those are settled: look again until the
 * floor reaches `delivered` (see removeStrandedAfterRestart). Logs once per look that removes any.
 */
const removeStranded = (
  nats: NatsService,
  subjects: ExperimentSubjects,
  queue: string,
): Effect.Effect<StrandedCheck, JetStreamError> => {
  const stream = subjects.stream(queue);
  return Effect.tryPromise({
    try: async () => {
      const [consumer, { state }] = await Promise.all([
        nats.manager.consumers.info(stream, subjects.consumer(queue)),
        nats.manager.streams.info(stream),
      ]);
      const ackFloor = consumer.ack_floor.stream_seq;
      const delivered = consumer.delivered.stream_seq;
      const found = { removed: 0, ackFloor, delivered };
      if (state.messages === 0 || state.first_seq > ackFloor) return found;
      if (delivered > state.last_seq) {
        // The stream lost its tail but the consumer's state did not: what sits below the floor may be
        // work published since, which the consumer will never deliver. Deleting it would hide that.
        nats.logger.error(
          { queue, consumerAt: delivered, streamEndsAt: state.last_seq },
          "work stream lost messages its consumer had passed: work published at sequences up to consumerAt is never delivered; recreate the experiment's streams (--fresh)",
        );
        return found;
      }
      let removed = 0;
      for (let seq = state.first_seq; seq <= ackFloor; ) {
        // The next stored message from seq on: one request per stranded message, none per gap.
        const query = { seq, next_by_subj: subjects.work(queue) } as unknown as MsgRequest;
        const stored = await nats.manager.streams.getMessage(stream, query);
        if (stored === null || stored.seq > ackFloor) break;
        const deleted = await nats.manager.streams
          .deleteMessage(stream, stored.seq, false)
          .catch((error: unknown) => (isNoMessage(error) ? false : Promise.reject(error)));
        if (deleted) removed += 1;
        seq = stored.seq + 1;
      }
      if (removed > 0) {
        nats.logger.warn(
          { queue, removed, ackFloor },
          "removed acked work that a broker restart brought back below the consumer's ack floor",
        );
      }
      return { ...found, removed };
    },
    catch: jsError(`removing acked work left in ${stream}`),
  });
};

export interface PublishWorkOptions {
  /** De-duplication id; defaults to the envelope id. Pass a stable id (the group id) for idempotent re-sends. */
  readonly msgId?: string;
  /** How long to keep retrying through a server outage before failing (default 60 s). */
  readonly retryForMs?: number;
}

/**
 * Headers carrying a JetStream msgID (`Nats-Msg-Id`), for publishes whose size is checked against
 * them (payloadRoom): the client's `msgID` option would add the header after the check.
 */
const msgIdHeaders = (msgId: string): MsgHdrs => {
  const headers = natsHeaders();
  headers.set(PubHeaders.MsgIdHdr, msgId);
  return headers;
};

/** Publishes one work item and waits for the stream to store it; `duplicate` means it was already there. */
export const publishWork = <A>(
  queue: WorkQueue<A>,
  body: NoInfer<A>,
  options: PublishWorkOptions = {},
): Effect.Effect<
  { readonly seq: number; readonly duplicate: boolean },
  MessageTooLargeError | JetStreamError,
  Nats | Experiment
> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { subjects, sender } = yield* Experiment;
    const message = envelope(queue.message, body, {
      experiment: subjects.experiment,
      sender,
      ...(options.msgId !== undefined ? { id: options.msgId } : {}),
    });
    // The headers travel with the payload and count toward max_payload: the size check sees the very
    // headers sent. A message that fits alone but not with them would be refused by the client on
    // every retry, and look like an outage for retryForMs.
    const headers = msgIdHeaders(message.id);
    const bytes = yield* Effect.try({
      try: () => encodeEnvelope(message, nats.maxPayload, headers),
      catch: (error) => error as MessageTooLargeError,
    });
    const subject = subjects.work(queue.name);
    const retryFor = Duration.millis(options.retryForMs ?? 60_000);
    const ack = yield* Effect.tryPromise({
      try: () => nats.jetstream.publish(subject, bytes, { headers, timeout: 5_000 }),
      catch: (error) => {
        const failure = jsError(`publish to ${subject}`)(error);
        const hint = /no responders/i.test(`${failure.reason} ${(error as Error)?.cause ?? ""}`)
          ? " (no stream stores this subject, or JetStream is restarting: did ensureWorkQueues run?)"
          : "";
        return new JetStreamError({ ...failure, reason: failure.reason + hint });
      },
    }).pipe(
      Effect.retry({
        schedule: Schedule.exponential(Duration.millis(100)).pipe(
          Schedule.either(Schedule.spaced(Duration.seconds(2))),
          Schedule.upTo(retryFor),
        ),
        while: (error) => !error.denied,
      }),
    );
    return { seq: ack.seq, duplicate: ack.duplicate };
  });

/** One item of a publishWorkAll batch: its body and (for idempotent re-sends) its msgID. */
export interface WorkToPublish<A> {
  readonly body: A;
  readonly msgId?: string;
}

/**
 * Publishes several work items at once and returns when the stream has stored every one (acks in
 * the items' order): the acks are awaited together, so a batch costs about one round trip, not one
 * per item. Each item retries like publishWork. It fails when any item fails; items already stored
 * stay stored, and re-sending them with the same msgID is a no-op.
 */
export const publishWorkAll = <A>(
  queue: WorkQueue<A>,
  items: ReadonlyArray<WorkToPublish<NoInfer<A>>>,
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
export interface WorkItem<A> {
  readonly envelope: Envelope<A>;
  readonly body: A;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  readonly streamSequence: number;
  /** Tells the server this item is still being worked on (resets its ack timer). */
  readonly working: Effect.Effect<void>;
  /** Applies an outcome: ack, nak with delay, or dead-letter (see WorkOutcome). */
  readonly settle: (outcome: WorkOutcome) => Effect.Effect<void, JetStreamError>;
}

interface QueueRuntime<A = unknown> {
  readonly nats: NatsService;
  readonly experiment: ExperimentService;
  readonly queue: WorkQueue<A>;
  readonly consumer: Consumer;
  /** Attempts allowed before dead-lettering. */
  readonly maxDeliver: number;
  readonly ackWaitMs: number;
  readonly counters: WorkCounters;
  /** Looks for stranded work: see removeStrandedAfterRestart. */
  readonly strandedCheck: {
    /** The server of the last look (a restarted server has a new id). */
    serverId: string | undefined;
    /** Look again (not before `nextAt`) until the ack floor reaches this: acked work may still hide above it. */
    until: number | undefined;
    nextAt: number;
    running: boolean;
  };
}

const openQueue = <A>(queue: WorkQueue<A>, counters: WorkCounters) =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const experiment = yield* Experiment;
    const stream = experiment.subjects.stream(queue.name);
    const name = experiment.subjects.consumer(queue.name);
    const consumer = yield* Effect.tryPromise({
      try: () => nats.jetstream.consumers.get(stream, name),
      catch: jsError(`opening consumer ${name} on ${stream} (did ensureWorkQueues run?)`),
    });
    const info = yield* Effect.tryPromise({ try: () => consumer.info(true), catch: jsError(`reading ${name}`) });
    const runtime: QueueRuntime<A> = {
      nats,
      experiment,
      queue,
      consumer,
      maxDeliver: attemptsAllowed(info.config),
      ackWaitMs: (info.config.ack_wait ?? nanos(DEFAULTS.ackWaitMs)) / 1_000_000,
      counters,
      strandedCheck: { serverId: undefined, until: undefined, nextAt: 0, running: false },
    };
    return runtime;
  });

/** How often to look again for acked work still above the ack floor after a restart. */
const LOOK_AGAIN_EVERY_MS = 2_000;

/**
 * Before a pull: when the server is not the one last looked at (the first pull, or a restarted
 * server), removes the acked work it may have brought back (removeStranded), and looks again every
 * LOOK_AGAIN_EVERY_MS until the ack floor has passed every message delivered before the restart.
 * Otherwise it costs a field read. A look that fails is logged and tried before the next pull.
 */
const removeStrandedAfterRestart = (runtime: QueueRuntime): Effect.Effect<void> =>
  Effect.suspend(() => {
    const check = runtime.strandedCheck;
    const serverId = runtime.nats.connection.info?.server_id;
    const newServer = serverId !== undefined && serverId !== check.serverId;
    const lookAgain = check.until !== undefined && Date.now() >= check.nextAt;
    if (check.running || !(newServer || lookAgain)) return Effect.void;
    check.running = true;
    return removeStranded(runtime.nats, runtime.experiment.subjects, runtime.queue.name).pipe(
      Effect.tap((found) =>
        Effect.sync(() => {
          if (newServer) {
            check.serverId = serverId;
            check.until = found.delivered;
          }
          if (check.until !== undefined && found.ackFloor >= check.until) check.until = undefined;
          check.nextAt = Date.now() + LOOK_AGAIN_EVERY_MS;
        }),
      ),
      Effect.catchAll((error) =>
        Effect.sync(() =>
          runtime.nats.logger.warn({ queue: runtime.queue.name, reason: error.message }, "stranded-work check failed"),
        ),
      ),
      Effect.ensuring(
        Effect.sync(() => {
          check.running = false;
        }),
      ),
    );
  });

interface DeadLetter {
  readonly data: Uint8Array;
  readonly seq: number;
  readonly deliveries: number;
}

/** A header value: one line, at most `maxChars` characters. */
const headerValue = (text: string, maxChars: number) => text.slice(0, maxChars).replace(/[\r\n]+/g, " ");

/**
 * Publishes a work item to the dead-letter subject with the reason (and the group it names), then
 * `remove`s it from the work stream, logs and counts it. A message too big to carry the headers is
 * dead-lettered as a copy of its first bytes, with headers saying so and giving its size. The msgID
 * makes dead-lettering the same stream message twice (after a crash, or by two workers) a no-op.
 */
const deadLetter = (runtime: QueueRuntime, letter: DeadLetter, reason: string, remove: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const { subjects } = runtime.experiment;
    const subject = subjects.deadLetter(runtime.queue.name);
    const groupId = groupIdIn(runtime.queue, letter.data);
    const h = msgIdHeaders(`dl-${subjects.stream(runtime.queue.name)}-${letter.seq}`);
    h.set("Factrl-Reason", headerValue(reason, 1_000));
    h.set("Factrl-Queue", runtime.queue.name);
    h.set("Factrl-Stream-Seq", String(letter.seq));
    h.set("Factrl-Deliveries", String(letter.deliveries));
    if (groupId !== undefined) h.set("Factrl-Group", groupId);
    // NATS counts the headers in max_payload: what does not fit with them is cut to fit with them
    // (and the two headers saying so).
    const truncated = letter.data.byteLength > payloadRoom(runtime.nats.maxPayload, h);
    if (truncated) {
      h.set("Factrl-Truncated", "true");
      h.set("Factrl-Original-Bytes", String(letter.data.byteLength));
    }
    const data = truncated ? letter.data.subarray(0, payloadRoom(runtime.nats.maxPayload, h)) : letter.data;
    const ack = yield* Effect.tryPromise({
      try: () => runtime.nats.jetstream.publish(subject, data, { headers: h }),
      catch: jsError(`dead-lettering to ${subject}`),
    });
    yield* remove;
    if (ack.duplicate) return;
    runtime.counters.deadLettered += 1;
    runtime.nats.logger.warn(
      {
        queue: runtime.queue.name,
        seq: letter.seq,
        deliveries: letter.deliveries,
        group: groupId,
        reason: headerValue(reason, 1_000),
        ...(truncated ? { truncatedFrom: letter.data.byteLength } : {}),
      },
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

const settleWith = (runtime: QueueRuntime, msg: JsMsg) => (outcome: WorkOutcome) =>
  Effect.gen(function* () {
    switch (outcome._tag) {
      case "Done":
        // Confirmed before the worker pulls again: the server handles a plain ack asynchronously, so
        // the next pull could be served first and a worker would hold two deliveries for a moment.
        yield* Effect.tryPromise({ try: () => msg.ackAck(), catch: jsError(`acking on ${runtime.queue.name}`) });
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
const toWorkItem = <A>(runtime: QueueRuntime<A>, msg: JsMsg) =>
  Effect.gen(function* () {
    if (msg.info.deliveryCount > runtime.maxDeliver) {
      yield* deadLetterDelivery(
        runtime,
        msg,
        `exhausted ${runtime.maxDeliver} deliveries without an ack (its consumers died or timed out)`,
      );
      return undefined;
    }
    const decoded = decodeEnvelope(msg.data, { accept: [runtime.queue.message] });
    if (Either.isLeft(decoded)) {
      yield* deadLetterDelivery(runtime, msg, `undecodable: ${decoded.left.message}`);
      return undefined;
    }
    const message = decoded.right;
    const item: WorkItem<A> = {
      envelope: message,
      body: message.body,
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
      { queue: runtime.queue.name, seq: msg.seq, reason: error.message },
      "could not settle work item; it will be redelivered",
    );
    msg.nak(1_000);
  });

/** toWorkItem, handing the message back when dead-lettering it failed. */
const receive = <A>(runtime: QueueRuntime<A>, msg: JsMsg) =>
  toWorkItem(runtime, msg).pipe(Effect.catchAll((error) => orHandBack(runtime, msg)(error).pipe(Effect.as(undefined))));

/**
 * How often a worker tells the server a delivery is still being worked on: a third of the consumer's
 * ack wait, so two reminders can be late before the server redelivers (a fixed 5 s against a shorter
 * ack wait let slow batches — big messages, a loaded machine — be redelivered while in hand, and each
 * redelivery counted towards dead-lettering).
 */
const keepAliveEvery = (runtime: QueueRuntime) => Duration.millis(Math.max(100, runtime.ackWaitMs / 3));

/** Runs `work` while reminding the server, every keepAliveEvery, that `items()` are still in progress. */
const keepingAlive =
  (runtime: QueueRuntime) =>
  <B, E, R>(items: () => ReadonlyArray<WorkItem<unknown>>, work: Effect.Effect<B, E, R>) =>
    Effect.gen(function* () {
      const every = keepAliveEvery(runtime);
      const ticker = yield* Effect.fork(
        Effect.repeat(
          Effect.suspend(() => Effect.forEach(items(), (item) => item.working, { discard: true })),
          Schedule.spaced(every),
        ).pipe(Effect.delay(every)),
      );
      return yield* work.pipe(Effect.ensuring(Fiber.interrupt(ticker)));
    });

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
export const consumeWork = <A, E, R>(
  queue: WorkQueue<A>,
  handler: (item: WorkItem<A>) => Effect.Effect<WorkOutcome, E, R>,
  options: ConsumeWorkOptions = {},
): Effect.Effect<never, JetStreamError, Nats | Experiment | R> =>
  Effect.gen(function* () {
    const runtime = yield* openQueue(queue, options.counters ?? newWorkCounters());
    const expires = Math.max(1_000, options.pullExpiresMs ?? 5_000);
    const alive = keepingAlive(runtime);
    // Runs the handler; the outcome is applied afterwards, outside any interruption.
    const work = (msg: JsMsg) =>
      Effect.gen(function* () {
        const item = yield* receive(runtime, msg);
        if (item === undefined) return undefined;
        const outcome = yield* alive(
          () => [item],
          handler(item).pipe(
            Effect.sandbox,
            Effect.catchAll((cause) => {
              const error = Cause.squash(cause);
              return Effect.succeed(
                WorkOutcome.retry(`handler failed: ${error instanceof Error ? error.message : String(error)}`),
              );
            }),
          ),
        );
        return { item, outcome };
      });
    // Interrupting a worker (an actor draining) hands its message back at once — one still arriving
    // for a pull cut short, or one whose handler was cut short — instead of after ack_wait. Once the
    // handler has decided, the outcome is applied even if the worker is being interrupted: a Done
    // item handed back would be worked twice.
    const worker = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        yield* restore(removeStrandedAfterRestart(runtime));
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
            catch: jsError(`pulling from ${queue.name}`),
          }).pipe(
            // A pull fails while the server is away; the client reconnects by itself, so wait and pull again.
            // A pull the server refuses this user (its permissions) fails the consumer: waiting cannot help.
            Effect.tapError((error) =>
              Effect.sync(() =>
                runtime.nats.logger.warn({ queue: queue.name, reason: error.message }, "pull failed; retrying"),
              ),
            ),
            Effect.retry({ schedule: Schedule.spaced(Duration.millis(500)), while: (error) => !error.denied }),
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

export interface WorkFetcher<A> {
  /**
   * Fetches up to `max` items (default 1), waiting at most `expiresMs` (default 1 s, the server's
   * minimum). Undecodable or over-delivered messages are dead-lettered and left out. A failed pull
   * (server away, missed heartbeats) is logged and returns what arrived, maybe nothing.
   */
  readonly fetch: (options?: {
    readonly max?: number;
    readonly expiresMs?: number;
  }) => Effect.Effect<ReadonlyArray<WorkItem<A>>, JetStreamError>;
  /**
   * Runs `work` while telling the server that the items `items()` returns (read at each reminder) are
   * still being worked on, every third of the consumer's ack wait, so they are not redelivered meanwhile.
   */
  readonly keepingAlive: <B, E, R>(
    items: () => ReadonlyArray<WorkItem<A>>,
    work: Effect.Effect<B, E, R>,
  ) => Effect.Effect<B, E, R>;
  readonly counters: WorkCounters;
}

/** The raw pull API (for the learner): fetch batches and settle each item yourself. */
export const openWorkFetcher = <A>(
  queue: WorkQueue<A>,
  counters: WorkCounters = newWorkCounters(),
): Effect.Effect<WorkFetcher<A>, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const runtime = yield* openQueue(queue, counters);
    const fetch: WorkFetcher<A>["fetch"] = (options = {}) =>
      Effect.gen(function* () {
        yield* removeStrandedAfterRestart(runtime);
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
              {
                queue: queue.name,
                reason: error instanceof Error ? error.message : String(error),
                received: out.length,
              },
              "fetch failed; keeping what arrived",
            );
          }
          return out;
        });
        const items: WorkItem<A>[] = [];
        for (const msg of messages) {
          const item = yield* receive(runtime, msg);
          if (item !== undefined) items.push(item);
        }
        return items;
      });
    return { fetch, keepingAlive: keepingAlive(runtime), counters };
  });

/** How many messages the dead-letter stream holds for `queue`. */
export const deadLetterCount = (queue: WorkQueue<unknown>): Effect.Effect<number, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const subject = subjects.deadLetter(queue.name);
    const info = yield* Effect.tryPromise({
      try: () => manager.streams.info(subjects.deadLetterStream, { subjects_filter: subject }),
      catch: jsError(`reading ${subjects.deadLetterStream}`),
    });
    return info.state.subjects?.[subject] ?? 0;
  });

export interface DeadLetterRecord<A> {
  /** Sequence in the dead-letter stream. */
  readonly seq: number;
  readonly time: Date;
  readonly reason: string;
  readonly deliveries: number;
  /** Sequence the message had in its work stream. */
  readonly workSeq: number;
  /** The group the message named, when it named one. */
  readonly groupId: string | undefined;
  /** The original's size when only its first bytes were kept (it was too big to carry the headers). */
  readonly truncatedFrom: number | undefined;
  /** The message itself, or why it could not be decoded. */
  readonly message: Either.Either<Envelope<A>, string>;
}

/** The oldest `limit` dead letters of `queue`, with their reasons, for operators and tools. */
export const readDeadLetters = <A>(
  queue: WorkQueue<A>,
  limit = 100,
): Effect.Effect<ReadonlyArray<DeadLetterRecord<A>>, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const stream = subjects.deadLetterStream;
    const subject = subjects.deadLetter(queue.name);
    const accept = [queue.message];
    return yield* Effect.tryPromise({
      try: async () => {
        const { state } = await manager.streams.info(stream);
        const records: DeadLetterRecord<A>[] = [];
        for (let seq = state.first_seq; seq <= state.last_seq && records.length < limit; seq++) {
          const stored = await manager.streams.getMessage(stream, { seq }).catch(() => null);
          if (stored === null || stored.subject !== subject) continue;
          const truncatedFrom = stored.header.has("Factrl-Truncated")
            ? Number(stored.header.get("Factrl-Original-Bytes"))
            : undefined;
          records.push({
            seq,
            time: stored.time,
            reason: stored.header.get("Factrl-Reason"),
            deliveries: Number(stored.header.get("Factrl-Deliveries")),
            workSeq: Number(stored.header.get("Factrl-Stream-Seq")),
            groupId: stored.header.get("Factrl-Group") || undefined,
            truncatedFrom,
            message:
              truncatedFrom === undefined
                ? Either.mapLeft(decodeEnvelope(stored.data, { accept }), (error) => error.message)
                : Either.left(`only the first ${stored.data.byteLength} of ${truncatedFrom} bytes were kept`),
          });
        }
        return records;
      },
      catch: jsError(`reading ${stream}`),
    });
  });

export interface DeadLetteredGroups {
  /** The group ids that dead letters of the queues name, in stream order (a group dead-lettered twice, twice). */
  readonly groupIds: ReadonlyArray<string>;
  /** The last dead-letter stream sequence read: pass it as `afterSeq` to read only newer ones next time. */
  readonly lastSeq: number;
}

/**
 * The group ids named by the dead letters of `queues` stored after `afterSeq`. Dead letters that name
 * no group (garbage), and those of other queues (another role's, whose group ids mean something
 * else), are skipped. Read incrementally, a reader (the curator) pays once per dead letter.
 */
export const readDeadLetteredGroups = (
  queues: readonly WorkQueue<unknown>[],
  afterSeq = 0,
): Effect.Effect<DeadLetteredGroups, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const stream = subjects.deadLetterStream;
    const deadLetterSubjects = new Set(queues.map((queue) => subjects.deadLetter(queue.name)));
    return yield* Effect.tryPromise({
      try: async () => {
        const { state } = await manager.streams.info(stream);
        const groupIds: string[] = [];
        for (let seq = Math.max(afterSeq + 1, state.first_seq); seq <= state.last_seq; seq++) {
          const stored = await manager.streams.getMessage(stream, { seq });
          if (stored === null || !deadLetterSubjects.has(stored.subject)) continue;
          const groupId = stored.header.get("Factrl-Group");
          if (groupId) groupIds.push(groupId);
        }
        return { groupIds, lastSeq: Math.max(afterSeq, state.last_seq) };
      },
      catch: jsError(`reading ${stream}`),
    });
  });

/** How many messages wait in a work queue (not yet acked). */
export const pendingWork = (queue: WorkQueue<unknown>): Effect.Effect<number, JetStreamError, Nats | Experiment> =>
  Effect.gen(function* () {
    const { manager } = yield* Nats;
    const { subjects } = yield* Experiment;
    const stream = subjects.stream(queue.name);
    const info = yield* Effect.tryPromise({
      try: () => manager.streams.info(stream),
      catch: jsError(`reading ${stream}`),
    });
    return info.state.messages;
  });
