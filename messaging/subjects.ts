/**
 * Every NATS name an experiment uses, in one place: subjects (`factrl.<experiment>.…`) and the
 * JetStream stream, consumer and KV names derived from them. Those names allow no dots,
 * so every token that goes into one is validated to [A-Za-z0-9_-] first; a bad id fails here with a
 * message saying what is wrong, never later as a confusing server error.
 */
import { Data } from "effect";

export class InvalidNameError extends Data.TaggedError("InvalidNameError")<{
  readonly what: string;
  readonly value: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `invalid ${this.what} ${JSON.stringify(this.value)}: ${this.reason}`;
  }
}

const TOKEN = /^[A-Za-z0-9_-]+$/;
const MAX_TOKEN_LENGTH = 64;

/** Checks one name token (experiment id, role, actor id, metrics source…); throws InvalidNameError. */
export function validateToken(what: string, value: string): string {
  const fail = (reason: string): never => {
    throw new InvalidNameError({ what, value, reason });
  };
  if (typeof value !== "string" || value.length === 0) fail("must be a non-empty string");
  if (value.length > MAX_TOKEN_LENGTH) fail(`must be at most ${MAX_TOKEN_LENGTH} characters`);
  if (value.includes(".")) fail("must not contain dots (they separate NATS subject tokens)");
  if (value.includes("*") || value.includes(">")) fail("must not contain NATS wildcards (* or >)");
  if (/\s/.test(value)) fail("must not contain whitespace");
  if (value.includes("/") || value.includes("\\")) fail("must not contain slashes");
  if (!TOKEN.test(value)) fail("may contain only letters, digits, '_' and '-'");
  return value;
}

/** Validates an experiment id (used in every subject and JetStream name of the experiment). */
export const validateExperimentId = (experiment: string): string => validateToken("experiment id", experiment);

/**
 * Names a work queue may not take: its stream would be the dead-letter stream (`factrl_<exp>_deadletter`)
 * or the blob stream (`factrl_<exp>_weights`), or its subject would sit among the runtime's own.
 */
export const RESERVED_QUEUE_NAMES: readonly string[] = [
  "deadletter",
  "metrics",
  "heartbeat",
  "control",
  "blobs",
  "weights",
];

/** Validates a work queue's name (a token, not one of RESERVED_QUEUE_NAMES); throws InvalidNameError. */
export function validateQueueName(name: string): string {
  validateToken("work queue name", name);
  if (RESERVED_QUEUE_NAMES.includes(name)) {
    throw new InvalidNameError({
      what: "work queue name",
      value: name,
      reason: `is reserved (${RESERVED_QUEUE_NAMES.join(", ")} name other subjects and streams of an experiment)`,
    });
  }
  return name;
}

export interface ExperimentSubjects {
  readonly experiment: string;
  /** `factrl.<exp>` — the prefix of everything below. */
  readonly root: string;
  /** The subject a work queue's stream captures (queues are named by their definition: work-queue.ts). */
  readonly work: (queue: string) => string;
  /** Where a work queue's exhausted or rejected messages go, with the reason in headers. */
  readonly deadLetter: (queue: string) => string;
  /** `factrl.<exp>.deadletter.>` — every dead-letter subject (captured by the dead-letter stream). */
  readonly allDeadLetters: string;
  readonly metrics: (source: string) => string;
  readonly allMetrics: string;
  readonly heartbeat: (role: string, id: string) => string;
  readonly allHeartbeats: string;
  /** Control requests for every actor of a role (`control.<role>`) or one actor (`control.<role>.<id>`). */
  readonly control: (role: string, id?: string) => string;
  readonly allControl: string;
  /** JetStream stream of a work queue: `factrl_<exp>_<queue>`. */
  readonly stream: (queue: string) => string;
  /** The stream keeping dead letters for inspection: `factrl_<exp>_deadletter`. */
  readonly deadLetterStream: string;
  /** Durable pull consumer of a work queue shared by all its workers: `<queue>_workers`. */
  readonly consumer: (queue: string) => string;
  /** `factrl.<exp>.blobs` — the prefix of blob manifests (`.meta.<name>`) and chunks (`.data.<name>`). */
  readonly blobs: string;
  /** JetStream stream keeping the blobs (policy weights): `factrl_<exp>_weights`. */
  readonly weightsStream: string;
  /** KV bucket for small shared state (current policy version): `factrl_<exp>_state`. */
  readonly stateBucket: string;
  /** The JetStream stream behind the KV bucket: `KV_factrl_<exp>_state`. */
  readonly stateStream: string;
  /** Where replies to a role's requests arrive: `_INBOX.factrl.<exp>.<role>` (its users may read only there). */
  readonly inbox: (role: string) => string;
  /** The NATS services-protocol name of a role's actors ($SRV.STATS.<name>): `factrl-<exp>-<role>`. */
  readonly service: (role: string) => string;
}

/** All names of one experiment; throws InvalidNameError for a bad experiment id. */
export function experimentSubjects(experiment: string): ExperimentSubjects {
  validateExperimentId(experiment);
  const root = `factrl.${experiment}`;
  return {
    experiment,
    root,
    work: (queue) => `${root}.${queue}`,
    deadLetter: (queue) => `${root}.deadletter.${queue}`,
    allDeadLetters: `${root}.deadletter.>`,
    metrics: (source) => `${root}.metrics.${validateToken("metrics source", source)}`,
    allMetrics: `${root}.metrics.>`,
    heartbeat: (role, id) => `${root}.heartbeat.${validateToken("role", role)}.${validateToken("actor id", id)}`,
    allHeartbeats: `${root}.heartbeat.>`,
    control: (role, id) =>
      id === undefined
        ? `${root}.control.${validateToken("role", role)}`
        : `${root}.control.${validateToken("role", role)}.${validateToken("actor id", id)}`,
    allControl: `${root}.control.>`,
    stream: (queue) => `factrl_${experiment}_${queue}`,
    deadLetterStream: `factrl_${experiment}_deadletter`,
    consumer: (queue) => `${queue}_workers`,
    blobs: `${root}.blobs`,
    weightsStream: `factrl_${experiment}_weights`,
    stateBucket: `factrl_${experiment}_state`,
    stateStream: `KV_factrl_${experiment}_state`,
    inbox: (role) => `_INBOX.factrl.${experiment}.${validateToken("role", role)}`,
    service: (role) => `factrl-${experiment}-${validateToken("role", role)}`,
  };
}
