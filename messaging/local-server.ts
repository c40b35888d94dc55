/**
 * A local `nats-server` child process with JetStream: used by tests and by `factrl run` when the
 * config names no server. It picks a free port itself (`-p -1`), so there are no port races; we read
 * the port back from its log line.
 *
 * Durability: a server that knows `sync_interval: always` (nats-server ≥ 2.10) is started with it, so
 * every JetStream write reaches the disk before it is acknowledged (Jepsen, 2025, lost acknowledged
 * writes under the default of a sync every 2 minutes). An older server (Debian's 2.9.10) refuses
 * the setting; it starts as before, with one warning per process saying what is at risk.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { Data, Effect, type Scope } from "effect";
import { rootLogger } from "./log.ts";

export class LocalServerError extends Data.TaggedError("LocalServerError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

export interface LocalServerOptions {
  /** Port to listen on; by default the server picks a free one. */
  readonly port?: number;
  /** JetStream store directory; by default a fresh temporary directory, removed on stop. */
  readonly storeDir?: string;
  /**
   * A config file that says everything about JetStream (store, sync): the server gets `-c FILE` and
   * the port, no `-js`/`-sd` (`storeDir` must name the store it sets). Cluster nodes start this way.
   */
  readonly configFile?: string;
  /** Extra command-line arguments (e.g. `--user`/`--pass`, `-c config`). */
  readonly extraArgs?: readonly string[];
  /** How long to wait for the server to listen. */
  readonly startTimeoutMs?: number;
  /**
   * Sync every JetStream write to disk before acknowledging it (`sync_interval: always`). Default:
   * whenever the server supports it. `true` fails on a server that does not; `false` keeps the
   * server's default (a sync every 2 minutes), e.g. to measure what the setting costs.
   */
  readonly syncAlways?: boolean;
}

export interface LocalServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number;
  /** Whether the server syncs every JetStream write to disk before acknowledging it. */
  readonly syncAlways: boolean;
  /** Graceful stop (SIGTERM, then SIGKILL after a grace period); removes a temporary store. */
  readonly stop: () => Promise<void>;
  /** Hard kill, keeping the store: for fault tests that restart the server on the same port and store. */
  readonly kill: () => Promise<void>;
  /** The last lines the server logged (up to 1 MB of them). */
  readonly log: () => string;
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

const MAX_LOG = 1_000_000;

const LISTENING = /Listening for client connections on [^\s]*:(\d+)/;

export const SYNC_ALWAYS_CONFIG = "jetstream {\n  sync_interval: always\n}\n";

/** What the server says its version is (`nats-server: v2.9.10`), or "unknown version". */
export function serverVersion(binary: string): string {
  const out = spawnSync(binary, ["--version"], { encoding: "utf8", timeout: 5_000 });
  return /v?\d+\.\d+\.\d+\S*/.exec(`${out.stdout ?? ""}`)?.[0] ?? "unknown version";
}

const syncSupport = new Map<string, boolean>();

/** Whether `binary` accepts `sync_interval: always`: asks the server to check such a config (`-t`), once per binary. */
export function supportsSyncAlways(binary: string, configFile: string): boolean {
  const known = syncSupport.get(binary);
  if (known !== undefined) return known;
  const check = spawnSync(binary, ["-c", configFile, "-t"], { encoding: "utf8", timeout: 10_000 });
  const supported = check.status === 0;
  syncSupport.set(binary, supported);
  return supported;
}

const warnedAbout = new Set<string>();

/** Says once per process and binary what a server without sync_interval puts at risk, and what to do. */
export function warnNoSyncAlways(binary: string): void {
  if (warnedAbout.has(binary)) return;
  warnedAbout.add(binary);
  rootLogger()
    .child({ component: "nats-server" })
    .warn(
      { binary, version: serverVersion(binary) },
      "this nats-server does not support sync_interval: always (it needs nats-server >= 2.10; >= 2.10.23 preferred), " +
        "so JetStream writes reach the disk only every 2 minutes: an OS crash or power loss can lose work and acks " +
        "the server had already confirmed (published groups vanish, acked groups come back). Install a newer " +
        "nats-server and point FACTRL_NATS_SERVER_BIN at it, or run your own server with sync_interval: always " +
        "(docs/operations.md).",
    );
}

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
  // The config file is read at start only; it goes once the server listens (or fails to start).
  const configDir = await mkdtemp(join(tmpdir(), "factrl-nats-config-"));
  const configFile = join(configDir, "sync-always.conf");
  await writeFile(configFile, SYNC_ALWAYS_CONFIG);
  const supported =
    options.syncAlways === false || options.configFile !== undefined ? false : supportsSyncAlways(binary, configFile);
  if (options.syncAlways === true && !supported) {
    await rm(configDir, { recursive: true, force: true });
    throw new LocalServerError({
      reason: `${binary} (${serverVersion(binary)}) does not support sync_interval: always; it needs nats-server 2.10 or newer`,
    });
  }
  if (options.syncAlways === undefined && !supported) warnNoSyncAlways(binary);
  const args = [
    ...(options.configFile !== undefined ? ["-c", options.configFile] : supported ? ["-c", configFile] : []),
    "-a",
    "127.0.0.1",
    "-p",
    String(options.port ?? -1),
    ...(options.configFile !== undefined ? [] : ["-js", "-sd", storeDir]),
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });

  // What the server said (the last MAX_LOG characters): tests read its complaints, e.g. permission violations.
  let log = "";
  const port = await new Promise<number>((resolve, reject) => {
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
        // Keep draining the pipes so the server never blocks on a full one, keeping the tail of what it says.
        const keep = (more: Buffer) => {
          log = (log + more.toString()).slice(-MAX_LOG);
        };
        child.stderr?.on("data", keep);
        child.stdout?.on("data", keep);
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
  }).finally(() => rm(configDir, { recursive: true, force: true }));

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
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    pid: child.pid ?? -1,
    syncAlways: supported,
    log: () => log,
    stop,
    kill,
  };
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
