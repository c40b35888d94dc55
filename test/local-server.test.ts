import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { startLocalServer } from "../messaging/local-server.ts";

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
    const pid = Number(out.trim());
    expect(code).not.toBe(0);
    expect(pid).toBeGreaterThan(0);
    const deadline = Date.now() + 5_000;
    while (isRunning(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(isRunning(pid)).toBe(false);
  });
});
