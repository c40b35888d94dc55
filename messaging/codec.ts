/**
 * The one wire format: a msgpack envelope {type, version, experiment, sender, sentAt, id, body}, in
 * plain msgpack (wire.ts: typed arrays as dtype maps; docs/protocol.md). A message type is a value
 * (`defineMessage`): its name and version go into the envelope, and a receiver decodes against the
 * types it takes — no registry of every type. Decoding checks size, msgpack, the envelope, the type
 * and version against those types, then restores the body's typed arrays and checks it against its
 * schema, and says which of these failed. Encoding refuses a message larger than the limit before
 * anything is sent.
 */
import { type MsgHdrs, nuid } from "@nats-io/transport-node";
import { Data, Either, ParseResult, Schema } from "effect";
import { checkFor } from "./fast-check.ts";
import { boundString } from "./log.ts";
import { fromWire, packWire, unpackPlain, WireFormatError } from "./wire.ts";

/** NATS' default max_payload; factrl messages, with their headers, must fit in it (weights go to blobs). */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** `all`: name every wrong field (Effect's `errors: "all"`), else stop at the first. */
type Validator<A> = (input: unknown, all?: boolean) => Either.Either<A, ParseResult.ParseError>;

/**
 * A message type: the contract for one kind of message. `name` and `version` travel in the envelope
 * (bump the version when the body's shape or bytes change: receivers refuse versions they do not
 * take), and a received body is checked against `schema`.
 */
export interface MessageType<A> {
  readonly name: string;
  readonly version: number;
  readonly schema: Schema.Schema.AnyNoContext;
  /**
   * Checks a received body (already restored from the wire): the fast check, then Effect's decoder,
   * naming every wrong field unless `all` is false (then only the first: bounded cost for big input).
   */
  readonly validate: Validator<A>;
}

/** The body type of a message type. */
export type MessageBody<T> = T extends MessageType<infer A> ? A : never;

/** The fast check accepts valid input as is; Effect's decoder judges the rest and explains failures. */
function validator<A>(schema: Schema.Schema<A, unknown>): Validator<A> {
  const quick = checkFor(schema.ast);
  const decodeAll = Schema.decodeUnknownEither(schema, { errors: "all" });
  const decodeFirst = Schema.decodeUnknownEither(schema);
  return (input, all = true) => (quick(input) ? Either.right(input as A) : all ? decodeAll(input) : decodeFirst(input));
}

/**
 * Defines a message type. Its body travels as is (typed arrays as dtype maps), so the schema's
 * encoded form must be its type: no transformations.
 */
export const defineMessage = <A, I>(definition: {
  readonly name: string;
  readonly version: number;
  readonly schema: Schema.Schema<A, I>;
}): MessageType<A> => ({
  name: definition.name,
  version: definition.version,
  schema: definition.schema,
  validate: validator(definition.schema as Schema.Schema<A, unknown>),
});

export interface Envelope<A = unknown> {
  /** The message type's name (`RolloutGroup`…). */
  readonly type: string;
  readonly version: number;
  readonly experiment: string;
  /** Who sent it: an actor id (`rollout-3`) or a tool (`cli`). */
  readonly sender: string;
  /** Epoch milliseconds at the sender. */
  readonly sentAt: number;
  /** Unique per message (nuid by default); JetStream publishes use it as msgID unless told otherwise. */
  readonly id: string;
  readonly body: A;
}

export class MessageTooLargeError extends Data.TaggedError("MessageTooLargeError")<{
  readonly type: string;
  /** What the server would count: the encoded envelope plus the headers it would carry. */
  readonly bytes: number;
  readonly maxBytes: number;
  /** Of `bytes`, those of the NATS headers (a JetStream msgID, a dead letter's reason…); 0 without. */
  readonly headerBytes?: number;
}> {
  override get message(): string {
    const headerBytes = this.headerBytes ?? 0;
    const split =
      headerBytes > 0
        ? `${this.bytes - headerBytes} bytes of envelope and ${headerBytes} of NATS headers, which the server counts too; `
        : "";
    return (
      `${this.type} message is ${this.bytes} bytes, over the ${this.maxBytes}-byte limit; nothing was sent ` +
      `(${split}send large data such as weights as blobs)`
    );
  }
}

export type DecodeFailureKind =
  | "too-large"
  | "not-msgpack"
  | "bad-envelope"
  | "unexpected-type"
  | "unknown-version"
  | "bad-body";

export class DecodeError extends Data.TaggedError("DecodeError")<{
  readonly kind: DecodeFailureKind;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.kind}: ${this.reason}`;
  }
}

export interface EnvelopeMeta {
  readonly experiment: string;
  readonly sender: string;
  /** Defaults to a fresh nuid. */
  readonly id?: string;
  /** Defaults to Date.now(). */
  readonly sentAt?: number;
}

/** Builds an envelope of message type `type` for `body`. */
export function envelope<A>(type: MessageType<A>, body: NoInfer<A>, meta: EnvelopeMeta): Envelope<A> {
  return {
    type: type.name,
    version: type.version,
    experiment: meta.experiment,
    sender: meta.sender,
    sentAt: meta.sentAt ?? Date.now(),
    id: meta.id ?? nuid.next(),
    body,
  };
}

/**
 * The bytes `headers` add to a message on the wire: `NATS/1.0\r\n`, a `Key: Value\r\n` line per value,
 * then `\r\n` (nothing without headers). NATS counts them toward max_payload: the client refuses, and
 * the server rejects, a message whose payload and headers together exceed it.
 */
export const headerBytes = (headers: MsgHdrs | undefined): number => {
  if (headers === undefined) return 0;
  let text = "NATS/1.0";
  if (headers.code > 0 && headers.description !== "") text += ` ${headers.code} ${headers.description}`;
  text += "\r\n";
  let lines = 0;
  for (const [key, values] of headers)
    for (const value of values) {
      text += `${key}: ${value}\r\n`;
      lines += 1;
    }
  // The client sends no header block at all for empty headers.
  return lines === 0 && headers.code === 0 ? 0 : Buffer.byteLength(`${text}\r\n`, "utf8");
};

/**
 * The payload a message carrying `headers` may have under `maxPayload`: the one rule for every
 * publish with headers (work items with their msgID, dead letters with their reasons).
 */
export const payloadRoom = (maxPayload: number, headers?: MsgHdrs): number => maxPayload - headerBytes(headers);

/**
 * Packs an envelope; throws MessageTooLargeError when it — with the `headers` it will be published
 * with, if any — would not fit in `maxBytes`.
 */
export function encodeEnvelope(message: Envelope, maxBytes: number = MAX_MESSAGE_BYTES, headers?: MsgHdrs): Uint8Array {
  const bytes = packWire(message);
  const extra = headerBytes(headers);
  if (bytes.byteLength + extra > maxBytes) {
    throw new MessageTooLargeError({
      type: message.type,
      bytes: bytes.byteLength + extra,
      maxBytes,
      ...(extra > 0 ? { headerBytes: extra } : {}),
    });
  }
  return bytes;
}

/** The envelope's fields besides the body, and the type each must have. */
const ENVELOPE_FIELDS = [
  ["type", "string"],
  ["version", "integer"],
  ["experiment", "string"],
  ["sender", "string"],
  ["sentAt", "number"],
  ["id", "string"],
] as const;

/** What a value is, in a word: never the value itself, which may be huge or nested thousands deep. */
const kindOf = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "a list" : value instanceof Uint8Array ? "bytes" : typeof value;

/**
 * The envelope's wrong fields, or undefined when it is one. Checked by hand rather than by a schema:
 * Effect's messages quote the wrong value, and formatting a 5,000-level nesting overflowed the stack.
 */
function envelopeProblems(raw: unknown): string | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw) || raw instanceof Uint8Array)
    return `expected a map, got ${kindOf(raw)}`;
  const record = raw as Record<string, unknown>;
  const problems: string[] = [];
  for (const [field, expected] of ENVELOPE_FIELDS) {
    const value = record[field];
    const ok =
      expected === "integer"
        ? Number.isInteger(value)
        : expected === "number"
          ? typeof value === "number"
          : typeof value === expected;
    const want = expected === "integer" ? "an integer" : `a ${expected}`;
    if (!ok) problems.push(`["${field}"]: expected ${want}, got ${kindOf(value)}`);
  }
  if (!Object.hasOwn(record, "body")) problems.push(`["body"]: is missing`);
  return problems.length === 0 ? undefined : problems.join("; ");
}

/**
 * A body this large that fails its check is explained by its first wrong field only: naming every one
 * of 10,000 wrong metric tags took a second, long enough for the server to cut a subscriber off.
 */
const EXPLAIN_ALL_UP_TO_BYTES = 64 * 1024;

/**
 * A decode failure's reason is logged and travels in a dead letter's header, and what it quotes
 * comes from the message: it names at most MAX_REASON_ISSUES wrong fields, each in at most
 * MAX_ISSUE_CHARS, and says how much it left out.
 */
const MAX_REASON_ISSUES = 5;
const MAX_ISSUE_CHARS = 200;

const formatIssuePath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((key) => `[${typeof key === "number" ? key : JSON.stringify(String(key))}]`).join("");

/** The wrong fields under `issue` (Effect's issue tree), each once: what ArrayFormatter would list. */
function leafIssues(
  issue: ParseResult.ParseIssue,
  path: ReadonlyArray<PropertyKey>,
  visit: (leaf: ParseResult.ParseIssue, path: ReadonlyArray<PropertyKey>) => void,
) {
  if (issue._tag === "Pointer") {
    const at = Array.isArray(issue.path) ? issue.path : [issue.path];
    leafIssues(issue.issue, [...path, ...at], visit);
  } else if (issue._tag === "Composite") {
    for (const inner of Array.isArray(issue.issues) ? issue.issues : [issue.issues]) leafIssues(inner, path, visit);
  } else visit(issue, path);
}

/**
 * One `["field"][0]: expected …, actual …` per wrong field, bounded: only the first MAX_REASON_ISSUES
 * are formatted (formatting all 10,000 of a hostile message took most of a second), the rest counted.
 */
const formatParseError = (error: ParseResult.ParseError): string => {
  const named: string[] = [];
  let more = 0;
  leafIssues(error.issue, [], (leaf, path) => {
    if (named.length === MAX_REASON_ISSUES) {
      more += 1;
      return;
    }
    for (const issue of ParseResult.ArrayFormatter.formatIssueSync(leaf)) {
      const where = formatIssuePath([...path, ...issue.path]) || "(top level)";
      if (named.length < MAX_REASON_ISSUES) named.push(boundString(`${where}: ${issue.message}`, MAX_ISSUE_CHARS));
      else more += 1;
    }
  });
  return named.join("; ") + (more > 0 ? `; and ${more} more problem${more === 1 ? "" : "s"}` : "");
};

const fail = (kind: DecodeFailureKind, reason: string) => Either.left(new DecodeError({ kind, reason }));

/** `A or B`, each type once, for a reason. */
const namesOf = (types: readonly MessageType<unknown>[]) => [...new Set(types.map((type) => type.name))].join(" or ");

export interface DecodeOptions<A> {
  /** The message types this receiver takes (e.g. a metrics subscriber takes only MetricsEvent). */
  readonly accept: readonly MessageType<A>[];
  readonly maxBytes?: number;
}

/**
 * Unpacks msgpack without any check; undefined when the bytes are not msgpack. For salvaging a field
 * (a group id, say) from a message that failed to decode.
 */
export function unpackUnchecked(bytes: Uint8Array): unknown {
  try {
    return unpackPlain(bytes);
  } catch {
    return undefined;
  }
}

/** Unpacks and validates one message of one of the `accept`ed types; never throws. */
export function decodeEnvelope<A>(
  bytes: Uint8Array,
  options: DecodeOptions<A>,
): Either.Either<Envelope<A>, DecodeError> {
  const maxBytes = options.maxBytes ?? MAX_MESSAGE_BYTES;
  if (bytes.byteLength > maxBytes)
    return fail("too-large", `${bytes.byteLength} bytes, over the ${maxBytes}-byte limit`);
  let raw: unknown;
  try {
    raw = unpackPlain(bytes);
  } catch (error) {
    return fail("not-msgpack", `not valid msgpack (${error instanceof Error ? error.message : String(error)})`);
  }
  const problems = envelopeProblems(raw);
  if (problems !== undefined) return fail("bad-envelope", `not a factrl envelope: ${problems}`);
  const shape = raw as Envelope<unknown>;
  const { type, version } = shape;
  // A plain loop: this runs for every message a worker receives.
  let known: MessageType<A> | undefined;
  let named = false;
  for (const candidate of options.accept) {
    if (candidate.name !== type) continue;
    named = true;
    if (candidate.version === version) {
      known = candidate;
      break;
    }
  }
  if (!named) {
    return fail("unexpected-type", `got ${boundString(type, MAX_ISSUE_CHARS)}, expected ${namesOf(options.accept)}`);
  }
  if (known === undefined) {
    const versions = options.accept
      .flatMap((candidate) => (candidate.name === type ? [candidate.version] : []))
      .join(" or ");
    return fail(
      "unknown-version",
      `${type} version ${version} is not supported (this build reads version ${versions})`,
    );
  }
  let wireBody: unknown;
  try {
    wireBody = fromWire(shape.body);
  } catch (error) {
    if (!(error instanceof WireFormatError)) throw error;
    return fail("bad-body", `${type} v${version}: ${boundString(error.message, MAX_ISSUE_CHARS)}`);
  }
  const body = known.validate(wireBody, bytes.byteLength <= EXPLAIN_ALL_UP_TO_BYTES);
  if (Either.isLeft(body)) return fail("bad-body", `${type} v${version}: ${formatParseError(body.left)}`);
  // The fast check hands back the input itself: no copy needed then.
  const message = body.right === shape.body ? shape : { ...shape, body: body.right };
  return Either.right(message as Envelope<A>);
}
