/**
 * The GRPO pipeline (`factrl run configs/tiny.yaml`, every role its own process) on a 3-node
 * JetStream cluster with `nats.replicas: 3`. Mid-run, the node leading the scored queue is
 * SIGKILLed and restarted a few seconds later: the run still completes, every published group is
 * accounted for (used + stale + zero-variance + dead-lettered + pending), none is used twice, and
 * the policy pointer moved through every version up to the last, whose weights are readable.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Effect, Layer } from "effect";
import { describe, expect, it } from "vitest";
import { LEARNER_PROGRESS_KEY } from "../actors/topology.ts";
import { connectNats, Experiment, experimentSubjects, getState, Nats, rootLogger } from "../messaging/index.ts";
import { startCli, waitFor } from "./cli-helpers.ts";
import { checkpointUsedGroups, readLedger, readPolicyRecord } from "./ledger.ts";
import { useLocalCluster } from "./local-cluster.ts";

const REPO = resolve(import.meta.dirname, "..");
const TINY = join(REPO, "configs", "tiny.yaml");
const quietLogger = rootLogger().child({ component: "cluster-pipeline-test" }, { level: "error" });

const fixture = useLocalCluster("factrl-cluster-run-");

const withExperiment = <A, E>(experiment: string, effect: Effect.Effect<A, E, Nats | Experiment>) =>
  Effect.runPromise(
    effect.pipe(
      Effect.provide(
        Layer.merge(
          Layer.scoped(
            Nats,
            connectNats({ servers: fixture.cluster.url.split(","), replicas: 3, logger: quietLogger }),
          ),
          Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "cluster-test" }),
        ),
      ),
    ) as Effect.Effect<A, E, never>,
  );

describe("the pipeline on a 3-node cluster", () => {
  it("completes through a SIGKILLed and restarted node: the ledger adds up, no group used twice, no version lost", async () => {
    const experiment = `cluster-run-${process.pid}`;
    const outDir = join(fixture.dir, "runs");
    const run = startCli(
      [
        "run",
        TINY,
        "--nats",
        fixture.cluster.url,
        ...["experiment=" + experiment, `output.dir=${outDir}`, "nats.replicas=3", "learner.totalSteps=6"].flatMap(
          (set) => ["--set", set],
        ),
        ...["learner.checkpointEvery=1", "actors.rollout=2", "runtime.ackWaitMs=3000"].flatMap((set) => ["--set", set]),
      ],
      REPO,
    );
    const learnerStep = () =>
      withExperiment(experiment, getState(LEARNER_PROGRESS_KEY))
        .then((entry) => entry?.value.step ?? 0)
        .catch(() => 0);
    await waitFor("learner step 2", async () => (await learnerStep()) >= 2, 180_000, 500);

    // The node leading the scored queue's stream goes down hard, and comes back 3 s later.
    const leader = await withExperiment(
      experiment,
      Effect.gen(function* () {
        const { manager } = yield* Nats;
        const { subjects } = yield* Experiment;
        const info = yield* Effect.promise(() => manager.streams.info(subjects.stream("scored")));
        return { name: info.cluster?.leader, replicas: info.config.num_replicas };
      }),
    );
    expect(leader.replicas).toBe(3);
    const victim = fixture.cluster.nodes.find((node) => node.name === leader.name)!;
    await victim.kill();
    await new Promise((r) => setTimeout(r, 3_000));
    await victim.start();

    const { code } = await run.exited;
    expect(code, run.output().slice(-3000)).toBe(0);

    const runDir = join(outDir, experiment);
    // The processes were spread over the nodes (the client picks one of the listed servers at random).
    const connectedTo = new Set(
      readdirSync(join(runDir, "logs")).flatMap((file) =>
        readFileSync(join(runDir, "logs", file), "utf8")
          .split("\n")
          .filter((line) => line.includes('"msg":"NATS connected"'))
          .map((line) => JSON.parse(line).server as string),
      ),
    );
    expect(connectedTo.size).toBeGreaterThanOrEqual(2);

    const ledger = await withExperiment(
      experiment,
      Effect.gen(function* () {
        return { ...(yield* readLedger), ...(yield* readPolicyRecord) };
      }),
    );
    // What the node's death cost the learner (a role restarted in its process re-publishes its
    // checkpoint's weights as a new version, so versions may run ahead of steps).
    const learnerTrouble = readFileSync(join(runDir, "logs", "learner-1.log"), "utf8")
      .split("\n")
      .filter((line) => line.startsWith("{") && JSON.parse(line).level >= 40)
      .map((line) => {
        const { msg, cause } = JSON.parse(line) as { msg: string; cause?: string };
        return cause === undefined ? msg : `${msg}: ${cause.split("\n")[0]}`;
      });
    console.info(`learner warnings and errors during the run:\n${learnerTrouble.join("\n")}`);
    expect(ledger.progress).toMatchObject({ step: 6, consumed: 12, done: true });
    expect(ledger.accounted).toBe(ledger.published);
    const used = await checkpointUsedGroups(runDir);
    expect(used).toHaveLength(12);
    expect(new Set(used).size).toBe(12);
    // The pointer moved through every version, one at a time, up to the last; its weights are readable.
    // (Metrics are not a record of versions: they are core NATS messages, and one published while its
    // sender's node is down is dropped — a run here lost the learner's step-3 event.)
    const last = ledger.progress!.policyVersion;
    expect(last).toBeGreaterThanOrEqual(6);
    expect(ledger.pointerVersions).toEqual([last - 4, last - 3, last - 2, last - 1, last]);
    expect(ledger.pointer?.version).toBe(last);
    expect(ledger.finalWeights).toBeGreaterThan(0);
  }, 400_000);
});
