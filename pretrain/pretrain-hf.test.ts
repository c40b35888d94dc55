/**
 * Continued pretraining of a Hugging Face model (`init: hf:DIR` with `pretrain.steps > 0`; the tiny
 * random Llama of models/fixtures/hf, written by scripts/hf-fixture.py): the corpus stage starts
 * from the imported weights, reads the tiny world's corpus through the model's own tokenizer, lowers
 * the held-out loss, saves checkpoints that keep the Hugging Face tokenizer record, resumes, and
 * SFT continues from it.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type HuggingFaceTokenizerRecord,
  huggingFaceDocumentTokens,
  importHuggingFaceModel,
  initBackend,
  loadCheckpoint,
  type Policy,
  textFormatOfRecord,
} from "../models/index.ts";
import { evalLoss, evalWindows, tokenStream } from "./pretrain.ts";
import { decodePretrainConfig } from "./pretrain-config.ts";
import { DEFAULT_PRETRAIN, factWorldSetup, pretrainingCorpus } from "./pretrain-factworld.ts";
import { makeBasePolicy, type PipelineEvent } from "./pretrain-pipeline.ts";

const LLAMA = resolve(import.meta.dirname, "../models/fixtures/hf/tiny-llama");
const QWEN2 = resolve(import.meta.dirname, "../models/fixtures/hf/tiny-qwen2");
const SEQ_LEN = 32;
const BATCH = 4;

const config = (output: string, steps: number, sftSteps: number, init = LLAMA) =>
  decodePretrainConfig(
    {
      init: `hf:${init}`,
      world: "tiny",
      seed: 3,
      pretrain: {
        steps,
        batch: BATCH,
        seqLen: SEQ_LEN,
        learningRate: 1e-2,
        warmupSteps: 0,
        decaySteps: 8,
        evalEvery: 2,
        checkpointEvery: 3,
      },
      sft: { examples: 16, steps: sftSteps, batch: 2, learningRate: 1e-3, warmupSteps: 0 },
      evaluation: { prompts: 0 },
      output,
    },
    "test",
  );

/** The corpus stage's held-out windows, rebuilt here: the world's held-out documents in the model's tokenizer. */
function heldOutBatches(record: HuggingFaceTokenizerRecord) {
  const world = factWorldSetup("tiny").world;
  const { heldOut } = pretrainingCorpus(world, { ...DEFAULT_PRETRAIN, seed: 3 });
  const encode = huggingFaceDocumentTokens(record, "tiny-llama");
  const stream = tokenStream(
    heldOut.map((d) => encode(d.text)),
    undefined,
    record.eos,
  );
  return evalWindows(stream, BATCH, SEQ_LEN, DEFAULT_PRETRAIN.evalBatches);
}

const bits = async (policy: Policy) =>
  Promise.all(policy.trainableVariables.map(async (v) => Array.from(new Uint32Array((await v.data()).buffer))));

describe("factrl pretrain: continued pretraining from init: hf:DIR", () => {
  beforeAll(() => initBackend());

  it("trains the imported model on the corpus in its own tokenizer, checkpoints with it, resumes, then SFTs", async () => {
    const output = join(mkdtempSync(join(tmpdir(), "factrl-pretrain-hf-")), "run");
    const events: PipelineEvent[] = [];
    const report = await makeBasePolicy(config(output, 6, 2), (event) => events.push(event));

    // The corpus stage ran from the imported model, then SFT from its checkpoint.
    expect(report.init).toBe(`hf:${LLAMA}`);
    expect(report.pretrain).toMatchObject({ steps: 6, resumedFrom: 0 });
    expect(report.pretrain!.evalLosses.map((e) => e.step)).toEqual([2, 4, 6]);
    expect(Number.isFinite(report.pretrain!.finalEvalLoss)).toBe(true);
    expect(events.filter((e) => e.stage === "pretrain")).toHaveLength(6);
    expect(report.sft).toMatchObject({ steps: 2, resumedFrom: 0 });
    expect(report.checkpoint).toBe(join(output, "sft"));

    // The corpus was read in the model's byte-level BPE, not FactWorld's words: Llama 3's BOS starts
    // every document, and the stream is several times longer than in words (≈ 4 tokens a word here).
    const original = await importHuggingFaceModel(LLAMA);
    const pretrained = await loadCheckpoint(join(output, "pretrain"));
    expect(pretrained.step).toBe(6);
    expect(pretrained.tokenizer).toEqual(original.tokenizer);
    expect(pretrained.policy.config).toEqual(original.policy.config);
    expect(await bits(pretrained.policy)).not.toEqual(await bits(original.policy));

    // Held-out loss, measured as the stage measures it: these are its windows (the same final loss),
    // and training lowered it well below the imported model's.
    const heldOut = heldOutBatches(original.tokenizer);
    expect(heldOut[0]!.prompts[0]![0]).toBe(304); // <|begin_of_text|>, as the post-processor adds it
    const before = evalLoss(original.policy, heldOut);
    const after = evalLoss(pretrained.policy, heldOut);
    expect(after).toBeCloseTo(report.pretrain!.finalEvalLoss, 4);
    expect(after).toBeLessThan(before - 1.5); // 7.51 → 4.55 with these seeds

    // The final (SFT) checkpoint reads and writes a FactWorld sentence through the model's tokenizer.
    const sft = await loadCheckpoint(report.checkpoint);
    expect(sft.tokenizer).toEqual(original.tokenizer);
    const format = textFormatOfRecord(sft.policy.config.backbone, sft.tokenizer as HuggingFaceTokenizerRecord, "sft");
    // (Written as a real tokenizer's text writes it: its decoder drops the space before a stop.)
    const sentence = "Govu was founded by Pega Lelofe in 1955. Govu is a bank.";
    const tokens = format.answerTokens(sentence);
    const hf = new Tokenizer(original.tokenizer.tokenizer, original.tokenizer.config);
    expect([...tokens]).toEqual([...hf.encode(sentence, { add_special_tokens: false }).ids, 305]);
    expect(tokens.length).toBeGreaterThan(3 * sentence.split(" ").length);
    expect(format.answerText(tokens)).toBe(sentence);

    // A stopped run started again with more steps resumes the corpus stage from its checkpoint.
    const resumed = await makeBasePolicy(config(output, 8, 0));
    expect(resumed.pretrain).toMatchObject({ steps: 2, resumedFrom: 6 });
    expect(resumed.checkpoint).toBe(join(output, "pretrain"));
    expect(resumed.pretrain!.finalEvalLoss).toBeLessThan(before);
    // … and refuses a checkpoint made from another model.
    await expect(makeBasePolicy(config(output, 10, 0, QWEN2))).rejects.toThrow(/model config does not match/);

    for (const policy of [original.policy, pretrained.policy, sft.policy]) policy.dispose();
  }, 60_000);
});
