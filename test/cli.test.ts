/** The `factrl` command's contract with scripts: help, exit codes, error messages, and joining an experiment. */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Effect, Layer, ManagedRuntime } from "effect";
import { describe, expect, inject, it } from "vitest";
import { type ActorStatus, listActors } from "../actors/index.ts";
import { PIPELINE_QUEUES } from "../actors/topology.ts";
import { formatStatusTable } from "../cli/commands/status.ts";
import { CONFIG_KEY, decodeConfig, renderConfig } from "../configs/index.ts";
import {
  connectNats,
  EXPERIMENT_OUTCOME_KEY,
  Experiment,
  type ExperimentOutcome,
  ensureWorkQueues,
  experimentSubjects,
  makeLogger,
  Nats,
  putState,
} from "../messaging/index.ts";
import { FACTRL, isAlive, runCli, startCli, waitFor, workDir } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");

describe("factrl command line", () => {
  it("answers help, usage errors, bad configs, missing launchers and unreachable servers with documented exit codes", async () => {
    const dir = workDir({
      "bad.yaml": "experiment: bad.id\nrollout:\n  groupSize: 1\n  tempreature: 0.5\n",
      "ok.yaml":
        "experiment: cli-ok\nactors: { curator: 0, rollout: 0, reward: 0, learner: 0, evaluator: 0, monitor: 0, echo: 1 }\n",
    });
    const [help, badConfig, noLauncher, noActors, unreachable, unknownRole] = await Promise.all([
      runCli(["run", "--help"], dir),
      runCli(["run", "bad.yaml"], dir),
      runCli(["scale", "echo", "2", "--experiment", "nobody-home", "--nats", natsUrl], dir),
      runCli(["status", "--experiment", "nobody-home", "--nats", natsUrl], dir),
      runCli(["run", "ok.yaml", "--nats", "nats://127.0.0.1:1"], dir),
      runCli(["actor", "juggler", "--experiment", "x", "--nats", natsUrl], dir),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: factrl run \[options\] <config>/);
    expect(help.stdout).toMatch(/--dry-run/);
    expect(help.stdout).toMatch(/Exit codes:\n\s+0 {2}success/);

    // Every problem at once, each with its path; nothing started.
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(/invalid config \(bad\.yaml\), 3 problems:/);
    expect(badConfig.stderr).toMatch(/- experiment: expected an id .*found "bad\.id"/);
    expect(badConfig.stderr).toMatch(/- rollout\.groupSize: expected an integer ≥ 2, found 1/);
    expect(badConfig.stderr).toMatch(/- rollout\.tempreature: unknown key \(allowed here: groupSize, temperature/);

    expect(noLauncher.code).toBe(4);
    expect(noLauncher.stderr).toMatch(/no launcher of experiment nobody-home answered/);

    expect(noActors).toMatchObject({ code: 0, stdout: "no live actors in experiment nobody-home\n" });

    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(/NATS server unreachable/);

    expect(unknownRole.code).toBe(2);
    expect(unknownRole.stderr).toMatch(
      /unknown role "juggler" \(available: curator, rollout, reward, evaluator, monitor, echo, retriever, learner\)/,
    );
  }, 90_000);

  it("`factrl actor` joins a running experiment with only the URL and id, and drains on SIGTERM", async () => {
    const experiment = `join-${process.pid}`;
    const config = Effect.runSync(decodeConfig({ experiment, nats: { url: natsUrl }, runtime: { heartbeatMs: 300 } }));
    const logger = makeLogger({ component: "test" }).child({}, { level: "warn" });
    const runtime = ManagedRuntime.make(
      Layer.merge(
        Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "test", logger })),
        Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "test" }),
      ),
    );
    // What a launcher publishes at start; the joining actor reads it from NATS.
    await runtime.runPromise(putState(CONFIG_KEY, config));
    const actor = startCli(
      ["actor", "echo", "--experiment", experiment, "--nats", natsUrl, "--id", "echo-far"],
      workDir(),
    );
    const found = await waitFor("the joining actor", async () => {
      const actors = await runtime.runPromise(listActors(experiment, 1_000));
      return actors.find((a) => a.id === "echo-far" && a.state === "running");
    });
    expect(found).toMatchObject({ role: "echo", pid: actor.child.pid });
    actor.child.kill("SIGTERM");
    expect(await actor.exited).toEqual({ code: 0, signal: null });
    expect(actor.output()).toMatch(/echo actor drained/);
    await runtime.dispose();
  }, 90_000);

  it("an actor joined from another host leaves with the experiment: exit 0 and why on completion, 5 on failure", async () => {
    const experiment = `leave-${process.pid}`;
    const config = Effect.runSync(decodeConfig({ experiment, nats: { url: natsUrl }, runtime: { heartbeatMs: 300 } }));
    const logger = makeLogger({ component: "test" }).child({}, { level: "warn" });
    const runtime = ManagedRuntime.make(
      Layer.merge(
        Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "test", logger })),
        Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "test" }),
      ),
    );
    // What the launcher does: queues and config at start, then the experiment's outcome.
    const launcherSays = (outcome: ExperimentOutcome["outcome"], reason: string) =>
      runtime.runPromise(putState(EXPERIMENT_OUTCOME_KEY, { outcome, reason, at: Date.now() }));
    await runtime.runPromise(ensureWorkQueues(PIPELINE_QUEUES));
    await runtime.runPromise(putState(CONFIG_KEY, config));
    const join = async (id: string) => {
      await launcherSays("running", "started by a launcher");
      const actor = startCli(["actor", "echo", "--experiment", experiment, "--nats", natsUrl, "--id", id], workDir());
      await waitFor(`${id} running`, async () =>
        (await runtime.runPromise(listActors(experiment, 1_000))).find((a) => a.id === id && a.state === "running"),
      );
      return actor;
    };

    const helper = await join("echo-helper");
    await launcherSays("completed", "learner-1 reached step 4 of 4");
    expect(await helper.exited).toEqual({ code: 0, signal: null });
    expect(helper.output()).toMatch(
      `echo actor drained: experiment ${experiment} completed (learner-1 reached step 4 of 4)`,
    );

    const unlucky = await join("echo-unlucky");
    await launcherSays("failed", "reward-1 exited 1 (gave up)");
    expect(await unlucky.exited).toEqual({ code: 5, signal: null });
    expect(unlucky.output()).toMatch(
      `factrl: experiment ${experiment} failed (reward-1 exited 1 (gave up)); echo-unlucky drained and stopped`,
    );
    await runtime.dispose();
  }, 120_000);

  it("status shows a busy actor's section and a silent actor's last heartbeat", () => {
    const now = Date.parse("2030-01-01T12:00:30");
    const actor = (fields: Partial<ActorStatus>): ActorStatus => ({
      role: "learner",
      id: "learner-1",
      host: "gpu-1",
      pid: 42,
      uptimeMs: 90_000,
      processed: 7,
      failed: 0,
      state: "running",
      restarts: 1,
      heartbeatAgeMs: 12_000,
      answered: false,
      ...fields,
    });
    const table = formatStatusTable(
      [
        actor({ busy: { what: "GRPO update", since: now - 12_000 } }),
        actor({ id: "learner-2" }),
        actor({ id: "learner-3", answered: true, heartbeatAgeMs: 500, state: "draining", reason: "SIGTERM" }),
      ],
      now,
    ).split("\n");
    expect(table[0]).toMatch(/RESTARTS\s+POLICY\s+HEARTBEAT\s+NOTE$/);
    expect(table[1]).toMatch(
      /^learner\s+learner-1 .* busy\s+1m30s\s+7\s+0\s+1\s+-\s+12\.0s ago\s+busy since 12:00:18 \(12s\): GRPO update$/,
    );
    expect(table[2]).toMatch(/ silent .* 12\.0s ago\s+no answer; last seen 12:00:18$/);
    expect(table[3]).toMatch(/ draining .* 0\.5s ago\s+SIGTERM$/);
  });

  it("an actor whose launcher dies without a word (SIGKILL) drains and exits by itself", async () => {
    const experiment = `orphan-${process.pid}`;
    const config = Effect.runSync(decodeConfig({ experiment, nats: { url: natsUrl } }));
    const dir = workDir({ "config.yaml": renderConfig(config) });
    // A stand-in launcher: a shell that starts the actor with its own pid as the parent, then waits.
    const shell = spawn(
      "sh",
      [
        "-c",
        `"${process.execPath}" "${FACTRL}" actor echo --experiment ${experiment} --config config.yaml --id echo-o --parent-pid $$ & wait`,
      ],
      { cwd: dir, stdio: "ignore" },
    );
    const logger = makeLogger({ component: "test" }).child({}, { level: "warn" });
    const runtime = ManagedRuntime.make(Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "test", logger })));
    const actor = await waitFor("the actor", async () =>
      (await runtime.runPromise(listActors(experiment, 1_000))).find((a) => a.state === "running"),
    );
    shell.kill("SIGKILL");
    await waitFor("the orphaned actor to exit", () => !isAlive(actor.pid));
    expect(await runtime.runPromise(listActors(experiment, 500))).toEqual([]);
    await runtime.dispose();
  }, 90_000);
});

describe("config problems are found before anything starts (exit 2, every field named)", () => {
  /** `factrl ARGS…` with how long it took. */
  const timed = async (args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}) => {
    const started = Date.now();
    const result = await runCli(args, cwd, env);
    return { ...result, seconds: (Date.now() - started) / 1000 };
  };

  it("a missing model.init, and every other missing path, is a config error within seconds — for run, --dry-run, actor and pretrain", async () => {
    const dir = workDir({
      "no-init.yaml": "experiment: no-init\nmodel: { init: checkpoints/absent }\n",
      "all-paths.yaml": [
        "experiment: all-paths",
        "env: { kind: jsonl, path: prompts/absent.jsonl }",
        "model: { init: checkpoints/half-saved }",
        "nats: { url: 'nats://127.0.0.1:1', auth: { creds: absent.creds }, tls: { ca: absent-ca.pem } }",
        "rewards: { modules: [{ name: format }, { path: absent-reward.ts }] }",
        "",
      ].join("\n"),
      "pretrain.yaml": "output: a-file/base-policy\n",
      "a-file": "",
    });
    mkdirSync(join(dir, "checkpoints/half-saved"), { recursive: true });
    // Alone, so that its time is its own.
    const run = await timed(["run", "no-init.yaml"], dir);
    const [allPaths, remoteLearner, noLearner, pretrain] = await Promise.all([
      timed(["run", "all-paths.yaml", "--dry-run"], dir),
      timed(["actor", "learner", "--experiment", "no-init", "--config", "no-init.yaml", "--nats", natsUrl], dir),
      // Learners elsewhere: this machine does not need the checkpoint.
      timed(["run", "no-init.yaml", "--dry-run", "--set", "actors.learner=0"], dir),
      timed(["pretrain", "pretrain.yaml"], dir),
    ]);

    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`- model.init: no such checkpoint directory ${join(dir, "checkpoints/absent")}`);
    // The issue: found 39 s in, after six learner crashes. Now nothing starts: no server, no run directory,
    // and the time is the command's own start-up (a few seconds; generous here for a loaded machine).
    expect(run.stderr).not.toMatch(/nats-server|spawn/);
    expect(existsSync(join(dir, "runs/no-init"))).toBe(false);
    expect(run.seconds).toBeLessThan(39);

    // --dry-run prints nothing when the config cannot run; every problem is listed at once.
    expect(allPaths).toMatchObject({ code: 2, stdout: "" });
    expect(allPaths.stderr).toMatch(/invalid config \(all-paths\.yaml\), 5 problems:/);
    for (const field of ["nats.auth.creds", "nats.tls.ca", "env.path", "rewards.modules[1].path"])
      expect(allPaths.stderr).toContain(`- ${field}: `);
    expect(allPaths.stderr).toMatch(/- model\.init: .*half-saved has no manifest\.json/);

    expect(remoteLearner.code).toBe(2);
    expect(remoteLearner.stderr).toMatch(/- model\.init: no such checkpoint directory/);
    expect(noLearner.code).toBe(0);

    expect(pretrain.code).toBe(2);
    expect(pretrain.stderr).toMatch(/- output: cannot create .*a-file\/base-policy: .*a-file is not a directory/);
  }, 120_000);

  it("a NATS URL that is not one is a usage error naming it (exit 2), not an unreachable server (exit 3)", async () => {
    const dir = workDir({
      "ok.yaml":
        "experiment: bad-url\nactors: { curator: 0, rollout: 0, reward: 0, learner: 0, evaluator: 0, monitor: 0, echo: 1 }\n",
    });
    const [flag, flagWithStray, websocket, env, config] = await Promise.all([
      runCli(["run", "ok.yaml", "--nats", "htp:/127.0.0.1"], dir),
      // The command line, a port separated by a space.
      runCli(["actor", "echo", "--experiment", "bad-url", "--nats", "htp:/127.0.0.1", "4444"], dir),
      runCli(["status", "--experiment", "bad-url", "--nats", "ws://127.0.0.1:4222"], dir),
      runCli(["status", "--experiment", "bad-url"], dir, { FACTRL_NATS_URL: "htp:/127.0.0.1" }),
      runCli(["run", "ok.yaml", "--set", "nats.url=http://127.0.0.1:4222"], dir),
    ]);
    for (const result of [flag, flagWithStray])
      expect(result).toMatchObject({
        code: 2,
        stderr: expect.stringContaining(
          `option '--nats <url>' argument 'htp:/127.0.0.1' is invalid. expected nats://HOST:PORT or tls://HOST:PORT`,
        ),
      });
    expect(websocket).toMatchObject({ code: 2, stderr: expect.stringMatching(/websocket URLs are not supported/) });
    expect(env).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('FACTRL_NATS_URL: expected nats://HOST:PORT or tls://HOST:PORT, found "htp:/'),
    });
    expect(config).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('- nats.url: expected nats://HOST:PORT or tls://HOST:PORT, found "http://'),
    });
  }, 90_000);

  it("reward module files are loaded before the actors start: one that does not load is a config error naming its field", async () => {
    // The reward designer's own folder: no package.json anywhere above it.
    const dir = workDir({
      "good.ts": `type Item = { answer: string };
export default (options: { scale: number }) => ({
  name: "good", version: "1",
  score: async (batch: Item[]) => batch.map((item) => ({ ok: true, components: { good: item.answer.length * options.scale } })),
});\n`,
      "throws.ts": `throw new Error("JUDGE_KEY is not set");\nexport default {};\n`,
      "half.mjs": `export default { name: "half", version: "1" };\n`,
      "modules.yaml": [
        "experiment: modules",
        "rewards:",
        "  modules:",
        "    - { path: good.ts }",
        "    - { path: throws.ts }",
        "    - { path: half.mjs }",
        "    - { path: absent.ts }",
        "",
      ].join("\n"),
    });
    const [bad, good] = await Promise.all([
      runCli(["run", "modules.yaml", "--dry-run"], dir),
      runCli(["run", "modules.yaml", "--dry-run", "--set", "rewards.modules=[{path: good.ts}]"], dir),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid config \(modules\.yaml\), 3 problems:/);
    expect(bad.stderr).toMatch(
      /- rewards\.modules\[1\]\.path: reward module file .*throws\.ts: cannot load: JUDGE_KEY is not set/,
    );
    expect(bad.stderr).toMatch(
      /- rewards\.modules\[2\]\.path: reward module file .*half\.mjs: not a reward module: score must be a function/,
    );
    expect(bad.stderr).toMatch(/- rewards\.modules\[3\]\.path: no such file .*absent\.ts/);
    expect(bad.stderr).not.toMatch(/rewards\.modules\[0\]/);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/- path: good\.ts/);
  }, 90_000);

  it("an environment that does not build is a config error before anything starts, naming what is wrong", async () => {
    const dir = workDir({
      "env.ts": `export default { kind: "x", description: "d", modalities: ["text"], train: [], eval: [], suites: [] };\n`,
      "prompts.jsonl": '{"prompt": "fine"}\n{"prompt": 3}\n',
      "module.yaml": "experiment: envs\nenv: { kind: module, path: env.ts }\n",
      "jsonl.yaml": "experiment: envs\nenv: { kind: jsonl, path: prompts.jsonl }\n",
      "absent.yaml": "experiment: envs\nenv: { kind: module, path: absent.ts }\n",
      "suites.yaml": "experiment: envs\nevaluation: { suites: [bio, biographies] }\n",
    });
    const [module, jsonl, absent, suites] = await Promise.all([
      runCli(["run", "module.yaml", "--dry-run"], dir),
      runCli(["run", "jsonl.yaml", "--dry-run"], dir),
      runCli(["run", "absent.yaml", "--dry-run"], dir),
      runCli(["run", "suites.yaml", "--dry-run"], dir),
    ]);
    expect(module.code).toBe(2);
    expect(module.stderr).toMatch(/- env: environment module .*env\.ts.*train: no training prompts/);
    expect(jsonl.code).toBe(2);
    expect(jsonl.stderr).toMatch(/- env: .*prompts\.jsonl: 1 bad line\(s\); nothing loaded/);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toMatch(/- env\.path: no such file .*absent\.ts/);
    expect(absent.stderr).not.toMatch(/- env: /);
    expect(suites.code).toBe(2);
    expect(suites.stderr).toMatch(
      /- evaluation\.suites: environment factworld: no suite "biographies" \(its suites: bio, /,
    );
  }, 90_000);
});
