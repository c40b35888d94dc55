/**
 * Per-role NATS permissions of an experiment, derived from what each role declares it does (the work
 * queues it takes from and gives to, the state keys it writes, whether it writes blobs, the outside
 * services it calls), and the nats-server `authorization` block that gives each role's NKey its set.
 *
 * Everything is allow-listed: a user may publish and subscribe only what is listed here. Every member of
 * an experiment may read the experiment (its KV state, blobs, stream and consumer info, heartbeats,
 * metrics); writing is what roles differ in. Nothing here names another experiment, so a user of one
 * experiment can neither read nor write another's subjects or streams. Underneath each factrl operation
 * are the JetStream subjects listed below (server 2.9 and the @nats-io 3.x client; see docs/security.md).
 */
import type { ExperimentSubjects } from "./subjects.ts";

/** What one role's actors do on the server, as its definition declares it. */
export interface RoleAccess {
  readonly role: string;
  /** Work queues its actors take work from (pull, ack, dead-letter). */
  readonly takes: readonly string[];
  /** Work queues its actors publish to. */
  readonly gives: readonly string[];
  /** KV keys it writes (each actor writes its own status record besides; see rolePermissions). */
  readonly writesState: readonly string[];
  /** Whether it stores blobs (the policy weights, the tokenizer). */
  readonly writesBlobs: boolean;
  /** Subjects of outside services it sends requests to (the reward services). */
  readonly requests: readonly string[];
  /** Endpoints it answers requests on, each `factrl.<exp>.<endpoint>` (the retriever's `retrieve`). */
  readonly serves?: readonly string[];
  /** Endpoints of its own experiment it sends requests to, each `factrl.<exp>.<endpoint>` (rollout and reward actors ask `retrieve`). */
  readonly asks?: readonly string[];
}

/** One user's permissions, as nats-server's `permissions` block takes them. */
export interface Permissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** May answer a request it received (publish to that request's reply subject, once). */
  readonly allowResponses: boolean;
}

/** The experiment as the permission sets see it: its names, every queue, every role. */
export interface ExperimentLayout {
  readonly subjects: ExperimentSubjects;
  /** Every work queue of the experiment (streams whose info everyone may read). */
  readonly queues: readonly string[];
  /** Every role of the experiment (services-protocol names the operator may ask). */
  readonly roles: readonly string[];
}

const js = "$JS.API";

/** Every stream of the experiment: its work queues', the dead letters', the blobs' and the KV bucket's. */
const streamsOf = ({ subjects, queues }: ExperimentLayout): string[] => [
  ...queues.map(subjects.stream),
  subjects.deadLetterStream,
  subjects.weightsStream,
  subjects.stateStream,
];

/** Reading the experiment: stream and consumer info, stored messages, blobs, KV gets and watches. */
function readAccess(layout: ExperimentLayout): string[] {
  const kv = layout.subjects.stateStream;
  return [
    `${js}.INFO`,
    ...streamsOf(layout).flatMap((stream) => [
      `${js}.STREAM.INFO.${stream}`,
      `${js}.STREAM.MSG.GET.${stream}`,
      `${js}.DIRECT.GET.${stream}`,
      `${js}.DIRECT.GET.${stream}.>`,
      `${js}.CONSUMER.INFO.${stream}.*`,
    ]),
    // A KV watch (and a key listing) is an ordered consumer: created, flow-controlled, deleted by its reader.
    `${js}.CONSUMER.CREATE.${kv}`,
    `${js}.CONSUMER.CREATE.${kv}.>`,
    `${js}.CONSUMER.DELETE.${kv}.>`,
    `$JS.FC.${kv}.>`,
  ];
}

/** What every member subscribes to: the experiment's heartbeats and metrics, and its own inbox. */
const readSubscriptions = (subjects: ExperimentSubjects, role: string): string[] => [
  subjects.allHeartbeats,
  subjects.allMetrics,
  `${subjects.inbox(role)}.>`,
];

/** The permissions of an actor of `access.role`: read the experiment, write what the role declares. */
export function rolePermissions(layout: ExperimentLayout, access: RoleAccess): Permissions {
  const { subjects } = layout;
  const { role } = access;
  const service = subjects.service(role);
  const publish = [
    ...readAccess(layout),
    // The actor runtime: heartbeats, metrics, its status record.
    `${subjects.root}.heartbeat.${role}.*`,
    `${subjects.root}.metrics.*`,
    `$KV.${subjects.stateBucket}.actor-status.*`,
    ...access.gives.map(subjects.work),
    ...access.takes.flatMap((queue) => {
      const stream = subjects.stream(queue);
      const consumer = subjects.consumer(queue);
      return [
        `${js}.CONSUMER.MSG.NEXT.${stream}.${consumer}`,
        `$JS.ACK.${stream}.${consumer}.>`,
        // Acked work a broker crash brought back is deleted by the workers (messaging/work-queue.ts).
        `${js}.STREAM.MSG.DELETE.${stream}`,
        subjects.deadLetter(queue),
      ];
    }),
    ...access.writesState.map((key) => `$KV.${subjects.stateBucket}.${key}`),
    // Old weights go message by message (messaging/blobs.ts says why not by purge).
    ...(access.writesBlobs ? [`${subjects.blobs}.>`, `${js}.STREAM.MSG.DELETE.${subjects.weightsStream}`] : []),
    ...access.requests,
    ...(access.asks ?? []).map((endpoint) => `${subjects.root}.${endpoint}`),
  ];
  const subscribe = [
    ...readSubscriptions(subjects, role),
    // Control requests to the role and to each of its actors, and the services protocol under its name.
    subjects.control(role),
    `${subjects.control(role)}.*`,
    ...(access.serves ?? []).map((endpoint) => `${subjects.root}.${endpoint}`),
    ...["PING", "INFO", "STATS"].flatMap((verb) => [
      `$SRV.${verb}`,
      `$SRV.${verb}.${service}`,
      `$SRV.${verb}.${service}.*`,
    ]),
  ];
  return { publish: unique(publish), subscribe: unique(subscribe), allowResponses: true };
}

/** Asking every role's actors for their stats ($SRV.STATS.<service>): what `factrl status` does. */
const askActors = ({ subjects, roles }: ExperimentLayout): string[] =>
  roles.flatMap((role) => ["PING", "INFO", "STATS"].map((verb) => `$SRV.${verb}.${subjects.service(role)}`));

/**
 * The launcher and the operator's commands (`factrl run`, `scale`, `status`): create and manage the
 * experiment's streams, consumers and KV bucket, write its state, ask and control its actors.
 */
export function launcherPermissions(layout: ExperimentLayout, role = "launcher"): Permissions {
  const { subjects } = layout;
  const publish = [
    ...readAccess(layout),
    ...streamsOf(layout).flatMap((stream) => [
      `${js}.STREAM.*.${stream}`,
      `${js}.STREAM.MSG.*.${stream}`,
      `${js}.CONSUMER.*.${stream}`,
      `${js}.CONSUMER.*.${stream}.>`,
      `${js}.CONSUMER.DURABLE.CREATE.${stream}.*`,
    ]),
    `${subjects.root}.>`,
    `$KV.${subjects.stateBucket}.>`,
    ...askActors(layout),
  ];
  const subscribe = [`${subjects.root}.>`, `${subjects.inbox(role)}.>`];
  return { publish: unique(publish), subscribe: unique(subscribe), allowResponses: true };
}

/** A dashboard: reads the experiment and asks its actors for their stats; writes nothing. */
export function dashboardPermissions(layout: ExperimentLayout, role = "dashboard"): Permissions {
  return {
    publish: unique([...readAccess(layout), ...askActors(layout)]),
    subscribe: unique([...readSubscriptions(layout.subjects, role), layout.subjects.allDeadLetters]),
    allowResponses: false,
  };
}

/** A reward service `name`: answers requests on its own subjects and sees nothing else. */
export function rewardServicePermissions(subjectsOfService: readonly string[]): Permissions {
  return { publish: [], subscribe: unique(subjectsOfService), allowResponses: true };
}

const unique = (list: readonly string[]): string[] => [...new Set(list)];

/** One user of the generated server config. */
export interface ServerUser {
  /** What it is for, written as a comment above it. */
  readonly comment: string;
  /** Its NKey's public key (`U…`): the server keeps no secret. */
  readonly nkey: string;
  readonly permissions: Permissions;
}

export interface ServerTls {
  readonly cert: string;
  readonly key: string;
  /** CA to verify client certificates with; given, clients must present one (mutual TLS). */
  readonly ca?: string;
}

const quote = (text: string): string => JSON.stringify(text);
const list = (items: readonly string[], indent: string): string =>
  items.length === 0 ? "[]" : `[\n${items.map((item) => `${indent}  ${quote(item)}`).join(",\n")}\n${indent}]`;

/**
 * nats-server configuration text: the `authorization` block with every user (NKey + permissions) and,
 * with `tls`, the server's TLS settings. It sets no listen address or store: `nats-server -c FILE -js
 * -sd DIR -p PORT` (or include it from a fuller config).
 */
export function serverAuthConfig(users: readonly ServerUser[], tls?: ServerTls): string {
  const lines: string[] = ["# Generated by `factrl nats auth`: users and permissions (docs/security.md).", ""];
  if (tls !== undefined) {
    lines.push("tls {", `  cert_file: ${quote(tls.cert)}`, `  key_file: ${quote(tls.key)}`);
    if (tls.ca !== undefined) lines.push(`  ca_file: ${quote(tls.ca)}`, "  verify: true");
    lines.push("  timeout: 2", "}", "");
  }
  lines.push("authorization {", "  users = [");
  for (const user of users) {
    const p = user.permissions;
    lines.push(
      `    # ${user.comment}`,
      "    {",
      `      nkey: ${quote(user.nkey)}`,
      "      permissions: {",
      `        publish: { allow: ${list(p.publish, "        ")} }`,
      `        subscribe: { allow: ${list(p.subscribe, "        ")} }`,
      ...(p.allowResponses ? ["        allow_responses: true"] : []),
      "      }",
      "    }",
    );
  }
  lines.push("  ]", "}", "");
  return lines.join("\n");
}
