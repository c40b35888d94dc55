/**
 * `factrl run` end to end with real processes: a launcher with an embedded nats-server and `echo`
 * actors, driven by the real `status` and `scale` commands.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Layer, ManagedRuntime } from "effect";
import { describe, expect, it } from "vitest";
import { type ActorStatus, listActors } from "../actors/index.ts";
import { connectNats, makeLogger, Nats } from "../messaging/index.ts";
import { isAlive, logLines, runCli, startCli, waitFor, workDir } from "./cli-helpers.ts";

const config = (experiment: string, maxRestarts: number) => `
experiment: ${experiment}
actors: { curator: 0, rollout: 0, reward: 0, learner: 0, evaluator: 0, monitor: 0, echo: 2 }
runtime:
  heartbeatMs: 300
  drainTimeoutMs: 3000
  restart: { maxRestarts: ${maxRestarts}, windowMs: 60000, baseDelayMs: 100, maxDelayMs: 500 }
`;

/** `listActors` over one connection to the launcher's server, kept for the whole test. */
function statusClient(url: string, experiment: string) {
  const logger = makeLogger({ component: "test" }).child({}, { level: "warn" });
  const runtime = ManagedRuntime.make(Layer.scoped(Nats, connectNats({ servers: url, name: "test", logger })));
  return {
    actors: (): Promise<ActorStatus[]> => runtime.runPromise(listActors(experiment, 1_000)),
    close: () => runtime.dispose(),
  };
}

const running = (actors: readonly ActorStatus[]) => actors.filter((a) => a.state === "running");

describe("factrl run (launcher)", () => {
  it("runs actor processes that status lists, scales them, restarts a killed one, and stops cleanly", async () => {
    const experiment = `launch-${process.pid}`;
    const dir = workDir({ "exp.yaml": config(experiment, 5) });

    // --dry-run prints exactly the config the run records.
    const dryRun = runCli(["run", "exp.yaml", "--dry-run", "--set", "seed=11"], dir);
    const launcher = startCli(["run", "exp.yaml", "--set", "seed=11"], dir);
    const dry = await dryRun;
    expect(dry.code).toBe(0);
    const urlFile = join(dir, "runs", experiment, "nats-url");
    const url = await waitFor("the launcher's NATS URL", () => {
      try {
        return readFileSync(urlFile, "utf8").trim() || undefined;
      } catch {
        return undefined;
      }
    });
    expect(readFileSync(join(dir, "runs", experiment, "config.yaml"), "utf8").trimEnd()).toBe(dry.stdout.trimEnd());
    const serverPid = await waitFor(
      "the embedded server's pid",
      () => logLines(launcher.output()).find((line) => line.msg === "embedded nats-server started")?.pid as number,
    );

    const client = statusClient(url, experiment);
    const actorsOn = client.actors;
    const two = await waitFor("two echo actors", async () => {
      const actors = running(await actorsOn());
      return actors.length === 2 ? actors : undefined;
    });
    expect(two.map((a) => a.id)).toEqual(["echo-1", "echo-2"]);

    // status, as a user runs it next to the launcher (URL found under runs/)
    const status = await runCli(["status", "--experiment", experiment], dir);
    expect(status.code).toBe(0);
    const table = status.stdout.trim().split("\n");
    expect(table[0]).toMatch(/^ROLE\s+ID\s+HOST\s+PID\s+STATE\s+UPTIME\s+PROCESSED\s+FAILED\s+POLICY\s+HEARTBEAT$/);
    expect(table.slice(1).map((row) => row.split(/\s+/).slice(0, 2))).toEqual([
      ["echo", "echo-1"],
      ["echo", "echo-2"],
    ]);

    // scale up, then down; status agrees once the change has happened
    const up = await runCli(["scale", "echo", "3", "--experiment", experiment], dir);
    expect(up).toMatchObject({ code: 0, stdout: "echo: 2 → 3 (started echo-3)\n" });
    await waitFor("three echo actors", async () => running(await actorsOn()).length === 3);
    const down = await runCli(["scale", "echo", "1", "--experiment", experiment, "--nats", url], dir);
    expect(down).toMatchObject({ code: 0, stdout: "echo: 3 → 1 (draining echo-3, echo-2)\n" });
    const one = await waitFor("one echo actor", async () => {
      const actors = await actorsOn();
      return actors.length === 1 ? actors : undefined;
    });
    expect(one[0]).toMatchObject({ id: "echo-1", state: "running" });
    for (const gone of two.filter((a) => a.id === "echo-2")) expect(isAlive(gone.pid)).toBe(false);

    // a SIGKILLed actor process comes back (same id, new pid)
    const victim = one[0]!;
    process.kill(victim.pid, "SIGKILL");
    const reborn = await waitFor("echo-1 restarted", async () =>
      running(await actorsOn()).find((a) => a.id === "echo-1" && a.pid !== victim.pid),
    );
    expect(isAlive(reborn.pid)).toBe(true);

    // SIGTERM: everything stops, exit 0, no orphans (actors and the embedded server)
    await client.close();
    launcher.child.kill("SIGTERM");
    expect(await launcher.exited).toEqual({ code: 0, signal: null });
    for (const pid of [reborn.pid, serverPid]) expect(isAlive(pid)).toBe(false);
  }, 150_000);

  it("fails the experiment (exit 1, everything stopped) when an actor keeps dying", async () => {
    const experiment = `fail-${process.pid}`;
    const dir = workDir({ "exp.yaml": config(experiment, 1) });
    const launcher = startCli(["run", "exp.yaml", "--set", "actors.echo=1"], dir);
    const url = await waitFor("the launcher's NATS URL", () => {
      try {
        return readFileSync(join(dir, "runs", experiment, "nats-url"), "utf8").trim() || undefined;
      } catch {
        return undefined;
      }
    });
    const client = statusClient(url, experiment);
    const actorsOn = client.actors;
    let killed = 0;
    let lastPid = 0;
    while (killed < 2) {
      const actor = await waitFor("a running echo actor", async () =>
        running(await actorsOn()).find((a) => a.pid !== lastPid),
      );
      lastPid = actor.pid;
      process.kill(actor.pid, "SIGKILL");
      killed += 1;
    }
    await client.close();
    const exit = await launcher.exited;
    expect(exit.code).toBe(1);
    expect(launcher.output()).toMatch(/experiment failed: echo-1 killed by SIGKILL after 1 restarts/);
    expect(isAlive(lastPid)).toBe(false);
  }, 90_000);
});
