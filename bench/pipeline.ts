/**
 * Pipeline benchmarks (issue 6), all measured in one run on one machine:
 *   1. throughput, answers scored and learned per second: `factrl run` (every role its own process,
 *      talking over NATS) vs the serial runner (`factrl run --serial`: the same roles, written once,
 *      in one process with no NATS), same config;
 *   2. the share of each role's busy time spent in messaging (fetch, decode, encode, publish, ack);
 *   3. weight sync: the learner publishing version v → every rollout actor sampling with v (or newer).
 * Run: node bin/run-ts.mjs bench/pipeline.ts [--steps N] [--rounds N] [--rollout-actors 1,2,4] [--config FILE]
 *      [--set key=value …] [--serial-only] (the serial runner alone: its CPU per learner step)
 * With several rollout-actor counts, each round runs the serial runner and one actor pipeline per
 * count, the order alternating between rounds, and reports each pipeline's throughput and CPU per
 * learner step as ratios to the serial runner of the same round.
 * (figures in BENCHMARKS.md, "## Pipeline"; only ratios within one round mean much on a shared machine).
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Effect, Fiber, Layer, Queue } from "effect";
import {
  LEARNER_PROGRESS_KEY,
  type LearnerProgress,
  PROMPTS_QUEUE,
  type PromptGroup,
  ROLLOUTS_QUEUE,
  type RolloutGroup,
  SCORED_QUEUE,
  type ScoredGroup,
} from "../actors/index.ts";
import { type ExperimentConfig, loadConfig } from "../configs/index.ts";
import {
  ExperimentLive,
  ensureWorkQueues,
  NatsLive,
  openWorkFetcher,
  POLICY_KEY,
  pinoLoggerLayer,
  publishWork,
  rootLogger,
  startLocalServer,
  WorkOutcome,
  type WorkQueue,
  watchState,
} from "../messaging/index.ts";
import { runSerial } from "../pipeline/index.ts";
import { processTreeCpu, spawnFactrlRun } from "./lib/process-tree.ts";
import { median } from "./lib/stats.ts";

const REPO = resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: {
    config: { type: "string", default: "configs/tiny.yaml" },
    steps: { type: "string", default: "150" },
    rounds: { type: "string", default: "2" },
    set: { type: "string", multiple: true, default: [] },
    "serial-only": { type: "boolean", default: false },
    "rollout-actors": { type: "string", default: "2" },
  },
});
/**
 * The benchmark's config: tiny's world and policy with the quick start's batch shape (G = 8, 8 groups a
 * step, 4 prompts a rollout batch, 24 groups in flight; tiny.yaml narrows the window to 6); evaluation
 * off (the throughput is the learning loop's); a checkpoint every 10 steps. `--set` overrides any of
 * it; the rollout actors' count is `--rollout-actors`'s, per arm.
 */
const SETS = [
  `learner.totalSteps=${args.steps}`,
  "rollout.groupSize=8",
  "learner.groupsPerStep=8",
  "rollout.batch=4",
  "curation.maxGroupsInFlight=24",
  "learner.checkpointEvery=10",
  "actors.evaluator=0",
  "evaluation.every=0",
  // The quick start's heartbeat (tiny.yaml beats every 0.5 s so that tests see actors sooner).
  "runtime.heartbeatMs=2000",
  ...(args.set ?? []),
];
const ROLLOUT_ACTORS = args["rollout-actors"]!.split(",").map(Number);
if (!ROLLOUT_ACTORS.every((n) => Number.isInteger(n) && n > 0))
  throw new Error(`--rollout-actors: expected positive integers separated by commas, got ${args["rollout-actors"]}`);
const logger = rootLogger().child({ component: "bench-pipeline" }, { level: "warn" });

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pct = (part: number, whole: number) => `${fmt((100 * part) / whole, 1)} %`;

/** Answers learned and scored per second between the end of learner step 1 and the end of the last step. */
interface Throughput {
  readonly learnedPerSecond: number;
  readonly scoredPerSecond: number;
  readonly windowSeconds: number;
  /** From start (process launch / loop start, loading included) to the end. */
  readonly totalSeconds: number;
  /** CPU seconds used from start to end (every process of the variant, loading included). */
  readonly cpuSeconds: number;
  /** CPU seconds per learner step between the steady-state marks (see cpuMarks), by process role. */
  readonly cpuPerStep: Readonly<Record<string, number>>;
  /**
   * Answer tokens trained on per learner step between the same marks. Runs drift apart in answer
   * length (an update costs with it), so CPU per trained token compares the same work.
   */
  readonly answerTokensPerStep: number;
}

/** Mean answer tokens trained per learner step over the steps in the CPU window. */
const answerTokensPerStep = (
  steps: readonly { readonly step?: number; readonly values: Record<string, number> }[],
  totalSteps: number,
  answersPerStep: number,
) => {
  const { from, to } = cpuMarks(totalSteps);
  const lengths = steps.flatMap((m) =>
    m.step !== undefined && m.step > from && m.step <= to && m.values["learner.answerTokens.mean"] !== undefined
      ? [m.values["learner.answerTokens.mean"]]
      : [],
  );
  return (answersPerStep * sum(lengths)) / Math.max(1, lengths.length);
};

/**
 * The learner steps between which CPU is sampled for `cpuPerStep`: after start-up and the first
 * steps, before the last ones (when processes start to stop).
 */
const cpuMarks = (totalSteps: number) => {
  const from = Math.max(2, Math.round(0.2 * totalSteps));
  return { from, to: Math.max(from + 1, Math.round(0.9 * totalSteps)) };
};

const perStep = (before: Map<string, number>, after: Map<string, number>, steps: number) =>
  Object.fromEntries([...after].map(([role, cpu]) => [role, (cpu - (before.get(role) ?? 0)) / steps]));

/** CPU seconds of the waited-for child processes (and their children): /proc/self/stat's cutime + cstime. */
const childrenCpuSeconds = () => {
  const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ");
  // After "pid (comm) ", field 14 (cutime) and 15 (cstime) are at indices 13 and 14; clock ticks of 1/100 s.
  return (Number(fields[13]) + Number(fields[14])) / 100;
};

/** Payloads of the sizes this config produces, for the messaging cost measurement. */
interface Payloads {
  readonly prompt: PromptGroup;
  readonly rollout: RolloutGroup;
  readonly scored: ScoredGroup;
}

// ── 1a. the serial runner: the same roles in one process, no NATS ───────────────────────────────
/** Durations (ms) of the serial run's operations, to set against the same operations in the actor run. */
interface SyncSplit {
  readonly batchMs: number[];
  readonly updateMs: number[];
  readonly updateCpuMs: number[];
}

async function serialRun(
  config: ExperimentConfig,
): Promise<{ throughput: Throughput; payloads: Payloads; split: SyncSplit }> {
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  const L = config.learner;
  const G = config.rollout.groupSize;
  const outDir = mkdtempSync(join(tmpdir(), "factrl-bench-serial-"));
  const marks = cpuMarks(L.totalSteps);
  const cpuAt = new Map<number, number>();
  const stepEnds: number[] = [];
  let scoredAtStep1 = 0;
  let scoredAtEnd = 0;
  let last: ScoredGroup | undefined;
  // Every group is scored, used or not: the ledger's settled count times G.
  const scoredAnswers = (p: LearnerProgress) => (p.consumed + p.stale + p.zeroVariance + p.offPolicy + p.invalid) * G;
  const result = await Effect.runPromise(
    Effect.scoped(
      runSerial(
        { ...config, experiment: `bench-serial-${process.pid}`, output: { ...config.output, dir: outDir } },
        {
          onStep: ({ groups, progress }) => {
            stepEnds.push(performance.now());
            if (progress.step === marks.from || progress.step === marks.to) {
              const used = process.cpuUsage();
              cpuAt.set(progress.step, (used.user + used.system) / 1e6);
            }
            if (progress.step === 1) scoredAtStep1 = scoredAnswers(progress);
            scoredAtEnd = scoredAnswers(progress);
            last = groups[0];
          },
        },
      ),
    ).pipe(Effect.provide(pinoLoggerLayer(logger))),
  );
  const recorded = readFileSync(result.metricsFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { body: { step?: number; values: Record<string, number> } }).body);
  const split: SyncSplit = {
    batchMs: recorded.flatMap(({ values }) =>
      values["rollout.batchMs"] === undefined ? [] : [values["rollout.batchMs"]],
    ),
    updateMs: recorded.flatMap(({ values }) =>
      values["learner.updateMs"] === undefined ? [] : [values["learner.updateMs"]],
    ),
    updateCpuMs: recorded.flatMap(({ values }) =>
      values["learner.updateCpuMs"] === undefined ? [] : [values["learner.updateCpuMs"]],
    ),
  };
  const windowSeconds = (stepEnds.at(-1)! - stepEnds[0]!) / 1000;
  return {
    throughput: {
      learnedPerSecond: ((L.totalSteps - 1) * L.groupsPerStep * G) / windowSeconds,
      scoredPerSecond: (scoredAtEnd - scoredAtStep1) / windowSeconds,
      windowSeconds,
      totalSeconds: (performance.now() - started) / 1000,
      cpuSeconds: (() => {
        const used = process.cpuUsage(cpuStarted);
        return (used.user + used.system) / 1e6;
      })(),
      cpuPerStep: { loop: (cpuAt.get(marks.to)! - cpuAt.get(marks.from)!) / (marks.to - marks.from) },
      answerTokensPerStep: answerTokensPerStep(recorded, L.totalSteps, L.groupsPerStep * G),
    },
    payloads: { prompt: last!.rollout.group, rollout: last!.rollout, scored: last! },
    split,
  };
}

// ── 1b. the actor pipeline: `factrl run`, every role its own process ──────────────────────────────
interface MetricsLine {
  readonly time: number;
  readonly sender: string;
  readonly step?: number;
  readonly values: Record<string, number>;
  readonly tags: Record<string, string>;
}

interface PolicyAnnouncement {
  readonly version: number;
  readonly publishedAt: number;
  /** When this process's KV watch delivered it. */
  readonly seenAt: number;
}

async function actorPipeline(natsUrl: string, serverPid: number, round: number, rolloutActors: number) {
  const experiment = `bench-pipeline-${process.pid}-${round}-${rolloutActors}`;
  const outDir = mkdtempSync(join(tmpdir(), "factrl-bench-pipeline-"));
  const layer = Layer.merge(
    NatsLive({ servers: natsUrl, name: "bench-pipeline", logger }),
    ExperimentLive(experiment, "bench"),
  );
  // Watch the policy pointer from outside, to record when each version was published.
  const announcements: PolicyAnnouncement[] = [];
  const watcher = Effect.runFork(
    Effect.gen(function* () {
      const updates = yield* watchState(POLICY_KEY);
      for (;;) {
        const entry = yield* Queue.take(updates);
        announcements.push({ ...entry.value, seenAt: Date.now() });
      }
    }).pipe(Effect.scoped, Effect.provide(layer)),
  );
  // CPU of the run's process tree at the steady-state marks, taken when the learner reports those steps.
  const marks = cpuMarks(Number(args.steps));
  const cpuSnapshots: { step: number; cpu: Map<string, number> }[] = [];
  let runPid: number | undefined;
  const progressWatcher = Effect.runFork(
    Effect.gen(function* () {
      const updates = yield* watchState(LEARNER_PROGRESS_KEY);
      for (;;) {
        const { step } = (yield* Queue.take(updates)).value;
        const next = [marks.from, marks.to][cpuSnapshots.length];
        if (runPid !== undefined && next !== undefined && step >= next) {
          // The run's processes and the NATS server they talk to (the loop needs none).
          cpuSnapshots.push({ step, cpu: new Map([...processTreeCpu(runPid), ...processTreeCpu(serverPid)]) });
        }
      }
    }).pipe(Effect.scoped, Effect.provide(layer)),
  );
  const started = performance.now();
  const cpuStarted = childrenCpuSeconds();
  const logFile = join(outDir, "factrl-run.log");
  const child = spawnFactrlRun(
    args.config!,
    natsUrl,
    [`experiment=${experiment}`, `output.dir=${outDir}`, ...SETS, `actors.rollout=${rolloutActors}`],
    logFile,
  );
  runPid = child.pid;
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  const totalSeconds = (performance.now() - started) / 1000;
  const cpuSeconds = childrenCpuSeconds() - cpuStarted;
  await Effect.runPromise(Fiber.interrupt(watcher));
  await Effect.runPromise(Fiber.interrupt(progressWatcher));
  const [from, to] = cpuSnapshots;
  if (!from || !to) throw new Error(`the learner's progress never reached steps ${marks.from} and ${marks.to}`);
  const cpuPerStep = perStep(from.cpu, to.cpu, to.step - from.step);
  if (code !== 0) throw new Error(`factrl run exited with ${code}; see ${logFile}`);
  const metrics = readFileSync(join(outDir, experiment, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((event) => event.type === "MetricsEvent")
    .map((event): MetricsLine => ({ time: event.time, sender: event.sender, ...event.body }));
  return { experiment, metrics, announcements, totalSeconds, cpuSeconds, cpuPerStep, logFile };
}

const byRole = (metrics: readonly MetricsLine[], role: string) => metrics.filter((m) => m.tags.role === role);
const total = (events: readonly MetricsLine[], key: string) => sum(events.map((e) => e.values[key] ?? 0));

function pipelineThroughput(
  metrics: readonly MetricsLine[],
  config: ExperimentConfig,
  totalSeconds: number,
  cpuSeconds: number,
  cpuPerStep: Throughput["cpuPerStep"],
): Throughput {
  const groupSize = config.rollout.groupSize;
  const steps = byRole(metrics, "learner").sort((a, b) => a.step! - b.step!);
  const first = steps[0]!;
  const last = steps.at(-1)!;
  const windowSeconds = (last.time - first.time) / 1000;
  const consumed = last.values["learner.consumed"]! - first.values["learner.consumed"]!;
  // Scored by reward actors or, when they score, by the rollout actors: both report reward.answers.
  const scoredInWindow = metrics.filter(
    (m) => m.values["reward.answers"] !== undefined && m.time > first.time && m.time <= last.time,
  );
  return {
    learnedPerSecond: (consumed * groupSize) / windowSeconds,
    scoredPerSecond: total(scoredInWindow, "reward.answers") / windowSeconds,
    windowSeconds,
    totalSeconds,
    cpuSeconds,
    cpuPerStep,
    answerTokensPerStep: answerTokensPerStep(
      steps,
      config.learner.totalSteps,
      config.learner.groupsPerStep * groupSize,
    ),
  };
}

// ── 2. messaging cost per received item, measured on the same server with this config's payloads ──
/**
 * The receive side of a work queue as the roles do it when work is waiting (fetch, decode, validate,
 * ack): the roles cannot time it for the reward actor (it happens inside actor.consume), and the
 * fetches the rollout actor and learner time include waiting for work to arrive.
 */
function receiveCostMs<A>(natsUrl: string, queue: WorkQueue<A>, body: A, batch: number) {
  const count = 20 * batch;
  return Effect.gen(function* () {
    yield* ensureWorkQueues([queue]);
    const publishStarted = performance.now();
    for (let i = 0; i < count; i++) yield* publishWork(queue, body, { msgId: `m${i}` });
    const publishMs = (performance.now() - publishStarted) / count;
    const fetcher = yield* openWorkFetcher(queue);
    const started = performance.now();
    let received = 0;
    while (received < count) {
      const items = yield* fetcher.fetch({ max: batch, expiresMs: 1_000 });
      for (const item of items) yield* item.settle(WorkOutcome.done);
      received += items.length;
    }
    return { receiveMs: (performance.now() - started) / count, publishMs };
  }).pipe(
    Effect.provide(
      Layer.merge(
        NatsLive({ servers: natsUrl, name: "bench-receive", logger }),
        ExperimentLive(`bench-receive-${queue.name}-${process.pid}`, "bench"),
      ),
    ),
    Effect.runPromise,
  );
}

// ── the report ───────────────────────────────────────────────────────────────────────────────────
async function main() {
  const config = await Effect.runPromise(loadConfig(join(REPO, args.config!), { set: SETS }));
  const G = config.rollout.groupSize;
  const L = config.learner;
  console.log(
    `# Pipeline benchmark: ${args.config} with ${SETS.join(" ")} — ${L.totalSteps} steps × ${L.groupsPerStep} groups × G=${G}, ` +
      `${config.rollout.maxNewTokens} new tokens, rollout batch ${config.rollout.batch}, actors ${JSON.stringify(config.actors)}`,
  );
  if (args["serial-only"]) {
    // The serial runner alone: its CPU per learner step (serial-runner overhead, BENCHMARKS.md § Pipeline).
    for (let round = 0; round < Number(args.rounds); round++) {
      const { throughput: t } = await serialRun(config);
      console.log(
        `serial round ${round + 1}: ${fmt(t.cpuPerStep.loop!, 3)} CPU s / learner step, ` +
          `${fmt(t.learnedPerSecond)} answers learned / s, ${fmt(t.totalSeconds)} s in all`,
      );
    }
    return;
  }
  const server = await startLocalServer();
  try {
    // Rounds alternate which variant goes first, so a change in the machine's load hits both alike.
    const rounds: { sync: Throughput; actors: Map<number, Throughput>; load: string }[] = [];
    let sync: Awaited<ReturnType<typeof serialRun>> | undefined;
    let run: Awaited<ReturnType<typeof actorPipeline>> | undefined;
    const arms: ("sync" | number)[] = ["sync", ...ROLLOUT_ACTORS];
    for (let round = 0; round < Number(args.rounds); round++) {
      const load = loadavg()[0]!.toFixed(1);
      const actors = new Map<number, Throughput>();
      for (const arm of round % 2 === 0 ? arms : [...arms].reverse()) {
        console.log(
          `round ${round + 1}: running the ${arm === "sync" ? "serial runner (factrl run --serial)" : `actor pipeline (factrl run, ${arm} rollout actors)`} …`,
        );
        if (arm === "sync") sync = await serialRun(config);
        else {
          run = await actorPipeline(server.url, server.pid, round, arm);
          actors.set(arm, pipelineThroughput(run.metrics, config, run.totalSeconds, run.cpuSeconds, run.cpuPerStep));
        }
      }
      rounds.push({ sync: sync!.throughput, actors, load: `${load} → ${loadavg()[0]!.toFixed(1)}` });
    }
    if (!sync || !run) throw new Error("--rounds must be at least 1");
    console.log("measuring the receive cost per work item …");
    const measured = {
      prompts: await receiveCostMs(server.url, PROMPTS_QUEUE, sync.payloads.prompt, config.rollout.batch),
      rollouts: await receiveCostMs(server.url, ROLLOUTS_QUEUE, sync.payloads.rollout, 1),
      scored: await receiveCostMs(server.url, SCORED_QUEUE, sync.payloads.scored, L.groupsPerStep),
    };
    const cost = {
      prompts: measured.prompts.receiveMs,
      rollouts: measured.rollouts.receiveMs,
      scored: measured.scored.receiveMs,
    };

    console.log("\n## 1. Throughput (steady state: end of learner step 1 → end of the last step)\n");
    console.log(
      "| round (load avg. start → end) | variant | answers learned / s | answers scored / s | window | total wall (start-up included) | CPU s (start-up included) |",
    );
    console.log("|---|---|---|---|---|---|---|");
    for (const [i, r] of rounds.entries()) {
      for (const [name, t] of [
        ["serial runner, one process", r.sync] as const,
        ...[...r.actors].map(([n, t]) => [`actor pipeline, ${n} rollout actors`, t] as const),
      ]) {
        console.log(
          `| ${i + 1} (${r.load}) | ${name} | ${fmt(t.learnedPerSecond)} | ${fmt(t.scoredPerSecond)} | ${fmt(t.windowSeconds)} s | ${fmt(t.totalSeconds)} s | ${fmt(t.cpuSeconds)} s |`,
        );
      }
      for (const [n, actors] of r.actors) {
        console.log(
          `| ${i + 1} | **ratio actors (${n} rollout) / serial** | **${fmt(actors.learnedPerSecond / r.sync.learnedPerSecond, 2)}×** | ` +
            `${fmt(actors.scoredPerSecond / r.sync.scoredPerSecond, 2)}× | | ${fmt(r.sync.totalSeconds / actors.totalSeconds, 2)}× | ${fmt(actors.cpuSeconds / r.sync.cpuSeconds, 2)}× the CPU |`,
        );
      }
    }
    console.log("\n### Against the serial runner, by rollout actors (goal: throughput ≥ 1.0×, CPU per step ≤ 1.2×)\n");
    console.log(
      "| rollout actors | throughput ratio (answers learned / s) | CPU per learner step ratio | answer tokens per step ratio | CPU per trained token ratio | rounds (throughput / CPU per step / tokens / CPU per token) |",
    );
    console.log("|---|---|---|---|---|---|");
    for (const n of ROLLOUT_ACTORS) {
      const ratios = rounds.map((r) => {
        const actors = r.actors.get(n)!;
        const cpu = sum(Object.values(actors.cpuPerStep)) / r.sync.cpuPerStep.loop!;
        const tokens = actors.answerTokensPerStep / r.sync.answerTokensPerStep;
        return {
          throughput: actors.learnedPerSecond / r.sync.learnedPerSecond,
          cpu,
          tokens,
          cpuPerToken: cpu / tokens,
        };
      });
      const med = (key: keyof (typeof ratios)[number]) => fmt(median(ratios.map((x) => x[key])), 2);
      console.log(
        `| ${n} | **${med("throughput")}×** | **${med("cpu")}×** | ${med("tokens")}× | **${med("cpuPerToken")}×** | ` +
          `${ratios.map((x) => [x.throughput, x.cpu, x.tokens, x.cpuPerToken].map((r) => `${fmt(r, 2)}×`).join(" / ")).join("; ")} |`,
      );
    }
    const cores = availableParallelism();
    console.log(
      `\nCPU seconds per learner step, steady state (steps ${cpuMarks(L.totalSteps).from} → ${cpuMarks(L.totalSteps).to}; ` +
        `the pipeline's by process). With ${cores} cores to itself the pipeline can go at most ${cores} × loop / pipeline ` +
        "times as fast as the loop:\n",
    );
    const roles = [
      ...new Set(rounds.flatMap((r) => [...r.actors.values()].flatMap((t) => Object.keys(t.cpuPerStep)))),
    ].sort();
    console.log(
      `| round | rollout actors | loop | pipeline | ${roles.join(" | ")} | ceiling ${cores} × loop / pipeline |`,
    );
    console.log(`|---|---|---|---|${roles.map(() => "---|").join("")}---|`);
    for (const [i, r] of rounds.entries()) {
      for (const [n, actors] of r.actors) {
        const loopCpu = r.sync.cpuPerStep.loop!;
        const pipelineCpu = sum(Object.values(actors.cpuPerStep));
        console.log(
          `| ${i + 1} | ${n} | ${fmt(loopCpu, 3)} | ${fmt(pipelineCpu, 3)} | ${roles.map((role) => fmt(actors.cpuPerStep[role] ?? 0, 3)).join(" | ")} | ${fmt((cores * loopCpu) / pipelineCpu, 2)}× |`,
        );
      }
    }
    console.log(`\nSections 2 and 3 read the last actor run (round ${rounds.length}, ${run.experiment}).`);
    const pipelineOps = (role: string, key: string) => byRole(run.metrics, role).map((m) => m.values[key]!);
    console.log(
      "\nThe same operations in the last round (median ms; contention for the cores shows as a ratio above 1):\n",
    );
    console.log("| operation | serial runner | actor pipeline | ratio |");
    console.log("|---|---|---|---|");
    for (const [name, syncMs, pipelineMs] of [
      ["sample a rollout batch (+ references)", sync.split.batchMs, pipelineOps("rollout", "rollout.batchMs")],
      ["GRPO update", sync.split.updateMs, pipelineOps("learner", "learner.updateMs")],
      ["GRPO update, the learner's CPU", sync.split.updateCpuMs, pipelineOps("learner", "learner.updateCpuMs")],
    ] as const) {
      console.log(
        `| ${name} | ${fmt(median(syncMs), 0)} | ${fmt(median(pipelineMs), 0)} | ${fmt(median(pipelineMs) / median(syncMs), 2)}× |`,
      );
    }
    const idle = (role: string, key: string) => sum(pipelineOps(role, key)) / 1000;
    console.log(
      `\nwaiting for work in the last actor run: rollout actors ${fmt(idle("rollout", "rollout.fetchMs"))} s fetching prompts ` +
        `(vs ${fmt(idle("rollout", "rollout.batchMs"))} s sampling, both actors together); learner ${fmt(idle("learner", "learner.collectMs"))} s ` +
        `collecting scored groups (vs ${fmt(idle("learner", "learner.updateMs"))} s updating)`,
    );
    const learner = byRole(run.metrics, "learner").sort((a, b) => a.step! - b.step!);
    const finalProgress = learner.at(-1)!.values;
    console.log(
      `\nlearner: consumed ${finalProgress["learner.consumed"]}, stale ${finalProgress["learner.drops.stale"]}, ` +
        `zero-variance ${finalProgress["learner.drops.zeroVariance"]}, duplicates ${finalProgress["learner.drops.duplicates"]}`,
    );

    // ── 2. messaging share per role ──
    const rollout = byRole(run.metrics, "rollout");
    const reward = byRole(run.metrics, "reward");
    const promptsReceived = total(rollout, "rollout.groups");
    const scoredReceived =
      finalProgress["learner.consumed"]! +
      finalProgress["learner.drops.stale"]! +
      finalProgress["learner.drops.zeroVariance"]! +
      finalProgress["learner.drops.duplicates"]!;
    const rows = [
      {
        role: "rollout",
        work: total(rollout, "rollout.batchMs") + total(rollout, "rollout.syncMs") + total(rollout, "reward.scoreMs"),
        workLabel: reward.length > 0 ? "sampling + weight loads" : "sampling + weight loads + scoring",
        // The loop's waits for acks (publish-behind: a batch's acks arrive while the next one is sampled).
        timed: total(rollout, "rollout.publishMs"),
        receive: promptsReceived * cost.prompts,
        timedFetch: total(rollout, "rollout.fetchMs"),
      },
      {
        // Several groups in hand at once: one group's publish wait overlaps another's scoring, so the
        // role's own wall-clock split counts (stalled = groups in hand, none being scored).
        role: "reward",
        work: total(reward, "reward.busyMs") - total(reward, "reward.stalledMs"),
        workLabel: "scoring",
        timed: total(reward, "reward.stalledMs"),
        receive: reward.length * cost.rollouts,
        timedFetch: Number.NaN,
      },
      {
        role: "learner",
        work: total(learner, "learner.stepMs") - total(learner, "learner.publishMs"),
        workLabel: "update + weight export + checkpoints",
        timed: total(learner, "learner.publishMs"),
        receive: scoredReceived * cost.scored,
        timedFetch: total(learner, "learner.collectMs"),
      },
    ].filter((row) => row.role !== "reward" || reward.length > 0);
    console.log("\n## 2. Messaging share of each role's busy time\n");
    console.log(
      `receive cost per item (fetch + decode + ack, work waiting; same server, this config's payloads): ` +
        `prompt group ${fmt(cost.prompts, 2)} ms, rollout group ${fmt(cost.rollouts, 2)} ms, scored group ${fmt(cost.scored, 2)} ms`,
    );
    console.log(
      `publish cost per item, same measurement (one after another, each awaiting its stream ack): prompt group ` +
        `${fmt(measured.prompts.publishMs, 2)} ms, rollout group ${fmt(measured.rollouts.publishMs, 2)} ms, scored group ` +
        `${fmt(measured.scored.publishMs, 2)} ms; in the run, publish → every ack in: a rollout batch ${fmt(median(rollout.map((m) => m.values["rollout.ackMs"]!)), 2)} ms (median), ` +
        `a scored group ${fmt(median(reward.map((m) => m.values["reward.publishMs"]!)), 2)} ms (median; each group's own wait, overlapping other groups' scoring)\n`,
    );
    console.log(
      "(reward: its wall time with groups in hand and none being scored; rollout and learner: their loops' waits)\n",
    );
    console.log(
      "| role | work (ms) | publish + ack waits, timed (ms) | receive, items × cost (ms) | messaging share of busy | fetch as timed incl. waiting for work (ms) |",
    );
    console.log("|---|---|---|---|---|---|");
    for (const r of rows) {
      const messaging = r.timed + r.receive;
      console.log(
        `| ${r.role} (${r.workLabel}) | ${fmt(r.work, 0)} | ${fmt(r.timed, 0)} | ${fmt(r.receive, 0)} | **${pct(messaging, messaging + r.work)}** | ${Number.isNaN(r.timedFetch) ? "—" : fmt(r.timedFetch, 0)} |`,
      );
    }
    const allMessaging = sum(rows.map((r) => r.timed + r.receive));
    const allWork = sum(rows.map((r) => r.work));
    console.log(`| **all three** | ${fmt(allWork, 0)} | | | **${pct(allMessaging, allMessaging + allWork)}** | |`);

    // ── 3. weight sync ──
    const rolloutActors = [...new Set(rollout.map((m) => m.sender))];
    const firstSampling = (actor: string, version: number) =>
      Math.min(
        ...rollout
          .filter((m) => m.sender === actor && Number(m.tags.policyVersion) >= version)
          .map((m) => m.values["rollout.startedAt"]!),
      );
    const syncs = run.announcements
      .filter((a) => a.version >= 1)
      .map((a) => ({ ...a, reached: Math.max(...rolloutActors.map((actor) => firstSampling(actor, a.version))) }))
      .filter((a) => Number.isFinite(a.reached));
    const latencies = syncs.map((s) => s.reached - s.publishedAt);
    const notices = run.announcements.map((a) => a.seenAt - a.publishedAt);
    const loads = rollout.filter((m, i) => {
      const previous = rollout.slice(0, i).findLast((p) => p.sender === m.sender);
      return previous !== undefined && previous.tags.policyVersion !== m.tags.policyVersion;
    });
    const batches = rollout.map((m) => m.values["rollout.batchMs"]!);
    console.log("\n## 3. Weight sync: version v published → every rollout actor sampling with v or newer\n");
    console.log(
      `versions published: ${run.announcements.length}; reached by every rollout actor (${rolloutActors.length}): ${syncs.length} ` +
        `(the rest were superseded before any batch started, or published after the rollouts stopped)`,
    );
    console.log("| what | median | max |");
    console.log("|---|---|---|");
    console.log(
      `| publish → every rollout actor samples with it | ${fmt(median(latencies), 0)} ms | ${fmt(Math.max(...latencies), 0)} ms |`,
    );
    console.log(
      `| publish → KV watch delivers the pointer (bench's own watch) | ${fmt(median(notices), 0)} ms | ${fmt(Math.max(...notices), 0)} ms |`,
    );
    console.log(
      `| weight load in a rollout actor (fetch blob + import) | ${fmt(median(loads.map((m) => m.values["rollout.syncMs"]!)), 0)} ms | ${fmt(Math.max(...loads.map((m) => m.values["rollout.syncMs"]!)), 0)} ms |`,
    );
    console.log(
      `| a rollout batch (the wait for the batch in progress) | ${fmt(median(batches), 0)} ms | ${fmt(Math.max(...batches), 0)} ms |`,
    );
    console.log(`\nfactrl run log: ${run.logFile}`);
  } finally {
    await server.stop();
  }
}

await main();
