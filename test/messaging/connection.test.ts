import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { nkeys } from "@nats-io/transport-node";
import { Effect } from "effect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ConnectError, type ConnectionOptions, connectNats, startLocalServer } from "../../messaging/index.ts";

/** Test-only certificates (see tls/README.md). */
const tlsFile = (name: string) => join(import.meta.dirname, "tls", name);

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, sink), lines };
}

/** Connects and disconnects; returns the server's name for a success, the ConnectError for a failure. */
const tryConnect = (options: ConnectionOptions) =>
  Effect.runPromise(
    Effect.scoped(connectNats({ connectRetryDelayMs: 50, ...options })).pipe(
      Effect.map((nats) => nats.connection.info?.server_name ?? "connected"),
      Effect.catchAll((error) => Effect.succeed(error)),
    ),
  );

describe("connection", () => {
  it("says the server is unreachable after a bounded retry, instead of hanging", async () => {
    const gone = await startLocalServer();
    await gone.stop(); // a port where nothing listens
    const { logger, lines } = capturingLogger();
    const result = await tryConnect({ servers: gone.url, connectAttempts: 3, logger });
    expect(result).toBeInstanceOf(ConnectError);
    const error = result as ConnectError;
    expect(error.kind).toBe("unreachable");
    expect(error.message).toContain(`NATS server unreachable (${gone.url})`);
    expect(lines.filter((line) => line.kind === "unreachable")).toHaveLength(3); // one line per attempt
  });

  it("says the credentials are wrong, without retrying", async () => {
    const server = await startLocalServer({ extraArgs: ["--user", "factrl", "--pass", "right"] });
    try {
      const { logger, lines } = capturingLogger();
      const wrong = await tryConnect({ servers: server.url, user: "factrl", pass: "wrong", logger });
      expect(wrong).toBeInstanceOf(ConnectError);
      expect((wrong as ConnectError).kind).toBe("auth");
      expect((wrong as ConnectError).message).toMatch(/refused the credentials.*Authorization Violation/);
      expect(lines.filter((line) => line.kind === "auth")).toHaveLength(1);
      const none = await tryConnect({ servers: server.url });
      expect((none as ConnectError).kind).toBe("auth");
      expect(await tryConnect({ servers: server.url, user: "factrl", pass: "right" })).toBeTypeOf("string");
    } finally {
      await server.stop();
    }
  });

  it("authenticates with a token and with an NKey seed", async () => {
    const tokenServer = await startLocalServer({ extraArgs: ["--auth", "s3cret"] });
    const user = nkeys.createUser();
    const dir = await mkdtemp(join(tmpdir(), "factrl-nkey-"));
    const config = join(dir, "nats.conf");
    await writeFile(config, `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }\n`);
    const nkeyServer = await startLocalServer({ extraArgs: ["-c", config] });
    try {
      expect(await tryConnect({ servers: tokenServer.url, token: "s3cret" })).toBeTypeOf("string");
      expect(((await tryConnect({ servers: tokenServer.url, token: "nope" })) as ConnectError).kind).toBe("auth");
      const seed = new TextDecoder().decode(user.getSeed());
      expect(await tryConnect({ servers: nkeyServer.url, nkeySeed: seed })).toBeTypeOf("string");
      const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
      expect(((await tryConnect({ servers: nkeyServer.url, nkeySeed: stranger })) as ConnectError).kind).toBe("auth");
    } finally {
      await tokenServer.stop();
      await nkeyServer.stop();
    }
  });

  it("connects over TLS with the CA, and says TLS failed without it", async () => {
    const server = await startLocalServer({
      extraArgs: ["--tls", "--tlscert", tlsFile("server.pem"), "--tlskey", tlsFile("server.key")],
    });
    try {
      expect(await tryConnect({ servers: server.url, tls: { caFile: tlsFile("ca.pem") } })).toBeTypeOf("string");
      const untrusted = await tryConnect({ servers: server.url, tls: {}, connectAttempts: 1 });
      expect((untrusted as ConnectError).kind).toBe("tls");
      const missing = await tryConnect({ servers: server.url, tls: { caFile: tlsFile("absent.pem") } });
      expect((missing as ConnectError).kind).toBe("config");
      expect((missing as ConnectError).message).toContain("cannot read TLS CA file");
    } finally {
      await server.stop();
    }
  });

  it("presents a client certificate when the server verifies clients", async () => {
    const server = await startLocalServer({
      extraArgs: [
        "--tlsverify",
        "--tlscert",
        tlsFile("server.pem"),
        "--tlskey",
        tlsFile("server.key"),
        "--tlscacert",
        tlsFile("ca.pem"),
      ],
    });
    try {
      const mutual = { caFile: tlsFile("ca.pem"), certFile: tlsFile("client.pem"), keyFile: tlsFile("client.key") };
      expect(await tryConnect({ servers: server.url, tls: mutual })).toBeTypeOf("string");
      // Without a client certificate the server drops the handshake; the client only sees it time out.
      const anonymous = await tryConnect({
        servers: server.url,
        tls: { caFile: tlsFile("ca.pem") },
        connectAttempts: 1,
        connectTimeoutMs: 1_000,
      });
      expect(anonymous).toBeInstanceOf(ConnectError);
    } finally {
      await server.stop();
    }
  });

  it("says a missing creds file is a config problem", async () => {
    const result = await tryConnect({ servers: "nats://127.0.0.1:1", credsFile: "/nonexistent/user.creds" });
    expect((result as ConnectError).kind).toBe("config");
    expect((result as ConnectError).message).toContain("cannot read creds file /nonexistent/user.creds");
  });
});
