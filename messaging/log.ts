/**
 * The one logger of factrl: pino, JSON lines (pretty only when stdout is a terminal), level from
 * FACTRL_LOG_LEVEL (default info). Parts take child loggers with their bindings
 * (`makeLogger({ experiment, role, id })`), and `pinoLoggerLayer` routes Effect.log* through the same
 * pino so both kinds of log line land in one stream with one format. Every line is bounded
 * (`LOG_BOUNDS`): logged values often come from messages, and a 900 KB string in one must not
 * become a 900 KB log line.
 */
import { Cause, HashMap, Layer, List, Logger, LogLevel } from "effect";
import { type DestinationStream, type LoggerOptions, type Logger as Pino, pino } from "pino";
import pretty from "pino-pretty";

export type FactrlLogger = Pino;

const LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function levelFromEnv(): string {
  const wanted = process.env.FACTRL_LOG_LEVEL?.toLowerCase();
  if (wanted === undefined || wanted === "") return "info";
  if ((LEVELS as readonly string[]).includes(wanted)) return wanted;
  process.stderr.write(`FACTRL_LOG_LEVEL=${wanted} is not one of ${LEVELS.join(", ")}; using info\n`);
  return "info";
}

/**
 * What one logged value may carry: strings are cut (saying how much was), arrays and objects keep
 * their first entries, nesting stops at `depth`. A stack trace fits in `stringChars`.
 */
export const LOG_BOUNDS = { stringChars: 2_000, entries: 32, depth: 6 } as const;

/** `text` cut to `max` characters, saying how many were cut. */
export const boundString = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;

const isPlainObject = (value: object): value is Record<string, unknown> => {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

/**
 * `value` within LOG_BOUNDS. Copy on write: a value already within bounds (every normal log line)
 * comes back as itself, so the walk allocates nothing. Only plain objects, arrays, typed arrays and
 * errors are looked into; other objects (dates…) serialise themselves.
 */
export function boundLogValue(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return boundString(value, LOG_BOUNDS.stringChars);
  if (typeof value !== "object" || value === null) return value;
  if (ArrayBuffer.isView(value)) {
    const length = "length" in value ? Number(value.length) : value.byteLength;
    return length <= LOG_BOUNDS.entries ? value : `${value.constructor.name} of ${length} elements`;
  }
  if (value instanceof Error) return boundError(value, depth);
  if (Array.isArray(value))
    return depth >= LOG_BOUNDS.depth && value.length > 0 ? `[${value.length} items]` : boundArray(value, depth);
  if (!isPlainObject(value)) return value;
  if (depth >= LOG_BOUNDS.depth) for (const _ in value) return "[object]";
  return boundObject(value, depth);
}

/** An error within bounds: its message, stack and own fields (a tagged error's `reason`…), same class. */
function boundError(error: Error, depth: number): Error {
  const fields = { ...error };
  const boundedFields = boundObject(fields, depth);
  const message = boundString(error.message, LOG_BOUNDS.stringChars);
  const stack = error.stack === undefined ? undefined : boundString(error.stack, LOG_BOUNDS.stringChars);
  if (boundedFields === fields && message === error.message && stack === error.stack) return error;
  // Same prototype, so pino's err serializer still names the class; defined, not assigned: tagged
  // errors have a getter-only `message`.
  const copy = Object.assign(Object.create(Object.getPrototypeOf(error)) as Error, boundedFields);
  Object.defineProperty(copy, "message", { value: message, enumerable: false });
  Object.defineProperty(copy, "stack", { value: stack, enumerable: false });
  return copy;
}

function boundArray(items: readonly unknown[], depth: number): readonly unknown[] {
  const kept = Math.min(items.length, LOG_BOUNDS.entries);
  let copy = items.length > kept ? items.slice(0, kept) : undefined;
  for (let i = 0; i < kept; i++) {
    const item = boundLogValue(items[i], depth + 1);
    if (item === items[i]) continue;
    copy ??= items.slice(0, kept);
    copy[i] = item;
  }
  if (copy !== undefined && items.length > kept) copy.push(`… (${items.length - kept} more items)`);
  return copy ?? items;
}

function boundObject(fields: Record<string, unknown>, depth: number): Record<string, unknown> {
  // for…in and a spread only when something changes: no allocation for a line within bounds.
  let copy: Record<string, unknown> | undefined;
  let count = 0;
  for (const key in fields) {
    if (++count > LOG_BOUNDS.entries) break;
    const field = fields[key];
    const bounded = boundLogValue(field, depth + 1);
    if (bounded === field) continue;
    copy ??= { ...fields };
    copy[key] = bounded;
  }
  if (count <= LOG_BOUNDS.entries) return copy ?? fields;
  const keys = Object.keys(fields);
  const kept = copy ?? fields;
  return {
    ...Object.fromEntries(keys.slice(0, LOG_BOUNDS.entries).map((key) => [key, kept[key]])),
    "…": `${keys.length - LOG_BOUNDS.entries} more keys`,
  };
}

/** The options of every factrl logger: level from the environment, lines within LOG_BOUNDS. */
const loggerOptions = (): LoggerOptions => ({
  level: levelFromEnv(),
  base: { pid: process.pid },
  formatters: { log: (fields) => boundLogValue(fields) as Record<string, unknown> },
  // The message is not among the fields (and may be an error's message): bounded on its own.
  serializers: { msg: (message: unknown) => boundLogValue(message) },
});

/** A factrl logger writing to `destination` (default stdout), e.g. to capture lines in a test. */
export function createLogger(destination?: DestinationStream): Pino {
  return destination === undefined ? pino(loggerOptions()) : pino(loggerOptions(), destination);
}

let root: Pino | undefined;

/** The process-wide root logger, created on first use. */
export function rootLogger(): Pino {
  // pino-pretty as an in-thread stream: no worker thread to keep the process alive at exit.
  root ??= createLogger(
    process.stdout.isTTY ? pretty({ sync: true, colorize: true, ignore: "pid,hostname" }) : undefined,
  );
  return root;
}

/** A child of the root logger carrying `bindings` on every line (experiment, role, id, component…). */
export function makeLogger(bindings: Record<string, unknown> = {}): Pino {
  return rootLogger().child(bindings);
}

const PINO_LEVEL: Record<LogLevel.LogLevel["_tag"], "fatal" | "error" | "warn" | "info" | "debug" | "trace" | null> = {
  All: "trace",
  Fatal: "fatal",
  Error: "error",
  Warning: "warn",
  Info: "info",
  Debug: "debug",
  Trace: "trace",
  None: null,
};

function messageText(message: unknown): string {
  const parts = Array.isArray(message) ? message : [message];
  return parts.map((part) => (typeof part === "string" ? part : JSON.stringify(part))).join(" ");
}

/** An Effect Logger that writes through `logger`, keeping Effect's annotations and spans as fields. */
export function pinoEffectLogger(logger: Pino = rootLogger()): Logger.Logger<unknown, void> {
  return Logger.make(({ logLevel, message, annotations, cause, spans }) => {
    const level = PINO_LEVEL[logLevel._tag];
    if (level === null) return;
    const fields: Record<string, unknown> = {};
    for (const [key, value] of HashMap.toEntries(annotations)) fields[key] = value;
    const spanNames = List.toArray(spans).map((span) => span.label);
    if (spanNames.length > 0) fields.spans = spanNames;
    if (!Cause.isEmpty(cause)) fields.cause = Cause.pretty(cause, { renderErrorCause: true });
    logger[level](fields, messageText(message));
  });
}

const EFFECT_LEVEL: Record<string, LogLevel.LogLevel> = {
  fatal: LogLevel.Fatal,
  error: LogLevel.Error,
  warn: LogLevel.Warning,
  info: LogLevel.Info,
  debug: LogLevel.Debug,
  trace: LogLevel.Trace,
  silent: LogLevel.None,
};

/**
 * Replaces Effect's default logger with pino, and lets pino's level decide what is shown (Effect
 * would otherwise drop debug lines itself). Run programs with
 * `NodeRuntime.runMain({ disablePrettyLogger: true })` or every line prints twice.
 */
export const pinoLoggerLayer = (logger: Pino = rootLogger()): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, pinoEffectLogger(logger)),
    Logger.minimumLogLevel(EFFECT_LEVEL[logger.level] ?? LogLevel.Info),
  );
