/**
 * `factrl run` end to end with real processes: a launcher with an embedded nats-server and `echo`
 * actors, driven by the real `status` and `scale` commands.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Layer, ManagedRuntime } from "effect";
import { describe, expect, it } from "vitest";
import { type ActorStatus, listActors } from "../actors/index.ts";
import { PROMPTS_QUEUE, type PromptGroup } from "../actors/topology.ts";
import { connectNats, Experiment, experimentSubjects, makeLogger, Nats, publishWork } from "../messaging/index.ts";
import { isAlive, logLines, runCli, startCli, waitFor, workDir } from "./cli-helpers.ts";

const config = (experiment: string, maxRestarts: number) => `
experiment: ${experiment}
actors: { curator: 0, rollout: 0, reward: 0, learner: 0, evaluator: 0, monitor: 0, echo: 2 }
runtime:
  heartbeatMs: 300
  drainTimeoutMs: 3000
  restart: { maxRestarts: ${maxRestarts}, windowMs: 60000, baseDelayMs: 100, maxDelayMs: 500 }
`;

/** `listActors` over one connection to the launcher's server, kept for the whole test; it can also queue prompts. */
function statusClient(url: string, experiment: string) {
  const logger = makeLogger({ component: "test" }).child({}, { level: "warn" });
  const runtime = ManagedRuntime.make(
    Layer.merge(
      Layer.scoped(Nats, connectNats({ servers: url, name: "test", logger })),
      Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "test" }),
    ),
  );
  return {
    actors: (): Promise<ActorStatus[]> => runtime.runPromise(listActors(experiment, 1_000)),
    /** Queues a prompt group for the echo actors; `meta` asks for sleeps, busy-waits, crashes. */
    queuePrompt: (groupId: string, meta: PromptGroup["meta"]) =>
      runtime.runPromise(
        publishWork(
          PROMPTS_QUEUE,
          {
            groupId,
            promptId: groupId,
            suite: "test",
            prompt: "hello",
            meta,
            groupSize: 2,
            createdAt: Date.now(),
          },
          { msgId: groupId },
        ),
      ),
    close: () => runtime.dispose(),
  };
}

/** The launcher's URL, once it has recorded it. */
const launcherUrl = (dir: string, experiment: string) =>
  waitFor("the launcher's NATS URL", () => {
    try {
      return readFileSync(join(dir, "runs", experiment, "nats-url"), "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  });

/** The rows of a `factrl status` table, as cells by column name. */
const statusRows = (table: string) => {
  const [header, ...rows] = table.trimEnd().split("\n");
  const columns = [...header!.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
  return rows.map((row) =>
    Object.fromEntries(
      columns.map((column, i) => [column.name, row.slice(column.at, columns[i + 1]?.at ?? row.length).trim()]),
    ),
  );
};

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
    expect(table[0]).toMatch(
      /^ROLE\s+ID\s+HOST\s+PID\s+STATE\s+UPTIME\s+PROCESSED\s+FAILED\s+RESTARTS\s+POLICY\s+HEARTBEAT\s+NOTE$/,
    );
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
    // A drained actor says "stopped" (and drops out of status) just before its process exits.
    for (const gone of two.filter((a) => a.id === "echo-2"))
      await waitFor(`${gone.id}'s process to exit`, () => !isAlive(gone.pid));

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

  it("counts a role's in-process restart in its progress line and status, and lists a busy actor in every status call", async () => {
    const experiment = `busy-${process.pid}`;
    const dir = workDir({ "exp.yaml": config(experiment, 5) });
    const launcher = startCli(["run", "exp.yaml", "--set", "actors.echo=1"], dir);
    const client = statusClient(await launcherUrl(dir, experiment), experiment);
    const first = await waitFor("echo-1", async () => running(await client.actors()).find((a) => a.id === "echo-1"));

    // A crash inside the role: the runtime restarts it in the same process.
    await client.queuePrompt("crash-1", { crash: true });
    const restarted = await waitFor("echo-1 restarted in its process", async () =>
      running(await client.actors()).find((a) => a.id === "echo-1" && (a.restarts ?? 0) > 0),
    );
    expect(restarted).toMatchObject({ pid: first.pid, restarts: 1 });
    const status = await runCli(["status", "--experiment", experiment], dir);
    expect(statusRows(status.stdout)).toEqual([expect.objectContaining({ ID: "echo-1", RESTARTS: "1" })]);
    const progress = await waitFor(
      "a progress line counting the restart",
      () =>
        logLines(launcher.output())
          .map((line) => String(line.msg))
          .find((msg) => msg.startsWith(`${experiment} `) && / · restarts 1\b/.test(msg)),
      30_000,
    );
    expect(progress).toMatch(/echo 1\/1/);

    // A busy-wait blocks echo-1's event loop: it cannot answer $SRV.STATS, yet status lists it
    // as busy every time, from the record it stored before blocking.
    const busyMs = 15_000;
    await client.queuePrompt("busy-1", { busyMs });
    const busy = await waitFor("echo-1 busy", async () =>
      (await client.actors()).find((a) => a.id === "echo-1" && a.busy !== undefined),
    );
    expect(busy.busy?.what).toMatch(/busy-wait of 15000 ms/);
    const blockEnds = busy.busy!.since + busyMs - 1_000;
    // The command itself, started now (a node process takes seconds to start on a loaded machine).
    const command = runCli(["status", "--experiment", experiment, "--json"], dir);
    let calls = 0;
    for (;;) {
      const listed = await client.actors();
      if (Date.now() > blockEnds) break; // it may have answered after the block
      calls += 1;
      expect(listed.map((a) => [a.id, a.answered, a.busy?.since])).toEqual([["echo-1", false, busy.busy!.since]]);
    }
    expect(calls).toBeGreaterThanOrEqual(5);
    const fromCommand = JSON.parse((await command).stdout) as ActorStatus[];
    expect(fromCommand.map((a) => a.id)).toEqual(["echo-1"]);
    // Afterwards it answers again, no longer busy.
    await waitFor("echo-1 answering again", async () =>
      running(await client.actors()).find((a) => a.id === "echo-1" && a.answered && a.busy === undefined),
    );

    await client.close();
    launcher.child.kill("SIGTERM");
    expect(await launcher.exited).toEqual({ code: 0, signal: null });
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
