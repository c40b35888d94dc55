import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { generatePrompts } from "../envs/index.ts";
import {
  type BltConfig,
  BltPolicy,
  BYTE_TOKENIZER_RECORD,
  byteTextFormat,
  checkpointWordTokenizer,
  initBackend,
  loadCheckpoint,
  modelConfigFor,
  saveCheckpoint,
  tokenizerFromRecord,
} from "../models/index.ts";
import { DEFAULT_PRETRAIN, factWorldSetup, type PretrainSettings, pretrain } from "./pretrain-factworld.ts";
import { curateSftExamples, DEFAULT_SFT, finetune } from "./sft.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

/** A tiny BLT (global d 32, local d 32) on the tiny world's bytes. */
const tinyBlt: PretrainSettings = {
  ...DEFAULT_PRETRAIN,
  world: "tiny",
  model: {
    backbone: "blt",
    dModel: 32,
    nLayers: 1,
    nHeads: 2,
    dFF: 64,
    maxSeqLen: 256,
    positions: "rope",
    hashBuckets: 256,
  },
  seqLen: 96,
  batchSize: 8,
  learningRate: 5e-3,
  warmupSteps: 5,
  totalSteps: 40,
  evalEvery: 20,
  checkpointEvery: 20,
  entropy: { steps: 40, batchSize: 16, seqLen: 96, learningRate: 5e-3, meanPatchLength: 5 },
};

describe("a BLT config from the model section", () => {
  it("takes the global shape, and hash buckets, local layers, window and patching when given; other backbones refuse them", () => {
    const { tokenizer } = factWorldSetup("tiny");
    const config = modelConfigFor({ ...tinyBlt.model, localLayers: 2, localWindow: 128 }, tokenizer, 3) as BltConfig;
    expect(config).toMatchObject({ backbone: "blt", vocabSize: 260, maxSeqLen: 256, initSeed: 3 });
    expect(config.global).toMatchObject({ dModel: 32, layers: 1, heads: 2, dFF: 64 });
    expect(config.hash.buckets).toBe(256);
    expect(config.local).toMatchObject({ encoderLayers: 2, decoderLayers: 2, window: 128 });
    const dense = { ...tinyBlt.model, backbone: "dense", hashBuckets: undefined };
    expect(() => modelConfigFor({ ...dense, localLayers: 2 }, tokenizer, 1)).toThrow(/for the BLT backbone, not dense/);
    expect(() => modelConfigFor({ ...dense, localWindow: 128 }, tokenizer, 1)).toThrow(
      /for the BLT backbone, not dense/,
    );
    expect(config.patching.mode).toBe("entropy");
    const spaced = modelConfigFor({ ...tinyBlt.model, patching: "space" }, tokenizer, 3) as BltConfig;
    expect(spaced.patching).toEqual({ mode: "space" });
  });

  it("name-echo documents are refused for a word-level backbone (their made-up names are not words)", async () => {
    const dense = { ...tinyBlt.model, backbone: "dense", hashBuckets: undefined };
    await expect(
      pretrain({ ...tinyBlt, model: dense, nameEchoDocuments: 10 }, mkdtempSync(join(tmpdir(), "factrl-echo-"))),
    ).rejects.toThrow(/name-echo documents are for the blt backbone, not dense/);
  });
});

describe("BLT pretraining on FactWorld bytes (tiny)", () => {
  const out = mkdtempSync(join(tmpdir(), "factrl-pretrain-blt-"));

  it("calibrates entropy patching first, then the next-byte loss falls clearly; the checkpoint says bytes", async () => {
    const run = await pretrain(tinyBlt, out);
    expect(run.policy).toBeInstanceOf(BltPolicy);
    expect((run.policy as BltPolicy).config.hash.buckets).toBe(256); // model.hashBuckets
    expect(run.firstLoss).toBeGreaterThan(Math.log(260) - 1); // starts near uniform over 260 tokens
    expect(run.finalEvalLoss).toBeLessThan(run.firstLoss * 0.6);
    // The threshold was calibrated to 5-byte patches; held-out stream windows land near that.
    expect(run.patching!.meanPatchLength).toBeGreaterThan(3);
    expect(run.patching!.meanPatchLength).toBeLessThan(8);
    expect(run.patching!.threshold).toBe((run.policy as BltPolicy).entropyThreshold);

    const loaded = await loadCheckpoint(run.checkpointDir);
    expect(loaded.tokenizer).toMatchObject({ kind: "bytes", vocabSize: 260, byteOffset: 4 });
    // The frozen entropy model and its threshold travel with the weights.
    const restored = loaded.policy as BltPolicy;
    expect(restored.entropyThreshold).toBe(run.patching!.threshold);
    const window = byteTextFormat.promptTokens("Mafe is a sculpture .");
    expect(restored.patchLengths(window)).toEqual((run.policy as BltPolicy).patchLengths(window));
    // Word-tokenizer readers get a clear error, not a broken tokenizer.
    expect(() => tokenizerFromRecord(loaded.tokenizer, run.checkpointDir)).toThrow(/byte-level \(BLT\) checkpoint/);
    const { tokenizer } = factWorldSetup("tiny");
    expect(checkpointWordTokenizer(loaded.tokenizer, "blt", tokenizer, "x")).toBe(tokenizer);
    expect(() => checkpointWordTokenizer(loaded.tokenizer, "dense", tokenizer, "x")).toThrow(
      /a dense policy needs a word tokenizer record, the checkpoint has "bytes"/,
    );
    loaded.policy.dispose();
    run.policy.dispose();
  }, 300_000); // ≈ 20 s on a quiet 2-core box, minutes on a loaded one

  it("resumes without retraining the entropy model, and a float16 copy keeps the patching", async () => {
    const resumed = await pretrain({ ...tinyBlt, totalSteps: 42 }, out);
    expect(resumed.resumedFrom).toBe(40);
    expect(resumed.history.map((h) => h.step)).toEqual([41, 42]);
    const before = await loadCheckpoint(join(out, "pretrain"));
    expect((before.policy as BltPolicy).entropyThreshold).toBe(resumed.patching!.threshold);
    before.policy.dispose();

    const half = join(out, "float16");
    await saveCheckpoint(half, { policy: resumed.policy, step: 42, weightsDtype: "float16" });
    const copy = (await loadCheckpoint(half)).policy as BltPolicy;
    expect(copy.entropyThreshold).toBeCloseTo(resumed.patching!.threshold, 2);
    expect(copy.parameterCount()).toBe(resumed.policy.parameterCount());
    copy.dispose();
    resumed.policy.dispose();
  }, 120_000);

  it("SFT in the byte format teaches `<think> … </think> answer` (curated in bytes, fitting maxSeqLen), and resumes", async () => {
    const { world, tokenizer } = factWorldSetup("tiny");
    const { examples, report } = curateSftExamples(
      world,
      tokenizer,
      { count: 9, maxSeqLen: 256, seed: 1 },
      byteTextFormat,
    );
    for (const e of examples) {
      expect(e.promptTokens[0]).toBe(1); // BOS
      expect(byteTextFormat.answerText(e.answerTokens)).toBe(e.answerText);
      expect(e.promptTokens.length + e.answerTokens.length).toBeLessThanOrEqual(256);
    }
    expect(report.rejected["longer than maxSeqLen"]).toBeGreaterThan(0); // bytes are long: some do not fit

    const sftSettings = {
      ...DEFAULT_SFT,
      examples: 9, // one held out for the eval loss, 8 to learn the format from
      batchSize: 8,
      learningRate: 1e-2,
      warmupSteps: 5,
      totalSteps: 80,
      evalEvery: 0,
      checkpointEvery: 0,
    };
    const sft = await finetune(world, join(out, "pretrain"), join(out, "sft"), sftSettings);
    expect(sft.finalEvalLoss).toBeLessThan(sft.firstLoss);
    expect((await loadCheckpoint(join(out, "sft"))).tokenizer).toMatchObject({ kind: "bytes" });
    // Run again and SFT resumes from its own checkpoint, not from the pretrained one.
    const resumed = await finetune(world, join(out, "pretrain"), join(out, "sft"), { ...sftSettings, totalSteps: 82 });
    expect(resumed.resumedFrom).toBe(80);
    expect(resumed.history.map((h) => h.step)).toEqual([81, 82]);
    expect(resumed.firstLoss).toBeLessThan(sft.firstLoss * 0.5);
    resumed.policy.dispose();
    // The answers, read back by the byte format the rollouts use, open with the reasoning part.
    const sampled = await sft.policy.sample(
      examples.slice(1, 5).map((e) => byteTextFormat.promptTokens(e.prompt.text)),
      { temperature: 0.3, topP: 1, maxNewTokens: 120, seed: 2, stopTokens: byteTextFormat.stopTokens },
    );
    const answers = sampled.sequences.map((s) => byteTextFormat.answerText(s.tokens));
    for (const answer of answers) expect(answer).toMatch(/^<think> The question is about /);
    expect(answers.filter((a) => /^<think> .+ <\/think> \S/.test(a)).length, answers.join("\n")).toBeGreaterThanOrEqual(
      3,
    );
    sft.policy.dispose();
  }, 120_000);
});

describe("shipped BLT base policy (models/checkpoints/quickstart-blt)", () => {
  const dir = join(import.meta.dirname, "..", "models", "checkpoints", "quickstart-blt");

  it("is small, says bytes, carries its report, and answers in the byte format", async () => {
    const bytes = readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(3 * 1024 * 1024);
    const loaded = await loadCheckpoint(dir);
    expect(loaded.manifest.weightsDtype).toBe("float16");
    expect(loaded.tokenizer).toEqual(BYTE_TOKENIZER_RECORD);
    expect(loaded.policy).toBeInstanceOf(BltPolicy);
    const report = (loaded.trainerState as { report: { factuality: { wellFormedRate: number } } }).report;
    expect(report.factuality.wellFormedRate).toBeGreaterThan(0);

    const { world } = factWorldSetup("default");
    const prompts = generatePrompts(world)
      .filter((p) => p.split === "eval")
      .slice(0, 8);
    const result = await loaded.policy.sample(
      prompts.map((p) => byteTextFormat.promptTokens(p.text)),
      { temperature: 0.7, topP: 1, maxNewTokens: 96, seed: 1, stopTokens: byteTextFormat.stopTokens },
    );
    // Its report: 95 % of answers well-formed at this temperature (docs/models.md).
    const answers = result.sequences.map((s) => byteTextFormat.answerText(s.tokens));
    expect(
      answers.filter((a) => a.startsWith("<think> The question is about ")).length,
      answers.join("\n"),
    ).toBeGreaterThanOrEqual(6);
    loaded.policy.dispose();
  });
});
