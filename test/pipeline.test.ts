/**
 * The GRPO pipeline end to end: `factrl run configs/tiny.yaml` with every role as its own process,
 * against the test's real nats-server, starting from the tiny SFT fixture policy. After each run the
 * test reads the experiment's KV state and streams to check that no prompt group was lost.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect, Layer } from "effect";
import { describe, expect, inject, it } from "vitest";
import { connectNats, Experiment, experimentSubjects, Nats, rootLogger } from "../messaging/index.ts";
import { readCheckpointManifest } from "../models/index.ts";
import { startCli } from "./cli-helpers.ts";
import { readLedger } from "./ledger.ts";

const natsUrl = inject("natsUrl");
/** The test polls the experiment's state often: only warnings from its own connections. */
const quietLogger = rootLogger().child({ component: "pipeline-test" }, { level: "warn" });
const REPO = resolve(import.meta.dirname, "..");
const TINY = join(REPO, "configs", "tiny.yaml");

const withExperiment = <A, E>(experiment: string, effect: Effect.Effect<A, E, Nats | Experiment>) =>
  Effect.runPromise(
    effect.pipe(
      Effect.provide(
        Layer.merge(
          Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "pipeline-test", logger: quietLogger })),
          Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "pipeline-test" }),
        ),
      ),
    ) as Effect.Effect<A, E, never>,
  );

/** Where every published prompt group ended up. */
const ledger = (experiment: string) => withExperiment(experiment, readLedger);

const metricsOf = (runDir: string) =>
  readFileSync(join(runDir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { type: string; sender: string; body: Record<string, unknown> })
    .filter((event) => event.type === "MetricsEvent")
    .map((event) => event.body as { step?: number; values: Record<string, number>; tags: Record<string, string> });

async function runTiny(experiment: string, sets: readonly string[]) {
  const outDir = await mkdtemp(join(tmpdir(), "factrl-pipeline-"));
  const args = ["run", TINY, "--nats", natsUrl, "--set", `experiment=${experiment}`, "--set", `output.dir=${outDir}`];
  const run = startCli([...args, ...sets.flatMap((s) => ["--set", s])], REPO);
  return { run, runDir: join(outDir, experiment) };
}

/** The learner took steps 1…`steps` and rollouts sampled with a policy newer than the first; the metrics. */
function expectLearnedThroughActors(runDir: string, steps: number) {
  const metrics = metricsOf(runDir);
  const learnerSteps = metrics.filter((m) => m.tags.role === "learner").map((m) => m.step);
  expect(learnerSteps).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  const rolloutVersions = metrics.filter((m) => m.tags.role === "rollout").map((m) => Number(m.tags.policyVersion));
  expect(Math.max(...rolloutVersions)).toBeGreaterThanOrEqual(1);
  return metrics;
}

describe("GRPO pipeline (real processes)", () => {
  it("flows prompts through every role: the learner steps, rollouts follow new versions, the evaluator reports", async () => {
    const experiment = `pipe-e2e-${process.pid}`;
    const { run, runDir } = await runTiny(experiment, ["learner.maxPolicyLag=0", "actors.rollout=2"]);
    const { code } = await run.exited;
    expect(code, run.output().slice(-3000)).toBe(0);

    const metrics = expectLearnedThroughActors(runDir, 4);
    const finalEval = metrics.find((m) => m.tags.role === "evaluator" && m.tags.policyVersion === "4");
    expect(finalEval?.values["eval.hallucinationRate"]).toBeTypeOf("number");
    const report = readFileSync(join(runDir, "report.md"), "utf8");
    expect(report).toMatch(/\| \*\*average\*\* \|/);
    // The actor runner reports the same per-step metrics as the serial one, and the report its plots.
    const step = metrics.find((m) => m.tags.role === "learner")!.values;
    expect(Object.keys(step)).toEqual(
      expect.arrayContaining(["learner.reward.std", "learner.term.precision.mean", "learner.policyLag.max"]),
    );
    expect(report).toContain("(report-plots/reward.svg)");
    // The monitor served the dashboard and the launcher said where.
    expect(run.output()).toMatch(/dashboard: http:\/\/127\.0\.0\.1:\d+\//);

    const { progress, published, deadLettered, pending } = await ledger(experiment);
    expect(progress).toMatchObject({ step: 4, policyVersion: 4, consumed: 8, done: true });
    // max_policy_lag 0: groups sampled before the newest version are dropped, and counted.
    expect(progress!.stale).toBeGreaterThan(0);
    // Every group published is used, dropped (counted), dead-lettered, or still queued.
    expect(progress!.consumed + progress!.stale + progress!.zeroVariance + deadLettered + pending).toBe(published);
  }, 240_000);
});

/**
 * A run that ended well after `steps` learner steps: its learner checkpoint's manifest and tokenizer
 * record, and the answers of its final evaluation.
 */
async function finishedRun(run: ReturnType<typeof startCli>, runDir: string, steps: number) {
  const { code } = await run.exited;
  expect(code, run.output().slice(-3000)).toBe(0);
  const checkpoint = join(runDir, "checkpoints", "learner");
  const manifest = await readCheckpointManifest(checkpoint);
  const tokenizer = JSON.parse(readFileSync(join(checkpoint, "tokenizer.json"), "utf8")) as unknown;
  expectLearnedThroughActors(runDir, steps);
  const { answers } = JSON.parse(readFileSync(join(runDir, "eval", `v${steps}.json`), "utf8")) as {
    answers: { answer: string }[];
  };
  expect(answers.length).toBeGreaterThan(0);
  return { manifest, tokenizer, answers };
}

describe("every backbone runs GRPO through the actors", () => {
  it("MoT starts from the dense SFT checkpoint: rollouts sample with MoT, the learner steps, the evaluator reports", async () => {
    const experiment = `pipe-mot-${process.pid}`;
    const { run, runDir } = await runTiny(experiment, ["model.backbone=mot", "model.untie=ffn+attention"]);
    const { code } = await run.exited;
    expect(code, run.output().slice(-3000)).toBe(0);

    const manifest = await readCheckpointManifest(join(runDir, "checkpoints", "learner"));
    expect(manifest.config).toMatchObject({ backbone: "mot", untie: "ffn+attention" });
    const dense = await readCheckpointManifest(join(REPO, "test", "fixtures", "tiny-policy"));
    // Same shape as the dense policy it started from: MoT owns a copy of each weight per modality.
    expect(manifest.config).toMatchObject({ vocabSize: dense.config.vocabSize, maxSeqLen: dense.config.maxSeqLen });

    const metrics = expectLearnedThroughActors(runDir, 4);
    expect(metrics.some((m) => m.tags.role === "evaluator" && m.tags.policyVersion === "4")).toBe(true);
    expect(readFileSync(join(runDir, "report.md"), "utf8")).toMatch(/\| \*\*average\*\* \|/);
  }, 240_000);

  it("a Hugging Face model (model.init: hf:DIR) runs GRPO through the actors with its own tokenizer", async () => {
    const experiment = `pipe-hf-${process.pid}`;
    // Random weights never write the <think> format, so FactWorld's terms are all −1: a reward that
    // varies with the text (shorter is better) gives the learner groups with a signal.
    const moduleDir = await mkdtemp(join(tmpdir(), "factrl-pipeline-hf-"));
    const brevity = join(moduleDir, "brevity.mjs");
    writeFileSync(
      brevity,
      'export default { name: "brevity", version: "1.0.0", score: async (batch) => batch.map((item) => ({ ok: true, components: { brevity: -item.answer.length / 100 } })) };\n',
    );
    const { run, runDir } = await runTiny(experiment, [
      `model.init=hf:${join(REPO, "models", "fixtures", "hf", "tiny-qwen2")}`,
      `rewards.modules=[{ path: ${brevity}, weight: 1 }]`,
      "rollout.maxNewTokens=12",
      "learner.totalSteps=2",
      "evaluation.promptsPerSuite=1",
    ]);
    const { manifest, tokenizer, answers } = await finishedRun(run, runDir, 2);
    expect(manifest.config).toMatchObject({ backbone: "dense", mlp: "swiglu", nKvHeads: 1, qkvBias: true });
    expect(tokenizer).toMatchObject({ kind: "huggingface" });
    // The evaluator decoded the answers through the model's tokenizer: text, not ids or <unk>s.
    expect(answers.every((a) => a.answer.length > 0 && !a.answer.includes("<unk>"))).toBe(true);
  }, 600_000);

  it("BLT reads and writes bytes: its byte-level SFT policy runs GRPO through the actors", async () => {
    const experiment = `pipe-blt-${process.pid}`;
    // Bytes are ~6× as many steps as words to sample: fewer steps and evaluation prompts keep it quick.
    const { run, runDir } = await runTiny(experiment, [
      "model.backbone=blt",
      "learner.totalSteps=2",
      "evaluation.promptsPerSuite=1",
      "learner.maxPolicyLag=0", // step 2 needs groups sampled by version 1: rollouts must follow it
    ]);
    const { manifest, tokenizer, answers } = await finishedRun(run, runDir, 2);
    expect(manifest.config).toMatchObject({ backbone: "blt", vocabSize: 260 });
    expect(tokenizer).toMatchObject({ kind: "bytes" });
    // The evaluator read the byte policy's answers back as text in the world's format.
    const formed = answers.filter((a) => /^<think> .* <\/think> /.test(a.answer));
    expect(formed.length).toBeGreaterThan(answers.length / 2);
  }, 600_000);
});
