/**
 * From the config's `nats:` section to the messaging layer's connection options, and to the
 * arguments of an embedded nats-server with the same credentials.
 */
import { readFileSync } from "node:fs";
import { Effect } from "effect";
import { type ConnectionOptions, experimentSubjects } from "../messaging/index.ts";
import { ConfigError } from "./loader.ts";
import type { NatsAuth, NatsSection, NatsUserKind } from "./schema.ts";

/** Who is connecting: which entry of `nats.roleAuth` applies, in which experiment. */
export interface NatsUser {
  /** A role's name, `launcher` or `dashboard` (a role with no entry in `nats.roleAuth` uses `nats.auth`). */
  readonly kind: NatsUserKind | (string & {});
  readonly experiment: string;
}

/**
 * Connection options for `url` with the config's auth and TLS; an unreadable nkey file is a ConfigError.
 * With `user`, its `nats.roleAuth` entry (when there is one) replaces `nats.auth`, and replies come to
 * the role's own inbox, the only one its generated permissions let it read.
 */
export const natsConnectionOptions = (
  nats: NatsSection,
  url: string,
  name: string,
  user?: NatsUser,
): Effect.Effect<Omit<ConnectionOptions, "logger" | "connectAttempts">, ConfigError> =>
  Effect.try({ try: () => connectionOptionsOrThrow(nats, url, name, user), catch: (error) => error as ConfigError });

function connectionOptionsOrThrow(
  nats: NatsSection,
  url: string,
  name: string,
  user: NatsUser | undefined,
): Omit<ConnectionOptions, "logger" | "connectAttempts"> {
  const roleAuth =
    user === undefined ? undefined : (nats.roleAuth as Readonly<Record<string, NatsAuth>> | undefined)?.[user.kind];
  const auth = roleAuth ?? nats.auth;
  const authField = roleAuth !== undefined ? `nats.roleAuth.${user?.kind}` : "nats.auth";
  const options: { -readonly [K in keyof ConnectionOptions]: ConnectionOptions[K] } = {
    servers: url.split(",").map((server) => server.trim()),
    name,
    replicas: nats.replicas,
    ...(user !== undefined && roleAuth !== undefined
      ? { inboxPrefix: experimentSubjects(user.experiment).inbox(user.kind) }
      : {}),
  };
  if (auth !== undefined) {
    if ("token" in auth) options.token = auth.token;
    else if ("user" in auth) {
      options.user = auth.user;
      options.pass = auth.pass;
    } else if ("creds" in auth) options.credsFile = auth.creds;
    else {
      try {
        options.nkeySeed = readFileSync(auth.nkey, "utf8").trim();
      } catch (error) {
        throw new ConfigError({
          source: `${authField}.nkey`,
          problems: [`cannot read ${auth.nkey}: ${String(error)}`],
        });
      }
    }
  }
  if (nats.tls !== undefined) {
    options.tls = {
      ...(nats.tls.ca !== undefined ? { caFile: nats.tls.ca } : {}),
      ...(nats.tls.cert !== undefined ? { certFile: nats.tls.cert } : {}),
      ...(nats.tls.key !== undefined ? { keyFile: nats.tls.key } : {}),
    };
  }
  return options;
}

/** nats-server arguments giving an embedded server the config's token or user/password. */
export function embeddedServerAuthArgs(nats: NatsSection): string[] {
  const auth = nats.auth;
  if (auth === undefined) return [];
  if ("token" in auth) return ["--auth", auth.token];
  if ("user" in auth) return ["--user", auth.user, "--pass", auth.pass];
  throw new ConfigError({
    source: "nats.auth",
    problems: [
      "nats.auth: creds and nkey need an external server (set nats.url); the embedded one takes token or user/pass",
    ],
  });
}
