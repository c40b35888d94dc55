/** A 3-node JetStream cluster for one test file: started in a fresh temporary directory before its tests, stopped and removed after. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { type LocalCluster, startLocalCluster } from "../messaging/index.ts";

/** `cluster` and `dir` (which also holds the nodes' stores, under `nats/`) are set once the file's tests start. */
export function useLocalCluster(prefix: string): { cluster: LocalCluster; dir: string } {
  const fixture = { cluster: undefined as unknown as LocalCluster, dir: "" };
  beforeAll(async () => {
    fixture.dir = await mkdtemp(join(tmpdir(), prefix));
    fixture.cluster = await startLocalCluster({ nodes: 3, dir: join(fixture.dir, "nats") });
  }, 60_000);
  afterAll(async () => {
    await fixture.cluster?.stop();
    await rm(fixture.dir, { recursive: true, force: true });
  });
  return fixture;
}
