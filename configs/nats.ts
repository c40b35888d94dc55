/**
 * From the config's `nats:` section to the messaging layer's connection options, and to the
 * arguments of an embedded nats-server with the same credentials.
 */
import { readFileSync } from "node:fs";
import { Effect } from "effect";
import type { ConnectionOptions } from "../messaging/index.ts";
import { ConfigError } from "./loader.ts";
import type { NatsSection } from "./schema.ts";

/** Connection options for `url` with the config's auth and TLS; an unreadable nkey file is a ConfigError. */
export const natsConnectionOptions = (
  nats: NatsSection,
  url: string,
  name: string,
): Effect.Effect<Omit<ConnectionOptions, "logger" | "connectAttempts">, ConfigError> =>
  Effect.try({ try: () => connectionOptionsOrThrow(nats, url, name), catch: (error) => error as ConfigError });

function connectionOptionsOrThrow(
  nats: NatsSection,
  url: string,
  name: string,
): Omit<ConnectionOptions, "logger" | "connectAttempts"> {
  const auth = nats.auth;
  const options: { -readonly [K in keyof ConnectionOptions]: ConnectionOptions[K] } = {
    servers: url.split(",").map((server) => server.trim()),
    name,
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
        throw new ConfigError({ source: "nats.auth.nkey", problems: [`cannot read ${auth.nkey}: ${String(error)}`] });
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
