/**
 * The serial runner (`factrl run CONFIG --serial`): the roles in one process, in a fixed order, no
 * NATS. Two runs with one seed give identical metrics and bit-identical weights; a run stopped (or
 * SIGKILLed) and resumed lands on the very same weights as one that ran straight through — the
 * checkpoint holds the Adam state, the ledger and the curator's cursor, and every random choice is a
 * function of (seed, group id, policy version).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../configs/index.ts";
import { lineChartSvg, studyChart } from "../dashboard/index.ts";
import { makeEnvironment } from "../envs/index.ts";
import type { LineageRecord } from "../learner/index.ts";
import { buildRetrievalIndex } from "../models/index.ts";
import { runSerial, type SerialRunOptions } from "../pipeline/serial-runner.ts";
import { runCli, startCli, waitFor } from "./cli-helpers.ts";
import { parseSvg, seriesPoints } from "./svg-reader.ts";

const REPO = resolve(import.meta.dirname, "..");
const TINY = join(REPO, "configs/tiny.yaml");
/** Four steps of the tiny world, checkpoints every 2, an evaluation at versions 2 and 4. */
const SETS = ["actors.evaluator=1", "evaluation.every=2", "learner.totalSteps=4", "learner.checkpointEvery=2"];

const run = async (dir: string, experiment: string, options: SerialRunOptions = {}, sets: string[] = []) => {
  const config = await Effect.runPromise(
    loadConfig(TINY, {
      set: [
        ...SETS,
        ...sets,
        `experiment=${experiment}`,
        `output.dir=${dir}`,
        `model.init=${REPO}/test/fixtures/tiny-policy`,
      ],
    }),
  );
  return Effect.runPromise(Effect.scoped(runSerial(config, options)));
};

/** The metrics a run recorded, without wall-clock figures (the only thing allowed to differ). */
const metricsOf = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const { body } = JSON.parse(line) as {
        body: { step: number; values: Record<string, number>; tags: { role: string } };
      };
      const values = Object.fromEntries(Object.entries(body.values).filter(([k]) => !/(Ms|seconds)$/.test(k)));
      return { role: body.tags.role, step: body.step, values };
    });

const weightsOf = (dir: string, experiment: string) =>
  readFileSync(join(dir, experiment, "checkpoints", "learner", "weights.bin"));

describe("the serial runner", () => {
  it("repeats itself: same seed, identical metrics and bit-identical weights; another seed differs", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-serial-"));
    const a = await run(dir, "a");
    const b = await run(dir, "b");
    await run(dir, "c", {}, ["seed=7"]);
    expect(a).toMatchObject({ completed: true, step: 4, policyVersion: 4 });
    expect(a.report).toBeDefined();
    const metrics = metricsOf(a.metricsFile);
    expect(metrics.filter((m) => m.role === "learner").map((m) => m.step)).toEqual([1, 2, 3, 4]);
    expect(metrics.filter((m) => m.role === "evaluator").map((m) => m.step)).toEqual([2, 4]);
    // Every step reports the reward's terms and components (docs/metrics.md), with their spread.
    const step = metrics.find((m) => m.role === "learner")!.values;
    for (const name of [
      "reward",
      "term.precision",
      "term.precision.supported",
      "term.format.malformed",
      "answerTokens",
    ])
      expect(Object.keys(step), name).toEqual(expect.arrayContaining([`learner.${name}.mean`, `learner.${name}.std`]));
    expect(step["learner.policyLag.max"]).toBe(0);
    // The update is timed on the wall clock and in CPU (the filter above leaves timings out).
    const timed = readFileSync(a.metricsFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { body: { values: Record<string, number> } }).body.values)
      .find((values) => values["learner.updateMs"] !== undefined)!;
    expect(timed["learner.updateMs"]).toBeGreaterThan(0);
    expect(timed["learner.updateCpuMs"]).toBeGreaterThan(0);
    // The report embeds its plots, drawn from the run's own records: 4 steps, versions 0, 2 and 4.
    const report = readFileSync(a.report!, "utf8");
    for (const plot of ["reward", "reward-terms", "eval-hallucinationRate", "eval-detail", "eval-relevanceWinRate"])
      expect(report).toContain(`(report-plots/${plot}.svg)`);
    const plotOf = (name: string) =>
      seriesPoints(parseSvg(readFileSync(join(dir, "a", "report-plots", `${name}.svg`), "utf8")));
    expect(plotOf("reward").get("reward")).toHaveLength(4);
    expect([...plotOf("reward-terms").keys()]).toEqual(expect.arrayContaining(["format", "precision"]));
    const hallucination = plotOf("eval-hallucinationRate");
    expect(hallucination.get("all suites")).toHaveLength(3);
    expect(hallucination.size).toBeGreaterThan(1);
    // Lineage (output.lineageShare 1): every group the learner received, with its fate; the counts add up.
    const lineage = readFileSync(join(dir, "a", "lineage.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as LineageRecord);
    const used = lineage.filter((r) => r.fate === "used");
    expect(used.map((r) => r.step)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    expect(used.every((r) => r.trainedOn === r.step! - 1 && r.policyLag === r.trainedOn! - r.sampledBy)).toBe(true);
    const last = metrics.filter((m) => m.role === "learner").at(-1)!.values;
    expect(lineage.filter((r) => r.fate === "zeroVariance")).toHaveLength(last["learner.drops.zeroVariance"]!);
    expect(used[0]!.answers[0]!.terms).toHaveProperty("precision");
    expect(used[0]!.rewardLatencyMs).toBeGreaterThanOrEqual(0);
    const trace = await runCli(["trace", used[0]!.groupId, join(dir, "a")], REPO);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stdout).toContain(`group ${used[0]!.groupId}`);
    expect(trace.stdout).toContain("used in learner step 1 (trained on policy v0, lag 0)");
    const unknown = await runCli(["trace", "no-such-group", join(dir, "a")], REPO);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("group no-such-group is not in");
    // The study's figure: one line per arm over the evaluated versions.
    const study = seriesPoints(
      parseSvg(lineChartSvg(studyChart(["a", "c"].map((name) => ({ name, runDir: join(dir, name) }))))),
    );
    expect([...study.keys()]).toEqual(["a", "c"]);
    expect(study.get("c")).toHaveLength(3);
    expect(metricsOf(b.metricsFile)).toEqual(metrics);
    expect(weightsOf(dir, "b").equals(weightsOf(dir, "a"))).toBe(true);
    expect(weightsOf(dir, "c").equals(weightsOf(dir, "a"))).toBe(false);
    // The evaluations are files too, and as repeatable.
    const evalOf = (experiment: string) =>
      JSON.parse(readFileSync(join(dir, experiment, "eval", "v4.json"), "utf8")).overall;
    expect(evalOf("b")).toEqual(evalOf("a"));
  });

  it("trains on CFG-decoded groups under learner.offPolicy.mode tis (none dropped as off-policy)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-serial-"));
    const result = await run(dir, "cfg", {}, [
      "learner.totalSteps=2",
      "actors.evaluator=0",
      "rollout.decoding.kind=cfg",
      "rollout.decoding.scale=2",
      "learner.offPolicy.mode=tis",
    ]);
    expect(result).toMatchObject({ completed: true, step: 2 });
    const last = metricsOf(result.metricsFile)
      .filter((m) => m.role === "learner")
      .at(-1)!.values;
    expect(last["learner.drops.offPolicy"]).toBe(0);
    expect(last["learner.consumed"]).toBeGreaterThan(0);
  }, 120_000);

  it("resumes to the same weights: stopped after step 3 (last checkpoint at 2), then resumed", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-serial-resume-"));
    const straight = await run(dir, "straight");
    const stopped = await run(dir, "resumed", { stopAfterStep: 3 });
    expect(stopped).toMatchObject({ completed: false, step: 3 });
    const resumed = await run(dir, "resumed");
    expect(resumed).toMatchObject({ completed: true, step: 4, policyVersion: straight.policyVersion });
    expect(weightsOf(dir, "resumed").equals(weightsOf(dir, "straight"))).toBe(true);
    // Step 3 was done twice (before the stop, and again from the checkpoint at 2), the same both times.
    const learner = metricsOf(resumed.metricsFile).filter((m) => m.role === "learner");
    expect(learner.map((m) => m.step)).toEqual([1, 2, 3, 3, 4]);
    expect(learner[3]).toEqual(learner[2]);
    const straightLearner = metricsOf(straight.metricsFile).filter((m) => m.role === "learner");
    expect(learner.at(-1)).toEqual(straightLearner.at(-1));
  });

  it("with rollout.retrieval: the index opened in-process puts documents before every prompt, rollouts and evaluation alike", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-serial-rag-"));
    const index = join(dir, "bm25");
    const tiny = await Effect.runPromise(loadConfig(TINY));
    await buildRetrievalIndex(await makeEnvironment(tiny.env), "bm25", index);
    const oneStep = ["learner.totalSteps=1", "learner.checkpointEvery=1"];
    const plain = await run(dir, "plain", {}, oneStep);
    const rag = await run(dir, "rag", {}, [...oneStep, "rollout.retrieval.k=2", `retrieval.index=${index}`]);
    expect(rag).toMatchObject({ completed: true, step: 1 });
    const rollouts = (file: string) =>
      metricsOf(file).filter((m) => m.role === "rollout" && m.values["rollout.groups"]);
    const promptTokens = (file: string) =>
      rollouts(file).reduce((n, m) => n + m.values["rollout.promptTokens"]!, 0) / rollouts(file).length;
    for (const { values } of rollouts(rag.metricsFile)) {
      expect(values["rollout.retrieval.requests"]).toBeGreaterThan(0);
      expect(values["rollout.retrieval.missed"]).toBe(0);
      expect(values["rollout.retrieval.documents"]).toBeGreaterThan(0);
    }
    expect(rollouts(plain.metricsFile)[0]!.values["rollout.retrieval.requests"]).toBeUndefined();
    // The evidence is what the answers were conditioned on (the tiny policy leaves room for one document at most).
    expect(promptTokens(rag.metricsFile)).toBeGreaterThan(1.5 * promptTokens(plain.metricsFile));
    const costOf = (experiment: string) =>
      JSON.parse(readFileSync(join(dir, experiment, "eval", "v1.json"), "utf8")).cost;
    expect(costOf("rag").documents).toBeGreaterThan(0);
    expect(costOf("rag").retrievalMissed).toBe(0);
    expect(costOf("plain").documents).toBeUndefined();
    expect(costOf("rag").promptTokens).toBeGreaterThan(1.5 * costOf("plain").promptTokens);
  });

  it("fails with a typed error naming what failed when a checkpoint cannot be written", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-serial-io-"));
    // A file where the checkpoints directory should be.
    mkdirSync(join(dir, "blocked"), { recursive: true });
    writeFileSync(join(dir, "blocked", "checkpoints"), "not a directory");
    const failure = await run(dir, "blocked").then(
      () => undefined,
      (error: Error) => error,
    );
    expect(failure?.message).toMatch(
      /saving the learner checkpoint of step 2 to .*blocked\/checkpoints\/learner failed/,
    );
  });

  it("survives SIGKILL: `factrl run --serial` killed mid-run and run again ends on the same weights", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-serial-kill-"));
    const args = (experiment: string) => [
      "run",
      TINY,
      "--serial",
      ...[...SETS, "learner.totalSteps=6", `experiment=${experiment}`, `output.dir=${dir}`].flatMap((s) => [
        "--set",
        s,
      ]),
    ];
    const straight = await runCli(args("straight"), REPO);
    expect(straight.code, straight.stderr).toBe(0);
    const killed = startCli(args("killed"), REPO);
    // Past the checkpoint at step 2, before the end.
    await waitFor("step 3 of the run to be killed", () => /step 3\/6/.test(killed.output()), 60_000);
    killed.child.kill("SIGKILL");
    expect((await killed.exited).signal).toBe("SIGKILL");
    expect(existsSync(join(dir, "killed", "checkpoints", "learner", "manifest.json"))).toBe(true);
    const again = await runCli(args("killed"), REPO);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/serial run resumed at step [2-6]/);
    expect(weightsOf(dir, "killed").equals(weightsOf(dir, "straight"))).toBe(true);
    // Three runs of the CLI, each starting node, tsx and tfjs: minutes on a loaded 2-core machine.
  }, 240_000);
});
