import { describe, expect, inject, it } from "vitest";
import { startLocalServer } from "../messaging/local-server.ts";

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
});
