/**
 * Retrieval-augmented SFT (sft.retrieval): every curated prompt is preceded by documents retrieved
 * for training (query dropout), within the example's length budget; the config refuses it for the
 * caption task and out-of-range settings.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { factWorld } from "../envs/index.ts";
import { buildRetrievalIndex, DEFAULT_RETRIEVAL_RULES, openRetriever, wordTextFormat } from "../models/index.ts";
import { decodePretrainConfig } from "./pretrain-config.ts";
import { factWorldSetup } from "./pretrain-factworld.ts";
import { curateSftExamples, retrievalAugmentedSftTask } from "./sft.ts";

const dir = await mkdtemp(join(tmpdir(), "factrl-ra-sft-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("retrieval-augmented SFT", () => {
  it("puts retrieved documents before each curated prompt, within the length budget; answers unchanged", async () => {
    const { world, tokenizer } = factWorldSetup("tiny");
    const env = factWorld({ size: "tiny", promptSeed: 1, evalFraction: 0.2 });
    await buildRetrievalIndex(env, "bm25", join(dir, "bm25"));
    const retriever = await openRetriever(join(dir, "bm25"), env, DEFAULT_RETRIEVAL_RULES, "bm25");
    const format = wordTextFormat(tokenizer);
    const options = { count: 40, maxSeqLen: 128, seed: 1 };
    const plain = curateSftExamples(world, tokenizer, options, format);
    const task = retrievalAugmentedSftTask(world, { retriever, k: 3, seed: 1 });
    const { examples, report } = task.examples(format, options);
    expect(examples).toHaveLength(plain.examples.length);
    let withEvidence = 0;
    examples.forEach((example, i) => {
      const own = plain.examples[i]!;
      expect(Array.from(example.answerTokens)).toEqual(Array.from(own.answerTokens));
      expect(example.promptTokens.length + example.answerTokens.length).toBeLessThanOrEqual(128);
      // <bos> documents… prompt <sep>: the prompt's own tokens close it.
      const tail = Array.from(own.promptTokens.slice(1));
      expect(Array.from(example.promptTokens.slice(-tail.length))).toEqual(tail);
      if (example.promptTokens.length > own.promptTokens.length) withEvidence += 1;
    });
    expect(withEvidence).toBeGreaterThan(examples.length / 2);
    expect(report.evidence?.k).toBe(3);
    expect(report.evidence?.documents).toBeGreaterThan(1);
    // Query dropout is seeded: the same examples twice.
    const again = task.examples(format, options).examples;
    expect(again.map((e) => Array.from(e.promptTokens))).toEqual(examples.map((e) => Array.from(e.promptTokens)));
  });

  it("is configured under sft.retrieval, checked, and refused for the caption task", () => {
    expect(decodePretrainConfig({}, "x").sft.retrieval).toBeUndefined();
    expect(decodePretrainConfig({ sft: { retrieval: { index: "i" } } }, "x").sft.retrieval).toEqual({
      index: "i",
      kind: "bm25",
      k: 3,
      queryDropout: 0.2,
    });
    expect(() => decodePretrainConfig({ sft: { retrieval: { index: "i", k: 0 } } }, "x")).toThrow(
      /sft\.retrieval\.k.*\[1, 64\]/,
    );
    expect(() => decodePretrainConfig({ sft: { retrieval: { k: 2 } } }, "x")).toThrow(/sft\.retrieval\.index/);
    expect(() => decodePretrainConfig({ sft: { retrieval: { index: "i" } }, vision: {} }, "x")).toThrow(
      /sft\.retrieval.*caption task has no retrieval index/,
    );
  });
});
