import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { nkeys } from "@nats-io/transport-node";
import { Effect } from "effect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ConnectError, type ConnectionOptions, connectNats, startLocalServer } from "../../messaging/index.ts";

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
    const dir = await mkdtemp(join(tmpdir(), "factrl-tls-"));
    const file = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
    openssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=factrl-test-ca",
      "-keyout",
      file("ca.key"),
      "-out",
      file("ca.pem"),
    );
    openssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=127.0.0.1",
      "-keyout",
      file("server.key"),
      "-out",
      file("server.csr"),
    );
    await writeFile(file("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    openssl(
      "x509",
      "-req",
      "-in",
      file("server.csr"),
      "-CA",
      file("ca.pem"),
      "-CAkey",
      file("ca.key"),
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      file("ext.cnf"),
      "-out",
      file("server.pem"),
    );
    const server = await startLocalServer({
      extraArgs: ["--tls", "--tlscert", file("server.pem"), "--tlskey", file("server.key")],
    });
    try {
      expect(await tryConnect({ servers: server.url, tls: { caFile: file("ca.pem") } })).toBeTypeOf("string");
      const untrusted = await tryConnect({ servers: server.url, tls: {}, connectAttempts: 1 });
      expect((untrusted as ConnectError).kind).toBe("tls");
      const missing = await tryConnect({ servers: server.url, tls: { caFile: file("absent.pem") } });
      expect((missing as ConnectError).kind).toBe("config");
      expect((missing as ConnectError).message).toContain("cannot read TLS CA file");
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
