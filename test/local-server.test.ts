import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { findNatsServerBinary, startLocalServer } from "../messaging/local-server.ts";

/** Running, not exited and not a zombie waiting to be reaped. */
const isRunning = (pid: number): boolean => {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

describe("local nats-server", () => {
  it("the global setup provides a running server", () => {
    expect(inject("natsUrl")).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
  });

  it("starts on a free port and restarts on the same port and store", async () => {
    const first = await startLocalServer();
    expect(first.port).toBeGreaterThan(0);
    await first.kill();
    const second = await startLocalServer({ port: first.port, storeDir: first.storeDir });
    expect(second.port).toBe(first.port);
    await second.stop();
    await first.stop();
  });

  it("goes away with a process that dies without stopping it (an uncaught error)", async () => {
    const module = join(import.meta.dirname, "..", "messaging", "local-server.ts");
    const script = `const { startLocalServer } = await import(${JSON.stringify(module)});
      const server = await startLocalServer();
      console.log(server.pid);
      setTimeout(() => { throw new Error("boom"); }, 10);`;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    const pid = Number(out.trim().split("\n").at(-1)); // after any log line (the sync_interval warning)
    expect(code).not.toBe(0);
    expect(pid).toBeGreaterThan(0);
    const deadline = Date.now() + 5_000;
    while (isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(isRunning(pid)).toBe(false);
  });

  it("syncs every write where the server can: Debian's 2.9.10 cannot, so it starts without, and refuses a demand for it", async () => {
    const server = await startLocalServer();
    try {
      expect(server.syncAlways).toBe(false);
    } finally {
      await server.stop();
    }
    await expect(startLocalServer({ syncAlways: true })).rejects.toMatchObject({
      reason: expect.stringMatching(/does not support sync_interval: always; it needs nats-server 2\.10 or newer/),
    });
  });

  it("starts a server that accepts sync_interval: always with it", async () => {
    const real = findNatsServerBinary();
    const dir = mkdtempSync(join(tmpdir(), "factrl-fake-nats-"));
    // Stands in for a nats-server >= 2.10: it accepts the config check (-t), records how it was
    // started, then runs the real (2.9) server without the config it cannot read.
    const fake = join(dir, "nats-server");
    writeFileSync(
      fake,
      `#!/bin/sh\nif [ "$3" = "-t" ]; then exit 0; fi\necho "$@" > "${dir}/args"\ncat "$2" > "${dir}/config"\nshift 2\nexec "${real}" "$@"\n`,
    );
    chmodSync(fake, 0o755);
    const saved = process.env.FACTRL_NATS_SERVER_BIN;
    process.env.FACTRL_NATS_SERVER_BIN = fake;
    try {
      const server = await startLocalServer();
      await server.stop();
      expect(server.syncAlways).toBe(true);
      expect(readFileSync(join(dir, "args"), "utf8")).toMatch(/^-c \S+ -a 127\.0\.0\.1 -p -1 -js -sd /);
      expect(readFileSync(join(dir, "config"), "utf8")).toMatch(/jetstream \{\s*sync_interval: always\s*\}/);
    } finally {
      if (saved === undefined) delete process.env.FACTRL_NATS_SERVER_BIN;
      else process.env.FACTRL_NATS_SERVER_BIN = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
