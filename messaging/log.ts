/**
 * The one logger of factrl: pino, JSON lines (pretty only when stdout is a terminal), level from
 * FACTRL_LOG_LEVEL (default info). Parts take child loggers with their bindings
 * (`makeLogger({ experiment, role, id })`), and `pinoLoggerLayer` routes Effect.log* through the same
 * pino so both kinds of log line land in one stream with one format.
 */
import { Cause, HashMap, Layer, List, Logger, LogLevel } from "effect";
import { type Logger as Pino, pino } from "pino";
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

let root: Pino | undefined;

/** The process-wide root logger, created on first use. */
export function rootLogger(): Pino {
  if (root === undefined) {
    const options = { level: levelFromEnv(), base: { pid: process.pid } };
    // pino-pretty as an in-thread stream: no worker thread to keep the process alive at exit.
    root = process.stdout.isTTY
      ? pino(options, pretty({ sync: true, colorize: true, ignore: "pid,hostname" }))
      : pino(options);
  }
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
