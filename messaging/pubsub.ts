/**
 * Core NATS messaging for what may be lost (metrics, heartbeats) and for control request/reply.
 * Core publishes made while disconnected are dropped silently by the client: never send work here.
 *
 * A subscription is a callback feeding an Effect Queue (not an async iterator, which cannot be
 * interrupted on shutdown); it is made and flushed before `subscribe` returns, so nothing sent after
 * that is missed. Every delivery is decoded and validated; a bad one is logged with its subject and
 * reason, counted by kind, and dropped, and the subscription keeps serving.
 */
import type { Msg } from "@nats-io/transport-node";
import { Data, Effect, Either, Queue, Runtime, type Scope } from "effect";
import {
  type DecodeError,
  type DecodeFailureKind,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  envelope,
  MessageTooLargeError,
  type MessageType,
} from "./codec.ts";
import { Nats, type NatsService } from "./connection.ts";
import { Experiment } from "./experiment.ts";
import { type ControlReply, ControlReplyMessage, type ControlRequest, ControlRequestMessage } from "./messages.ts";

/**
 * A publisher for one subject and message type, with its services resolved once: the call per
 * message is cheap (≈ encode + client publish). Fire-and-forget on core NATS (metrics, heartbeats):
 * may be lost while disconnected. Fails before sending a message over the size limit.
 */
export const makePublisher = <A>(
  subject: string,
  type: MessageType<A>,
): Effect.Effect<(body: A) => Effect.Effect<void, MessageTooLargeError>, never, Nats | Experiment> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { subjects, sender } = yield* Experiment;
    const meta = { experiment: subjects.experiment, sender };
    return (body) =>
      Effect.suspend(() => {
        try {
          nats.connection.publish(subject, encodeEnvelope(envelope(type, body, meta), nats.maxPayload));
          return Effect.void;
        } catch (error) {
          return error instanceof MessageTooLargeError ? Effect.fail(error) : Effect.die(error);
        }
      });
  });

/** Publishes one message (see makePublisher; use that for a stream of messages). */
export const publishMessage = <A>(
  subject: string,
  type: MessageType<A>,
  body: NoInfer<A>,
): Effect.Effect<void, MessageTooLargeError, Nats | Experiment> =>
  makePublisher(subject, type).pipe(Effect.flatMap((publish) => publish(body)));

/** What a subscription saw; read it for metrics and tests. */
export interface ReceiveCounters {
  accepted: number;
  rejected: number;
  /** Accepted but dropped because the consumer fell `buffer` messages behind. */
  dropped: number;
  readonly rejectedByKind: Partial<Record<DecodeFailureKind, number>>;
  /** Errors the server reported on the subscription itself (a permission refused, a slow consumer). */
  subscriptionErrors: number;
}

export const newReceiveCounters = (): ReceiveCounters => ({
  accepted: 0,
  rejected: 0,
  dropped: 0,
  rejectedByKind: {},
  subscriptionErrors: 0,
});

/** Counts and logs an error reported on a subscription (with its subject), at most ~10 lines then every power of ten. */
function recordSubscriptionError(nats: NatsService, counters: ReceiveCounters, subject: string, error: Error) {
  counters.subscriptionErrors += 1;
  const count = counters.subscriptionErrors;
  if (count <= 10 || Number.isInteger(Math.log10(count))) {
    nats.logger.warn({ subject, reason: error.message, count }, "subscription error");
  }
}

/** Logs a rejection, at most ~10 lines per kind then every power of ten, so a flood cannot drown the log. */
export function recordRejection(nats: NatsService, counters: ReceiveCounters, subject: string, error: DecodeError) {
  counters.rejected += 1;
  const count = (counters.rejectedByKind[error.kind] ?? 0) + 1;
  counters.rejectedByKind[error.kind] = count;
  if (count <= 10 || Number.isInteger(Math.log10(count))) {
    nats.logger.warn({ subject, kind: error.kind, reason: error.reason, count }, "rejected message");
  }
}

export interface TypedSubscription<A> {
  readonly subject: string;
  /** Valid messages, in arrival order. Take with Queue.take or Stream.fromQueue. */
  readonly messages: Queue.Dequeue<Envelope<A>>;
  readonly counters: ReceiveCounters;
}

export interface SubscribeOptions {
  /** Share the subject's messages among subscribers with the same queue group name. */
  readonly queueGroup?: string;
  /** Messages kept for a slow reader before newer ones are dropped (counted); default 10 000. */
  readonly buffer?: number;
}

/**
 * A callback subscription, unsubscribed when the scope closes, returning once the server has it
 * (flushed): messages sent right after are not missed.
 */
const subscribeFlushed = (
  nats: NatsService,
  subject: string,
  callback: (error: Error | null, msg: Msg) => void,
  queueGroup: string | undefined,
) =>
  Effect.gen(function* () {
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        nats.connection.subscribe(subject, { callback, ...(queueGroup !== undefined ? { queue: queueGroup } : {}) }),
      ),
      (sub) => Effect.sync(() => sub.unsubscribe()),
    );
    yield* Effect.promise(() => nats.connection.flush());
  });

/**
 * Subscribes to `subject` (wildcards allowed) for messages of the `accept`ed types. Scoped:
 * unsubscribes when the scope closes. Returns once the server has the subscription.
 */
export const subscribe = <A>(
  subject: string,
  accept: readonly MessageType<A>[],
  options: SubscribeOptions = {},
): Effect.Effect<TypedSubscription<A>, never, Nats | Scope.Scope> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const messages = yield* Effect.acquireRelease(Queue.dropping<Envelope<A>>(options.buffer ?? 10_000), (queue) =>
      Queue.shutdown(queue),
    );
    const counters = newReceiveCounters();
    const decodeOptions = { accept, maxBytes: nats.maxPayload };
    const onMessage = (error: Error | null, msg: Msg) => {
      if (error !== null) {
        recordSubscriptionError(nats, counters, subject, error);
        return;
      }
      const decoded = decodeEnvelope(msg.data, decodeOptions);
      if (Either.isLeft(decoded)) {
        recordRejection(nats, counters, msg.subject, decoded.left);
        return;
      }
      counters.accepted += 1;
      if (!Queue.unsafeOffer(messages, decoded.right)) counters.dropped += 1;
    };
    yield* subscribeFlushed(nats, subject, onMessage, options.queueGroup);
    return { subject, messages, counters };
  });

export class ControlRequestError extends Data.TaggedError("ControlRequestError")<{
  readonly subject: string;
  readonly kind: "no-responders" | "timeout" | "bad-reply" | "too-large" | "other";
  readonly reason: string;
}> {
  override get message(): string {
    return `request to ${this.subject} failed (${this.kind}): ${this.reason}`;
  }
}

/** Sends a request of message type `type` and waits for one reply of one of the `accept`ed types. */
export const requestMessage = <Q, A>(
  subject: string,
  type: MessageType<Q>,
  request: NoInfer<Q>,
  accept: readonly MessageType<A>[],
  timeoutMs = 5_000,
): Effect.Effect<Envelope<A>, ControlRequestError, Nats | Experiment> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { subjects, sender } = yield* Experiment;
    const message = envelope(type, request, { experiment: subjects.experiment, sender });
    const bytes = yield* Effect.try({
      try: () => encodeEnvelope(message, nats.maxPayload),
      catch: (error) => new ControlRequestError({ subject, kind: "too-large", reason: (error as Error).message }),
    });
    const reply = yield* Effect.tryPromise({
      try: () => nats.connection.request(subject, bytes, { timeout: timeoutMs }),
      catch: (error) => {
        const text =
          error instanceof Error
            ? `${error.message} ${error.cause instanceof Error ? error.cause.message : ""}`
            : String(error);
        const kind = /no responders/i.test(text) ? "no-responders" : /timeout/i.test(text) ? "timeout" : "other";
        return new ControlRequestError({ subject, kind, reason: text.trim() });
      },
    });
    const decoded = decodeEnvelope(reply.data, { accept, maxBytes: nats.maxPayload });
    if (Either.isLeft(decoded)) {
      return yield* new ControlRequestError({ subject, kind: "bad-reply", reason: decoded.left.message });
    }
    return decoded.right;
  });

/** Sends a control request and waits for one reply. */
export const requestControl = (
  subject: string,
  request: ControlRequest,
  timeoutMs = 5_000,
): Effect.Effect<Envelope<ControlReply>, ControlRequestError, Nats | Experiment> =>
  requestMessage(subject, ControlRequestMessage, request, [ControlReplyMessage], timeoutMs);

/**
 * Answers control requests on `subject` with `handler` until the scope closes. A request that does
 * not decode gets `{ ok: false, message: reason }` and is counted; a handler failure too.
 */
export const serveControl = <E, R>(
  subject: string,
  handler: (request: Envelope<ControlRequest>) => Effect.Effect<ControlReply, E, R>,
  options: { readonly queueGroup?: string } = {},
): Effect.Effect<ReceiveCounters, never, Nats | Experiment | Scope.Scope | R> =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const { subjects, sender } = yield* Experiment;
    const runtime = yield* Effect.runtime<R>();
    const counters = newReceiveCounters();
    const respond = (msg: Msg, reply: ControlReply) => {
      const message = envelope(ControlReplyMessage, reply, { experiment: subjects.experiment, sender });
      try {
        msg.respond(encodeEnvelope(message, nats.maxPayload));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        msg.respond(
          encodeEnvelope(envelope(ControlReplyMessage, { ok: false, message: reason }, message), nats.maxPayload),
        );
      }
    };
    const onMessage = (error: Error | null, msg: Msg) => {
      if (error !== null) {
        recordSubscriptionError(nats, counters, subject, error);
        return;
      }
      const decoded = decodeEnvelope(msg.data, { accept: [ControlRequestMessage], maxBytes: nats.maxPayload });
      if (Either.isLeft(decoded)) {
        recordRejection(nats, counters, msg.subject, decoded.left);
        if (msg.reply) respond(msg, { ok: false, message: `bad request: ${decoded.left.message}` });
        return;
      }
      counters.accepted += 1;
      Runtime.runFork(runtime)(
        handler(decoded.right).pipe(
          Effect.catchAllCause((cause) =>
            Effect.succeed<ControlReply>({ ok: false, message: `command failed: ${cause.toString()}` }),
          ),
          Effect.tap((reply) => Effect.sync(() => msg.reply && respond(msg, reply))),
        ),
      );
    };
    yield* subscribeFlushed(nats, subject, onMessage, options.queueGroup);
    return counters;
  });
