/**
 * How an experiment ends, with real processes: `factrl run configs/tiny.yaml` against the test's
 * nats-server, plus an actor joined from "another host" (`factrl actor monitor`, no launcher of its own).
 * Completion is the learner reaching its step budget; a forged drain of the learner ends the run as
 * a failure that says at which step, and the joined actor leaves with the experiment either way.
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect, Either, Layer, ManagedRuntime } from "effect";
import { describe, expect, inject, it } from "vitest";
import { LEARNER_PROGRESS_KEY } from "../actors/topology.ts";
import { CONFIG_KEY } from "../configs/index.ts";
import {
  ControlReplyMessage,
  ControlRequestMessage,
  connectNats,
  decodeEnvelope,
  EXPERIMENT_OUTCOME_KEY,
  Experiment,
  encodeEnvelope,
  envelope,
  experimentSubjects,
  getState,
  Nats,
  rootLogger,
} from "../messaging/index.ts";
import { logLines, startCli, waitFor } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");
const REPO = resolve(import.meta.dirname, "..");
const TINY = join(REPO, "configs", "tiny.yaml");

/** The experiment's state, read (and a drain forged) over a connection of the test's own. */
function experimentClient(experiment: string) {
  const logger = rootLogger().child({ component: "outcome-test" }, { level: "warn" });
  const runtime = ManagedRuntime.make(
    Layer.merge(
      Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "outcome-test", logger })),
      Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "outcome-test" }),
    ),
  );
  const read = <A, I>(key: Parameters<typeof getState<A, I>>[0]) =>
    runtime.runPromise(getState(key).pipe(Effect.map((entry) => entry?.value)));
  return {
    configPublished: () => read(CONFIG_KEY).then((config) => config !== undefined),
    learnerProgress: () => read(LEARNER_PROGRESS_KEY),
    outcome: () => read(EXPERIMENT_OUTCOME_KEY),
    /** A drain request to one actor, as anyone on the server can send it, claiming to be `sender`. */
    forgeDrain: (role: string, id: string, sender: string) =>
      runtime.runPromise(
        Effect.gen(function* () {
          const nats = yield* Nats;
          const request = encodeEnvelope(
            envelope(ControlRequestMessage, { command: "drain", args: {} }, { experiment, sender }),
          );
          const reply = yield* Effect.promise(() =>
            nats.connection.request(experimentSubjects(experiment).control(role, id), request, { timeout: 5_000 }),
          );
          return Either.getOrThrow(decodeEnvelope(reply.data, { accept: [ControlReplyMessage] })).body;
        }),
      ),
    close: () => runtime.dispose(),
  };
}

/** A tiny run without evaluator or monitor (the joined monitor is the only one), and the joined actor. */
async function runWithJoinedActor(experiment: string, sets: readonly string[]) {
  const outDir = await mkdtemp(join(tmpdir(), "factrl-outcome-"));
  const args = ["run", TINY, "--nats", natsUrl, "--set", `experiment=${experiment}`, "--set", `output.dir=${outDir}`];
  const all = [...sets, "actors.evaluator=0", "actors.monitor=0"];
  const run = startCli([...args, ...all.flatMap((s) => ["--set", s])], REPO);
  const client = experimentClient(experiment);
  await waitFor("the launcher to publish the config", () => client.configPublished(), 120_000, 250);
  const joined = startCli(
    ["actor", "monitor", "--experiment", experiment, "--nats", natsUrl, "--id", "monitor-far"],
    REPO,
  );
  return { run, joined, client, runDir: join(outDir, experiment) };
}

describe("how an experiment ends (real processes)", () => {
  it("a forged drain of the learner mid-run is not a completion: exit 1, incomplete at step N, the sender logged", async () => {
    const experiment = `forged-drain-${process.pid}`;
    const { run, joined, client, runDir } = await runWithJoinedActor(experiment, ["learner.totalSteps=1000"]);
    await waitFor("learner step 1", async () => ((await client.learnerProgress())?.step ?? 0) >= 1, 180_000, 500);

    expect(await client.forgeDrain("learner", "learner-1", "forger")).toMatchObject({ ok: true });
    const exit = await run.exited;
    expect(exit.code, run.output().slice(-3000)).toBe(1);
    const step = (await client.learnerProgress())!.step;
    expect(step).toBeGreaterThanOrEqual(1);
    expect(step).toBeLessThan(1000);
    const said = `learner-1 stopped at step ${step} of 1000 without completing: drain control request from "forger"`;
    expect(run.output()).toContain(`factrl: experiment failed: ${said}`);
    expect(await client.outcome()).toMatchObject({ outcome: "failed", reason: said });

    const outcome = readFileSync(join(runDir, "outcome.md"), "utf8");
    expect(outcome).toMatch(new RegExp(`^# ${experiment}: failed — did not complete\n`));
    expect(outcome).toContain(`Learner: incomplete at step ${step} of 1000.`);
    expect(outcome).toContain(said);

    const learnerLog = logLines(readFileSync(join(runDir, "logs", "learner-1.log"), "utf8"));
    expect(learnerLog.find((line) => line.msg === 'drain requested by "forger"')).toMatchObject({
      sender: '"forger"',
    });

    // The actor that joined from outside leaves too, with the exit code of a failed experiment.
    expect(await joined.exited).toEqual({ code: 5, signal: null });
    expect(joined.output()).toContain(`factrl: experiment ${experiment} failed (${said}); monitor-far drained`);
    await client.close();
  }, 300_000);

  it("a learner that reaches its budget completes the experiment, and the joined actor leaves with exit 0 saying why", async () => {
    const experiment = `completes-${process.pid}`;
    const { run, joined, client, runDir } = await runWithJoinedActor(experiment, ["learner.totalSteps=2"]);
    const exit = await run.exited;
    expect(exit.code, run.output().slice(-3000)).toBe(0);
    expect(await client.outcome()).toMatchObject({ outcome: "completed", reason: "learner-1 reached step 2 of 2" });
    const outcome = readFileSync(join(runDir, "outcome.md"), "utf8");
    expect(outcome).toMatch(new RegExp(`^# ${experiment}: completed\n`));
    expect(outcome).toContain("Learner: completed, step 2 of 2.");

    expect(await joined.exited).toEqual({ code: 0, signal: null });
    expect(joined.output()).toContain(
      `monitor actor drained: experiment ${experiment} completed (learner-1 reached step 2 of 2)`,
    );
    await client.close();
  }, 300_000);
});
