/**
 * A local `nats-server` child process with JetStream: used by tests and by `factrl run` when the
 * config names no server. It picks a free port itself (`-p -1`), so there are no port races; we read
 * the port back from its log line.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Data, Effect, type Scope } from "effect";

export class LocalServerError extends Data.TaggedError("LocalServerError")<{ readonly reason: string }> {}

export interface LocalServerOptions {
  /** Port to listen on; by default the server picks a free one. */
  readonly port?: number;
  /** JetStream store directory; by default a fresh temporary directory, removed on stop. */
  readonly storeDir?: string;
  /** Extra command-line arguments (e.g. `--user`/`--pass`, `-c config`). */
  readonly extraArgs?: readonly string[];
  /** How long to wait for the server to listen. */
  readonly startTimeoutMs?: number;
}

export interface LocalServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** Graceful stop (SIGTERM, then SIGKILL after a grace period); removes a temporary store. */
  readonly stop: () => Promise<void>;
  /** Hard kill, keeping the store: for fault tests that restart the server on the same port and store. */
  readonly kill: () => Promise<void>;
}

export function findNatsServerBinary(): string | undefined {
  const explicit = process.env.FACTRL_NATS_SERVER_BIN;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, "nats-server");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const LISTENING = /Listening for client connections on [^\s]*:(\d+)/;

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function startLocalServer(options: LocalServerOptions = {}): Promise<LocalServer> {
  const binary = findNatsServerBinary();
  if (!binary) {
    throw new LocalServerError({
      reason:
        "nats-server not found on PATH (or FACTRL_NATS_SERVER_BIN). Install it (`apt-get install nats-server`) " +
        "or point factrl at a running server with --nats URL / FACTRL_NATS_URL.",
    });
  }
  const ownsStore = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "factrl-nats-")));
  const args = [
    "-a",
    "127.0.0.1",
    "-p",
    String(options.port ?? -1),
    "-js",
    "-sd",
    storeDir,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });

  const port = await new Promise<number>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new LocalServerError({
          reason: `nats-server did not start within ${options.startTimeoutMs ?? 10_000} ms:\n${log}`,
        }),
      );
    }, options.startTimeoutMs ?? 10_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const match = LISTENING.exec(log);
      if (match?.[1]) {
        clearTimeout(timer);
        child.stderr?.off("data", onData);
        child.stdout?.off("data", onData);
        // Keep draining the pipes so the server never blocks on a full one.
        child.stderr?.resume();
        child.stdout?.resume();
        resolve(Number(match[1]));
      }
    };
    child.stderr?.on("data", onData);
    child.stdout?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(
        new LocalServerError({ reason: `nats-server exited during start (code ${code}, signal ${signal}):\n${log}` }),
      );
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new LocalServerError({ reason: `could not spawn ${binary}: ${error.message}` }));
    });
  });

  // A process that exits without stopping its server (an uncaught error, process.exit) takes the
  // server with it; SIGTERM lets the server shut its store down cleanly on its own.
  const stopWithProcess = () => child.kill("SIGTERM");
  process.once("exit", stopWithProcess);
  child.once("exit", () => process.off("exit", stopWithProcess));

  const kill = async () => {
    child.kill("SIGKILL");
    await waitForExit(child, 5_000);
  };
  const stop = async () => {
    child.kill("SIGTERM");
    if (!(await waitForExit(child, 5_000))) await kill();
    if (ownsStore) await rm(storeDir, { recursive: true, force: true });
  };
  return { url: `nats://127.0.0.1:${port}`, port, storeDir, pid: child.pid ?? -1, stop, kill };
}

/** The local server as a scoped resource: started on acquire, stopped when the scope closes. */
export const localServer = (
  options: LocalServerOptions = {},
): Effect.Effect<LocalServer, LocalServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startLocalServer(options),
      catch: (error) => (error instanceof LocalServerError ? error : new LocalServerError({ reason: String(error) })),
    }),
    (server) => Effect.promise(() => server.stop()),
  );
