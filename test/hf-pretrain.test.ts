/**
 * `factrl pretrain` from a Hugging Face model (`init: hf:DIR`, the tiny Llama fixture of
 * models/fixtures/hf): SFT on the tiny world's curated answers in the model's own tokenizer lowers
 * the loss, writes a checkpoint that loads with that tokenizer and that an experiment's `model.init`
 * starts from, and `factrl export-hf` gives back exactly the fine-tuned weights. The stages that cannot apply to an imported model are refused by
 * field.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { importHuggingFaceModel, initBackend, loadCheckpoint } from "../models/index.ts";
import { loadPretrainConfig, makeBasePolicy, type PipelineEvent } from "../pretrain/index.ts";
import { runCli } from "./cli-helpers.ts";

const REPO = resolve(import.meta.dirname, "..");
const LLAMA = join(REPO, "models/fixtures/hf/tiny-llama");

const bits = async (policy: { trainableVariables: readonly { data(): Promise<unknown> }[] }) =>
  Promise.all(
    policy.trainableVariables.map(async (v) => Array.from(new Uint32Array(((await v.data()) as Float32Array).buffer))),
  );

/** A pretrain config in a fresh directory (its output under it); `lines` may name paths in that directory. */
const configFile = async (lines: readonly string[] | ((dir: string) => readonly string[])) => {
  const dir = await mkdtemp(join(tmpdir(), "factrl-hf-pretrain-"));
  const file = join(dir, "pretrain.yaml");
  writeFileSync(
    file,
    [...(typeof lines === "function" ? lines(dir) : lines), `output: ${join(dir, "run")}`].join("\n"),
  );
  return { dir, file };
};

describe("factrl pretrain from init: hf:DIR", () => {
  it("refuses the stages an imported model cannot take, naming the field", async () => {
    const refused = async (lines: readonly string[]) => {
      const { file } = await configFile([`init: "hf:${LLAMA}"`, ...lines]);
      return () => loadPretrainConfig(file);
    };
    // Continued pretraining (pretrain.steps > 0) is accepted: pretrain/pretrain-hf.test.ts runs it.
    expect(await refused(["pretrain: { steps: 10 }"])).not.toThrow();
    expect(await refused(["pretrain: { steps: 10, entropy: { steps: 5 } }"])).toThrow(
      /pretrain\.entropy.*out with init/s,
    );
    expect(await refused(["pretrain: { steps: 0 }", "model: { dModel: 64 }"])).toThrow(
      /model.*config\.json: leave model out with init/s,
    );
    expect(await refused(["pretrain: { steps: 0 }", "vision: {}"])).toThrow(/vision.*no image tokens/s);
    const { file } = await configFile(["init: models/fixtures/hf/tiny-llama", "pretrain: { steps: 0 }"]);
    expect(() => loadPretrainConfig(file)).toThrow(/init.*Expected hf:DIR/s);
  });

  it("fine-tunes the model on the world's answers in its own tokenizer; the checkpoint loads and exports exactly", async () => {
    await initBackend();
    const { dir, file } = await configFile((dir) => [
      `init: "hf:${LLAMA}"`,
      "world: tiny",
      "pretrain: { steps: 0 }",
      "sft: { examples: 48, steps: 12, batch: 4, learningRate: 3.0e-3, warmupSteps: 0 }",
      "evaluation: { prompts: 4, maxNewTokens: 12, batch: 4 }",
      `export: { dir: ${join(dir, "shipped")}, dtype: float32 }`,
    ]);
    const config = loadPretrainConfig(file);
    const losses: number[] = [];
    const report = await makeBasePolicy(config, (event: PipelineEvent) => {
      if (event.stage === "sft") losses.push(event.progress.loss);
    });
    expect(report.init).toBe(`hf:${LLAMA}`);
    expect(report.pretrain).toBeUndefined();
    expect(report.sft?.curation.selected).toBeGreaterThan(20);
    expect(report.factuality?.answers).toBe(4);
    expect(losses).toHaveLength(12);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)) - 0.5);

    const original = await importHuggingFaceModel(LLAMA);
    const trained = await loadCheckpoint(report.checkpoint);
    expect(trained.tokenizer).toEqual(original.tokenizer); // the model's own tokenizer, carried through
    expect(trained.policy.config).toEqual(original.policy.config);
    const trainedBits = await bits(trained.policy);
    expect(trainedBits).not.toEqual(await bits(original.policy));
    const shipped = await loadCheckpoint(join(dir, "shipped"));
    expect(await bits(shipped.policy)).toEqual(trainedBits);

    const out = join(dir, "exported");
    const exported = await runCli(["export-hf", report.checkpoint, out], dir);
    expect(exported.stderr).toBe("");
    expect(exported).toMatchObject({ code: 0 });
    const back = await importHuggingFaceModel(out);
    expect(back.policy.config).toEqual(original.policy.config);
    expect(await bits(back.policy)).toEqual(trainedBits);
    for (const policy of [original.policy, trained.policy, shipped.policy, back.policy]) policy.dispose();

    // An experiment starts from it: model.init names the SFT checkpoint (factrl eval reads it as the run would).
    const evaluated = await runCli(
      [
        "eval",
        join(REPO, "configs/tiny.yaml"),
        "--set",
        `model.init=${report.checkpoint}`,
        "--set",
        "evaluation.promptsPerSuite=1",
        "--set",
        "rollout.maxNewTokens=8",
        "--set",
        `output.dir=${dir}`,
      ],
      dir,
    );
    expect(evaluated.stderr).not.toMatch(/factrl:/);
    expect(evaluated.code).toBe(0);
    const written = JSON.parse(readFileSync(join(dir, "tiny", "eval", "v0.json"), "utf8"));
    expect(written.answers).toHaveLength(6);
  }, 300_000);

  it("checks the init directory before anything starts", async () => {
    const { dir, file } = await configFile([
      `init: "hf:${join(REPO, "models/fixtures/hf/no-such-model")}"`,
      "pretrain: { steps: 0 }",
    ]);
    const result = await runCli(["pretrain", file], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/init: no such Hugging Face model directory .*no-such-model/);
  }, 60_000);
});
