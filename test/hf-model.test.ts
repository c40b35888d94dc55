/**
 * A Hugging Face model goes in, trains and comes out: `model.init: hf:DIR` (the tiny Llama fixture of
 * models/fixtures/hf) runs GRPO steps on the tiny FactWorld through the serial runner, then
 * `factrl export-hf` writes the learner's checkpoint back in the Hugging Face layout, which imports to
 * exactly the trained weights.
 */
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { cp, mkdtemp, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect } from "effect";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../configs/index.ts";
import { importHuggingFaceModel, initBackend, loadCheckpoint } from "../models/index.ts";
import { runSerial } from "../pipeline/serial-runner.ts";
import { runCli } from "./cli-helpers.ts";

const REPO = resolve(import.meta.dirname, "..");
const LLAMA = join(REPO, "models/fixtures/hf/tiny-llama");

/** Random weights write random bytes: a reward that varies with them (the shorter the better) gives GRPO a signal. */
const BREVITY = `export default {
  name: "brevity", version: "1.0.0",
  score: async (batch) => batch.map((item) => ({ ok: true, components: { brevity: -item.answer.length / 100 } })),
};
`;

const bits = async (policy: { trainableVariables: readonly { data(): Promise<unknown> }[] }) =>
  Promise.all(
    policy.trainableVariables.map(async (v) => Array.from(new Uint32Array(((await v.data()) as Float32Array).buffer))),
  );

describe("a Hugging Face model in factrl", () => {
  it("trains with GRPO from model.init: hf:DIR, and export-hf gives back exactly the trained weights", async () => {
    await initBackend();
    const dir = await mkdtemp(join(tmpdir(), "factrl-hf-run-"));
    writeFileSync(join(dir, "brevity.mjs"), BREVITY);
    writeFileSync(
      join(dir, "hf.yaml"),
      [
        `extends: ${join(REPO, "configs/tiny.yaml")}`,
        "experiment: hf-tiny",
        `model: { init: "hf:${LLAMA}" }`,
        `rewards: { modules: [{ path: ${join(dir, "brevity.mjs")}, weight: 1 }] }`,
        "rollout: { maxNewTokens: 12 }",
        "learner: { totalSteps: 2, checkpointEvery: 2 }",
        `output: { dir: ${dir} }`,
      ].join("\n"),
    );
    const config = await Effect.runPromise(loadConfig(join(dir, "hf.yaml")));
    const result = await Effect.runPromise(Effect.scoped(runSerial(config)));
    expect(result).toMatchObject({ completed: true, step: 2, policyVersion: 2 });

    const checkpoint = join(dir, "hf-tiny", "checkpoints", "learner");
    const trained = await loadCheckpoint(checkpoint);
    expect(trained.tokenizer).toMatchObject({ kind: "huggingface" });
    const original = await importHuggingFaceModel(LLAMA);
    const trainedBits = await bits(trained.policy);
    expect(trainedBits).not.toEqual(await bits(original.policy)); // two GRPO steps moved the weights

    const out = join(dir, "exported");
    const exported = await runCli(["export-hf", checkpoint, out], dir);
    expect(exported.stderr).toBe("");
    expect(exported).toMatchObject({ code: 0 });
    expect(exported.stdout).toMatch(/wrote .*exported: step 2, [\d,]+ parameters/);
    const back = await importHuggingFaceModel(out);
    expect(back.policy.config).toEqual(original.policy.config);
    expect(await bits(back.policy)).toEqual(trainedBits);
    for (const policy of [trained.policy, original.policy, back.policy]) policy.dispose();
  }, 300_000);

  it("factrl eval scores an hf:DIR policy on the environment's evaluation sample and writes every answer", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-hf-eval-"));
    const result = await runCli(
      [
        "eval",
        join(REPO, "configs/tiny.yaml"),
        "--policy",
        `hf:${LLAMA}`,
        "--set",
        "evaluation.promptsPerSuite=1",
        "--set",
        "rollout.maxNewTokens=8",
        "--set",
        `output.dir=${dir}`,
      ],
      dir,
    );
    expect(result.stderr).not.toMatch(/factrl:/);
    expect(result.code).toBe(0);
    // Random weights never write the <think> format: every answer is malformed, in every suite.
    expect(result.stdout).toMatch(/\| \*\*all\*\* \| 6 \| – \| – \| – \| 100\.0% \|/);
    const written = JSON.parse(readFileSync(join(dir, "tiny", "eval", "v0.json"), "utf8"));
    expect(written.answers).toHaveLength(6);
    expect(written.answers.every((a: { reward: number }) => a.reward === -1)).toBe(true);
    const claims = readFileSync(join(dir, "tiny", "eval", "claims.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(claims).toHaveLength(6);
    expect(claims.every((c) => c.well_formed === false && c.claim_list.length === 0)).toBe(true);
    expect(result.stdout).toMatch(/every claim with its verdict \(VeriScore-style JSONL\): .*claims\.jsonl/);
  }, 120_000);

  it("a broken Hugging Face directory is a config error before anything starts (run, eval), naming the file and the tensor", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-hf-bad-"));
    const truncated = join(dir, "truncated");
    const gelu = join(dir, "gelu");
    for (const copy of [truncated, gelu]) await cp(LLAMA, copy, { recursive: true });
    const weights = join(truncated, "model.safetensors");
    await truncate(weights, statSync(weights).size - 100);
    const config = JSON.parse(readFileSync(join(gelu, "config.json"), "utf8"));
    writeFileSync(join(gelu, "config.json"), JSON.stringify({ ...config, hidden_act: "gelu" }));
    const tiny = join(REPO, "configs/tiny.yaml");
    const [run, evaluation] = await Promise.all([
      runCli(["run", tiny, "--dry-run", "--set", `model.init=hf:${truncated}`], dir),
      runCli(["eval", tiny, "--policy", `hf:${gelu}`], dir),
    ]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`- model.init: ${weights}: truncated: tensor lm_head.weight ends at byte`);
    expect(evaluation.code).toBe(2);
    expect(evaluation.stderr).toContain(
      `- model.init: ${join(gelu, "config.json")}: hidden_act = "gelu" is not supported`,
    );
    expect(evaluation.stderr).not.toMatch(/tfjs backend/); // refused before the policy is loaded
  }, 120_000);

  it("export-hf refuses a checkpoint of a FactWorld-tokenizer policy, naming why", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-hf-export-"));
    const result = await runCli(["export-hf", join(REPO, "test/fixtures/tiny-policy"), join(dir, "out")], dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /only a Llama-shaped dense policy \(mlp: swiglu, positions: rope\) has a Hugging Face layout/,
    );
  });
});
