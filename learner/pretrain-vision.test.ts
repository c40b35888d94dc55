import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  CaptionVerifier,
  captionExamples,
  DEFAULT_CAPTION_TASK,
  factWorldVision,
  generateWorld,
} from "../envs/index.ts";
import { factWorld } from "../envs/registry.ts";
import { codebookToJson, imageTokenizerOfRecord, initBackend, textFormatFor } from "../models/index.ts";
import { environmentMismatch } from "./learner.ts";
import { DEFAULT_PRETRAIN, pretrain, tokenizerRecordFor } from "./pretrain-factworld.ts";
import {
  captionSftExamples,
  captionTokenizer,
  DEFAULT_VISION_PRETRAINING,
  imageTokenizerFromPictures,
  picturePretrainingSet,
} from "./pretrain-vision.ts";

const world = generateWorld({ size: "tiny" });
const tokenizer = captionTokenizer(world);
const examples = captionExamples(world, DEFAULT_CAPTION_TASK);
const set = picturePretrainingSet(world, 200, 1);
const image = imageTokenizerFromPictures(set.pictures, tokenizer, { codebookSize: 32, seed: 1 });
const format = textFormatFor("dense", tokenizer, image);

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("the base captioner's pieces", () => {
  it("SFT on re-aligned captions: every training picture, every claim of every target supported", () => {
    const { examples: kept, rejected } = captionSftExamples(examples, format, tokenizer, {
      captions: "realigned",
      maxSeqLen: 256,
    });
    expect(rejected).toEqual({});
    expect(kept.length).toBe(examples.filter((e) => e.prompt.split === "train").length);
    const verifier = new CaptionVerifier(world);
    for (const { example, answerText } of kept) {
      const analysis = verifier.analyze(example.truth, answerText.split("</think>")[1]!);
      expect(analysis.contradicted + analysis.unverifiable).toBe(0);
      expect(analysis.supported).toBeGreaterThan(0);
    }
    // The picture is read before the alt-text: the prompt opens with its 64 image tokens.
    const first = kept[0]!;
    expect([...first.promptTokens.subarray(1, 65)].every((t) => t >= tokenizer.vocabSize)).toBe(true);
  });

  it("SFT on raw alt-text (the baseline): its targets carry the alt-text's errors; file numbers cannot be written", () => {
    const { examples: kept, rejected } = captionSftExamples(examples, format, tokenizer, {
      captions: "alt-text",
      maxSeqLen: 256,
    });
    const verifier = new CaptionVerifier(world);
    const wrong = kept.filter(({ example }) => {
      const a = verifier.analyze(example.truth, example.altText);
      return a.contradicted + a.unverifiable > 0;
    });
    expect(wrong.length).toBeGreaterThan(0);
    expect((rejected["unknown word"] ?? 0) + kept.length).toBe(
      examples.filter((e) => e.prompt.split === "train").length,
    );
  });

  it("a policy without an image tokenizer is refused for an environment with pictures, naming both", () => {
    const vision = factWorldVision({
      size: "tiny",
      promptSeed: 1,
      evalFraction: 0.2,
      maxPicturesPerEntity: 12,
      dropAltText: 0.2,
    });
    const text = factWorld({ size: "tiny", promptSeed: 1, evalFraction: 0.2 });
    expect(
      environmentMismatch(vision, tokenizerRecordFor("dense", tokenizer), "models/checkpoints/quickstart"),
    ).toMatch(
      /^environment factworld-vision has pictures, but the policy \(models\/checkpoints\/quickstart\) has no image tokenizer/,
    );
    expect(environmentMismatch(vision, tokenizerRecordFor("dense", tokenizer, image), "p")).toBeUndefined();
    expect(environmentMismatch(text, tokenizerRecordFor("dense", tokenizer), "p")).toBeUndefined();
  });

  it("pretrains on text and pictures in one stream; the codebook is saved with the checkpoint and read back on resume", async () => {
    const out = mkdtempSync(join(tmpdir(), "factrl-vision-pretrain-"));
    const settings = {
      ...DEFAULT_PRETRAIN,
      world: "tiny" as const,
      model: {
        backbone: "dense",
        dModel: 32,
        nLayers: 1,
        nHeads: 2,
        dFF: 64,
        maxSeqLen: 128,
        positions: "rope" as const,
      },
      seqLen: 96,
      batchSize: 4,
      totalSteps: 2,
      evalEvery: 0,
      checkpointEvery: 0,
      vision: { ...DEFAULT_VISION_PRETRAINING, codebookSize: 24, pictureDocuments: 60 },
    };
    const first = await pretrain(settings, out);
    expect(first.policy.config.vocabSize).toBe(tokenizer.vocabSize + 24);
    expect(first.policy.config.imageTokens).toEqual({ first: tokenizer.vocabSize, count: 24 });
    const saved = JSON.parse(readFileSync(join(out, "pretrain", "tokenizer.json"), "utf8"));
    expect(codebookToJson(imageTokenizerOfRecord(saved, "saved")!.codebook)).toEqual(
      codebookToJson(first.image!.codebook),
    );
    first.policy.dispose();
    const resumed = await pretrain({ ...settings, totalSteps: 3 }, out);
    expect(resumed.resumedFrom).toBe(2);
    expect(codebookToJson(resumed.image!.codebook)).toEqual(codebookToJson(first.image!.codebook));
    resumed.policy.dispose();
  }, 120_000);
});
