/**
 * The chaos suite: configs/chaos.yaml (the tiny pipeline, every role its own process) on a 3-node
 * JetStream cluster with `nats.replicas: 3`, while a seeded schedule SIGKILLs random actors, the
 * learner and a nats node (restarted on its store a few seconds later) at random learner steps plus a
 * random delay. Beside it runs the same experiment with the same seed, undisturbed, on the test's own
 * server. Afterwards: the chaos run completed; the ledger adds up (published = used + stale +
 * zero-variance + dead-lettered + pending); no group was used twice; the policy pointer never went
 * back, skipped versions only where a learner was killed, and the newest versions' weights are
 * readable; and the final evaluation is within noise of the undisturbed run's (test/chaos.ts).
 *
 * CI runs 5 events over 10 steps. Longer, outside CI (docs/operations.md, "The chaos suite"):
 *   FACTRL_CHAOS_SEED=7 FACTRL_CHAOS_STEPS=40 FACTRL_CHAOS_EVENTS=20 npx vitest run test/chaos.test.ts
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Effect, Fiber, Layer, ManagedRuntime, Queue } from "effect";
import { describe, expect, inject, it } from "vitest";
import { LEARNER_PROGRESS_KEY } from "../actors/topology.ts";
import {
  connectNats,
  Experiment,
  experimentSubjects,
  getBlob,
  getState,
  Nats,
  POLICY_KEY,
  RETAINED_POLICY_VERSIONS,
  rootLogger,
  watchState,
  weightsBlobName,
} from "../messaging/index.ts";
import {
  actorProcesses,
  type ChaosEvent,
  chaosSchedule,
  noiseBound,
  pickOne,
  runEvaluations,
  UNDISTURBED_REWARD_STD,
} from "./chaos.ts";
import { logLines, startCli } from "./cli-helpers.ts";
import { checkpointUsedGroups, readLedger, readPolicyRecord } from "./ledger.ts";
import { useLocalCluster } from "./local-cluster.ts";

const SEED = Number(process.env.FACTRL_CHAOS_SEED ?? 1);
const STEPS = Number(process.env.FACTRL_CHAOS_STEPS ?? 10);
const EVENTS = Number(process.env.FACTRL_CHAOS_EVENTS ?? 5);

const REPO = resolve(import.meta.dirname, "..");
const CHAOS = join(REPO, "configs", "chaos.yaml");
const natsUrl = inject("natsUrl");
const quietLogger = rootLogger().child({ component: "chaos-test" }, { level: "error" });

const fixture = useLocalCluster("factrl-chaos-");

/** One connection to the experiment's state, kept for the whole run (it reconnects to another node). */
const experimentRuntime = (servers: string, experiment: string) =>
  ManagedRuntime.make(
    Layer.merge(
      Layer.scoped(Nats, connectNats({ servers: servers.split(","), replicas: 3, logger: quietLogger })),
      Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "chaos-test" }),
    ),
  );

/** `factrl run configs/chaos.yaml` with the suite's seed and steps against `servers`. */
const startRun = (experiment: string, servers: string, sets: readonly string[]) =>
  startCli(
    [
      "run",
      CHAOS,
      "--nats",
      servers,
      ...[
        `experiment=${experiment}`,
        `output.dir=${join(fixture.dir, "runs")}`,
        `seed=${SEED}`,
        `learner.totalSteps=${STEPS}`,
      ]
        .concat(sets)
        .flatMap((set) => ["--set", set]),
    ],
    REPO,
  );

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe("the chaos schedule", () => {
  it("is a function of its seed: sorted, every kind of target at least once and early, events mid-run", () => {
    const options = { seed: 3, events: 12, totalSteps: 10, nodes: true };
    const schedule = chaosSchedule(options);
    expect(chaosSchedule(options)).toEqual(schedule);
    expect(chaosSchedule({ ...options, seed: 4 })).not.toEqual(schedule);
    expect(schedule).toHaveLength(12);
    expect(new Set(schedule.map((e) => e.target))).toEqual(new Set(["actor", "learner", "node"]));
    // Every kind fires at least once in the first half, whatever the seed: a run cannot end before it.
    for (let seed = 1; seed <= 50; seed += 1) {
      const early = chaosSchedule({ ...options, seed, events: 5 }).filter((e) => e.afterStep <= 4);
      expect(new Set(early.map((e) => e.target))).toEqual(new Set(["actor", "learner", "node"]));
    }
    const order = schedule.map((e) => e.afterStep * 10_000 + e.delayMs);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    for (const e of schedule) {
      expect(e.afterStep).toBeGreaterThanOrEqual(1);
      expect(e.afterStep).toBeLessThanOrEqual(8);
      expect(e.delayMs).toBeLessThanOrEqual(3_000);
      if (e.target === "node") expect(e.downMs).toBeGreaterThanOrEqual(2_000);
      else expect(e.downMs).toBe(0);
    }
    // On one server there is no node to kill.
    expect(chaosSchedule({ ...options, nodes: false }).some((e) => e.target === "node")).toBe(false);
    expect(pickOne(["a", "b", "c"], 0)).toBe("a");
    expect(pickOne(["a", "b", "c"], 0.999)).toBe("c");
    expect(pickOne([], 0.5)).toBeUndefined();
  });
});

describe("chaos", () => {
  it(
    `SIGKILLs of actors, the learner and a nats node (seed ${SEED}, ${EVENTS} events, ${STEPS} steps) lose nothing and change the outcome by no more than noise`,
    async () => {
      const schedule = chaosSchedule({ seed: SEED, events: EVENTS, totalSteps: STEPS, nodes: true });
      console.info(`chaos schedule (FACTRL_CHAOS_SEED=${SEED}):\n${schedule.map((e) => JSON.stringify(e)).join("\n")}`);
      const experiment = `chaos-${process.pid}`;
      const reference = startRun(`chaos-ref-${process.pid}`, natsUrl, []);
      const run = startRun(experiment, fixture.cluster.url, ["nats.replicas=3"]);
      let ended = false;
      void run.exited.then(() => {
        ended = true;
      });

      const state = experimentRuntime(fixture.cluster.url, experiment);
      // Every version the pointer announces, as it announces it.
      const announced: number[] = [];
      const watcher = state.runFork(
        Effect.scoped(
          Effect.gen(function* () {
            const updates = yield* watchState(POLICY_KEY);
            for (;;) announced.push((yield* Queue.take(updates)).value.version);
          }),
        ),
      );
      const learnerStep = () =>
        state
          .runPromise(getState(LEARNER_PROGRESS_KEY))
          .then((entry) => entry?.value.step ?? 0)
          .catch(() => 0);

      /** What each event did, for the assertions and the log. */
      const fired: { event: ChaosEvent; victim: string }[] = [];
      const fire = async (event: ChaosEvent): Promise<string | undefined> => {
        if (event.target === "node") {
          const node = pickOne(fixture.cluster.nodes, event.pick)!;
          await node.kill();
          await sleep(event.downMs);
          await node.start();
          return node.name;
        }
        const candidates = actorProcesses(run.child.pid!).filter(
          (p) => (p.role === "learner") === (event.target === "learner"),
        );
        const victim = pickOne(candidates, event.pick);
        if (victim === undefined) return undefined; // between a kill and its restart: nothing to kill
        try {
          process.kill(victim.pid, "SIGKILL");
          return victim.id;
        } catch {
          return undefined; // exited meanwhile
        }
      };
      for (const event of schedule) {
        while (!ended && (await learnerStep()) < event.afterStep) await sleep(300);
        await sleep(event.delayMs);
        if (ended) break;
        const victim = await fire(event);
        if (victim !== undefined) fired.push({ event, victim });
        console.info(
          `chaos: ${event.target} ${victim ?? "(none alive)"} after step ${event.afterStep} + ${event.delayMs} ms`,
        );
      }

      const [chaosExit, referenceExit] = await Promise.all([run.exited, reference.exited]);
      expect(chaosExit.code, run.output().slice(-3000)).toBe(0);
      expect(referenceExit.code, reference.output().slice(-3000)).toBe(0);
      // Every kind of kill happened, and every killed process was restarted by the launcher — or, killed
      // while the run was already shutting down (when the launcher restarts nothing), recorded as stopped.
      expect(new Set(fired.map((f) => f.event.target))).toEqual(new Set(["actor", "learner", "node"]));
      const restarted = new Set(
        logLines(run.output())
          .filter(
            (line) =>
              /killed by SIGKILL; restarting/.test(String(line.msg)) ||
              (line.signal === "SIGKILL" && /^\S+ stopped$/.test(String(line.msg))),
          )
          .map((line) => line.actor),
      );
      const killedProcesses = fired.filter((f) => f.event.target !== "node").map((f) => f.victim);
      expect(killedProcesses.filter((id) => !restarted.has(id))).toEqual([]);

      const runDir = join(fixture.dir, "runs", experiment);
      const learnerKills = fired.filter((f) => f.event.target === "learner").length;
      const resumes = readFileSync(join(runDir, "logs", "learner-1.log"), "utf8").match(/learner resumed at step/g);
      expect(resumes?.length ?? 0).toBeGreaterThanOrEqual(learnerKills);

      const { ledger, policy, retained } = await state.runPromise(
        Effect.gen(function* () {
          const ledger = yield* readLedger;
          const policy = yield* readPolicyRecord;
          // The versions followers may still load: version 0 (the references, the KL reference) and
          // the last RETAINED_POLICY_VERSIONS the pointer announced, each readable, digest-checked.
          const newest = policy.pointer?.version ?? 0;
          const retained: { version: number; bytes: number }[] = [];
          for (const version of [0, ...announced.filter((v) => v > Math.max(0, newest - RETAINED_POLICY_VERSIONS))]) {
            retained.push({ version, bytes: (yield* getBlob(weightsBlobName(version))).length });
          }
          return { ledger, policy, retained };
        }),
      );
      await Effect.runPromise(Fiber.interrupt(watcher));
      await state.dispose();

      // Nothing lost: every group published is used, dropped (counted), dead-lettered or still queued.
      expect(ledger.progress).toMatchObject({ step: STEPS, consumed: 2 * STEPS, done: true });
      expect(ledger.accounted).toBe(ledger.published);
      // None used twice.
      const used = await checkpointUsedGroups(runDir);
      expect(used).toHaveLength(2 * STEPS);
      expect(new Set(used).size).toBe(2 * STEPS);
      // No version lost: the pointer only moved forward, one version at a time except where a killed
      // learner restarted (it announces newest + 1: a version announced in its progress but never
      // published is skipped), up to the learner's last; the stored versions' weights are readable.
      const last = ledger.progress!.policyVersion;
      expect(announced.at(-1)).toBe(last);
      expect(policy.pointer?.version).toBe(last);
      const steps = announced.slice(1).map((version, i) => version - announced[i]!);
      expect(steps.every((step) => step >= 1)).toBe(true);
      expect(steps.filter((step) => step > 1).length).toBeLessThanOrEqual(learnerKills);
      expect(retained.length).toBeGreaterThanOrEqual(3);
      expect(retained.filter((r) => r.bytes === 0)).toEqual([]);
      expect(policy.finalWeights).toBeGreaterThan(0);

      // The final evaluation (of the last version) is within noise of the undisturbed run's.
      const chaosEval = runEvaluations(runDir).final;
      const referenceEval = runEvaluations(join(fixture.dir, "runs", `chaos-ref-${process.pid}`)).final;
      expect(chaosEval.version).toBe(last);
      const gap = Math.abs(chaosEval.overall.reward - referenceEval.overall.reward);
      console.info(
        `final reward: chaos ${chaosEval.overall.reward.toFixed(3)} (v${chaosEval.version}), undisturbed ` +
          `${referenceEval.overall.reward.toFixed(3)} (v${referenceEval.version}); gap ${gap.toFixed(3)}, bound ` +
          `${noiseBound(UNDISTURBED_REWARD_STD).toFixed(3)}`,
      );
      expect(gap).toBeLessThanOrEqual(noiseBound(UNDISTURBED_REWARD_STD));
      // About 2–3 minutes on a quiet 2-core box; the limit leaves room for a loaded one.
    },
    300_000 + 60_000 * STEPS,
  );
});
