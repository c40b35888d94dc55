/**
 * The NATS connection as an Effect service. Connecting retries a few times (a server still starting)
 * and then fails with a ConnectError that says which problem it is — unreachable, auth, TLS,
 * config, no JetStream — instead of hanging. Once connected the client reconnects forever
 * (maxReconnectAttempts -1) and logs every status change; closing the scope drains the connection.
 */
import { readFile } from "node:fs/promises";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  type Authenticator,
  AuthorizationError,
  credsAuthenticator,
  type ConnectionOptions as NatsClientOptions,
  type NatsConnection,
  connect as natsConnect,
  nkeyAuthenticator,
  PermissionViolationError,
  TimeoutError,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import { Context, Data, Duration, Effect, Layer, Schedule, type Scope } from "effect";
import { MAX_MESSAGE_BYTES } from "./codec.ts";
import { type FactrlLogger, makeLogger } from "./log.ts";

export interface ConnectionOptions {
  /** One or more server URLs (`nats://host:4222`). */
  readonly servers: string | readonly string[];
  /** Shown in the server's connection list (`factrl-rollout-3`). */
  readonly name?: string;
  readonly token?: string;
  readonly user?: string;
  readonly pass?: string;
  /** An NKey seed (`SU…`), for NKey auth. */
  readonly nkeySeed?: string;
  /** A `.creds` file (JWT + seed), for decentralised auth. */
  readonly credsFile?: string;
  readonly tls?: {
    /** CA certificate that signed the server's certificate. */
    readonly caFile?: string;
    /** Client certificate and key, when the server asks for one. */
    readonly certFile?: string;
    readonly keyFile?: string;
  };
  /**
   * Where replies to this connection's requests arrive (`<prefix>.<unique>`; default `_INBOX`). A user
   * with per-role permissions may subscribe only to its own prefix (messaging/permissions.ts).
   */
  readonly inboxPrefix?: string;
  /** Copies of each stream, consumer, KV bucket and blob this connection creates (1; 3 on a cluster). */
  readonly replicas?: number;
  /** Initial connect attempts before giving up (default 5); auth/TLS/config errors do not retry. */
  readonly connectAttempts?: number;
  /** Delay before the second attempt, doubling after (default 250 ms). */
  readonly connectRetryDelayMs?: number;
  /** Per-attempt connect timeout (default 5000 ms). */
  readonly connectTimeoutMs?: number;
  /** Logger for status changes; default: a `messaging` child of the root logger. */
  readonly logger?: FactrlLogger;
}

export type ConnectFailureKind = "unreachable" | "auth" | "tls" | "config" | "no-jetstream" | "other";

export class ConnectError extends Data.TaggedError("ConnectError")<{
  readonly kind: ConnectFailureKind;
  readonly servers: string;
  readonly reason: string;
}> {
  override get message(): string {
    const what: Record<ConnectFailureKind, string> = {
      unreachable: "NATS server unreachable",
      auth: "NATS server refused the credentials",
      tls: "TLS handshake with the NATS server failed",
      config: "bad NATS connection settings",
      "no-jetstream": "NATS server has no JetStream (start it with -js)",
      other: "could not connect to NATS",
    };
    return `${what[this.kind]} (${this.servers}): ${this.reason}`;
  }
}

export interface NatsService {
  readonly connection: NatsConnection;
  readonly jetstream: JetStreamClient;
  readonly manager: JetStreamManager;
  /**
   * The largest message factrl may send on this connection (min of its limit and the server's), read
   * from the server's latest INFO: a reconnect to a server with a smaller max_payload lowers it.
   */
  readonly maxPayload: number;
  /** Copies of each stream, consumer, KV bucket and blob this connection creates. */
  readonly replicas: number;
  readonly logger: FactrlLogger;
}

export class Nats extends Context.Tag("factrl/Nats")<Nats, NatsService>() {}

const describeServers = (servers: string | readonly string[]) =>
  typeof servers === "string" ? servers : servers.join(",");

function classify(error: unknown, servers: string): ConnectError {
  const reason = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : "";
  let kind: ConnectFailureKind = "other";
  if (error instanceof AuthorizationError || error instanceof UserAuthenticationExpiredError) kind = "auth";
  else if (/tls|ssl|certificate|self.signed/i.test(reason + cause)) kind = "tls";
  else if (/refused|timeout|ENOTFOUND|EHOSTUNREACH|ECONNRESET|EAI_AGAIN|unreachable/i.test(reason + cause)) {
    kind = "unreachable";
  }
  return new ConnectError({ kind, servers, reason: reason + cause });
}

const readSecretFile = (path: string, what: string, servers: string) =>
  Effect.tryPromise({
    try: () => readFile(path),
    catch: (error) =>
      new ConnectError({ kind: "config", servers, reason: `cannot read ${what} ${path}: ${(error as Error).message}` }),
  });

function clientOptions(options: ConnectionOptions, servers: string) {
  return Effect.gen(function* () {
    const authenticators: Authenticator[] = [];
    if (options.nkeySeed !== undefined)
      authenticators.push(nkeyAuthenticator(new TextEncoder().encode(options.nkeySeed)));
    if (options.credsFile !== undefined) {
      authenticators.push(credsAuthenticator(yield* readSecretFile(options.credsFile, "creds file", servers)));
    }
    const tls = options.tls;
    for (const [what, path] of [
      ["TLS CA file", tls?.caFile],
      ["TLS certificate file", tls?.certFile],
      ["TLS key file", tls?.keyFile],
    ] as const) {
      if (path !== undefined) yield* readSecretFile(path, what, servers);
    }
    const client: NatsClientOptions = {
      servers: typeof options.servers === "string" ? options.servers : [...options.servers],
      name: options.name ?? "factrl",
      timeout: options.connectTimeoutMs ?? 5_000,
      // Actors must outlive any server outage: never stop reconnecting.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1_000,
      // Async stack traces cost an Error per request (every JetStream publish/pull); our errors say where.
      noAsyncTraces: true,
      ...(options.inboxPrefix !== undefined ? { inboxPrefix: options.inboxPrefix } : {}),
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.pass !== undefined ? { pass: options.pass } : {}),
      ...(authenticators.length > 0 ? { authenticator: authenticators } : {}),
      ...(tls !== undefined
        ? {
            tls: {
              ...(tls.caFile !== undefined ? { caFile: tls.caFile } : {}),
              ...(tls.certFile !== undefined ? { certFile: tls.certFile } : {}),
              ...(tls.keyFile !== undefined ? { keyFile: tls.keyFile } : {}),
            },
          }
        : {}),
    };
    return client;
  });
}

/** What a permission violation means, in words naming the subject. */
export const permissionDenied = (operation: string, subject: string): string =>
  `this user may not ${operation === "publish" ? "publish to" : "subscribe to"} ${JSON.stringify(subject)} ` +
  "(its permissions come from `factrl nats auth`: docs/security.md)";

/** Whether `error` (or what caused it) is the server refusing this user a subject: retrying cannot help. */
export const isPermissionViolation = (error: unknown): boolean =>
  error instanceof PermissionViolationError ||
  (error instanceof Error && error.cause !== undefined && isPermissionViolation(error.cause));

/**
 * Whether `error` is a JetStream request that got no answer in time — what a cluster gives while a
 * stream elects a new leader after losing a node, or while a node restarts: worth retrying.
 */
export const isLeaderless = (error: unknown): boolean =>
  error instanceof TimeoutError ||
  (error instanceof Error && /timeout|temporarily unavailable/i.test(error.message)) ||
  (error instanceof Error && error.cause !== undefined && isLeaderless(error.cause));

/** Logs each status change until the connection closes (the iterator ends then). */
async function logStatus(connection: NatsConnection, logger: FactrlLogger): Promise<void> {
  for await (const status of connection.status()) {
    switch (status.type) {
      case "disconnect":
        logger.warn({ server: status.server }, "NATS disconnected");
        break;
      case "reconnecting":
        logger.debug("NATS reconnecting");
        break;
      case "reconnect":
        logger.info({ server: status.server }, "NATS reconnected");
        break;
      case "error":
        if (status.error instanceof PermissionViolationError) {
          // The operation itself fails too (a request or JetStream call rejects with the same text); this line
          // says which subject the credentials lack, for whoever reads the log rather than the error.
          const { operation, subject } = status.error;
          logger.error({ operation, subject }, `NATS refused permission: ${permissionDenied(operation, subject)}`);
        } else logger.error({ err: status.error }, "NATS error");
        break;
      case "slowConsumer":
        logger.warn({ subject: status.sub.getSubject(), pending: status.pending }, "NATS slow consumer");
        break;
      case "staleConnection":
      case "ldm":
      case "update":
      case "close":
        logger.info({ status: status.type }, "NATS status");
        break;
      default:
        break; // pings: too chatty to log
    }
  }
}

/** Connects (bounded retry), acquiring a scoped connection that drains when the scope closes. */
export function connectNats(options: ConnectionOptions): Effect.Effect<NatsService, ConnectError, Scope.Scope> {
  const servers = describeServers(options.servers);
  const logger = options.logger ?? makeLogger({ component: "messaging" });
  const attempts = Math.max(1, options.connectAttempts ?? 5);
  const retryPolicy = Schedule.exponential(Duration.millis(options.connectRetryDelayMs ?? 250)).pipe(
    Schedule.intersect(Schedule.recurs(attempts - 1)),
  );
  const open = Effect.gen(function* () {
    const client = yield* clientOptions(options, servers);
    return yield* Effect.tryPromise({
      try: () => natsConnect(client),
      catch: (error) => classify(error, servers),
    }).pipe(
      Effect.tapError((error) => Effect.sync(() => logger.warn({ servers, kind: error.kind }, error.message))),
      Effect.retry({ schedule: retryPolicy, while: (error) => error.kind === "unreachable" || error.kind === "other" }),
    );
  });
  const acquire = Effect.gen(function* () {
    const connection = yield* open;
    const manager = yield* Effect.tryPromise({
      try: () => jetstreamManager(connection),
      catch: (error) =>
        new ConnectError({
          kind: "no-jetstream",
          servers,
          reason: error instanceof Error ? error.message : String(error),
        }),
    }).pipe(Effect.tapError(() => Effect.promise(() => connection.close())));
    void logStatus(connection, logger);
    logger.info({ server: connection.getServer() }, "NATS connected");
    const service: NatsService = {
      connection,
      jetstream: jetstream(connection),
      manager,
      get maxPayload() {
        return Math.min(MAX_MESSAGE_BYTES, connection.info?.max_payload ?? Number.POSITIVE_INFINITY);
      },
      replicas: options.replicas ?? 1,
      logger,
    };
    return service;
  });
  return Effect.acquireRelease(acquire, ({ connection }) =>
    Effect.promise(async () => {
      if (connection.isClosed()) return;
      // drain() flushes our pending publishes and lets subscriptions finish; bounded in case the server is gone.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        connection.drain().catch(() => undefined),
        new Promise((resolve) => {
          timer = setTimeout(resolve, 5_000);
        }),
      ]);
      clearTimeout(timer);
      if (!connection.isClosed()) await connection.close();
    }),
  );
}

/** The connection as a layer: `Effect.provide(program, NatsLive({ servers }))`. */
export const NatsLive = (options: ConnectionOptions): Layer.Layer<Nats, ConnectError> =>
  Layer.scoped(Nats, connectNats(options));
