import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { analyzeAnswer, ClaimVerifier, SUITES } from "../envs/index.ts";
import { initBackend } from "../models/backend.ts";
import { wordTextFormat } from "../models/index.ts";
import { DEFAULT_PRETRAIN, factWorldSetup, pretrain } from "./pretrain-factworld.ts";
import { curateSftExamples, DEFAULT_SFT, finetune } from "./sft.ts";
import { evaluateFactuality } from "./sft-eval.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("SFT curation", () => {
  it("keeps only well-formed, fully supported examples from the train split, balanced across suites and types", () => {
    const { world, tokenizer } = factWorldSetup("default");
    const { examples, report } = curateSftExamples(world, tokenizer, { count: 1000, maxSeqLen: 256, seed: 1 });
    expect(examples.length).toBe(1000);
    expect(report.selected).toBe(1000);
    const verifier = new ClaimVerifier(world);
    for (const example of examples) {
      expect(example.prompt.split).toBe("train");
      const analysis = analyzeAnswer(verifier, example.answerText);
      expect(analysis.format.ok).toBe(true);
      expect(analysis.supported).toBeGreaterThan(0);
      expect(analysis.contradicted + analysis.unverifiable).toBe(0);
      expect(example.answerTokens.at(-1)).toBe(tokenizer.specialTokens.eos);
      expect(example.promptTokens.length + example.answerTokens.length).toBeLessThanOrEqual(256);
    }
    expect(Object.keys(report.bySuite).sort()).toEqual([...SUITES].sort());
    expect(Object.keys(report.byEntityType).length).toBe(4);
    expect(Object.keys(report.byBucket).sort()).toEqual(["head", "tail", "torso"]);
    // Round-robin: no suite takes more than half the set.
    for (const n of Object.values(report.bySuite)) expect(n).toBeLessThan(500);
  });

  it("balances the candidates over the world's metadata first when asked (balanceTailShare), counting what it dropped", () => {
    const { world, tokenizer } = factWorldSetup("tiny");
    const all = curateSftExamples(world, tokenizer, { count: 1000, maxSeqLen: 256, seed: 1 });
    const balanced = curateSftExamples(world, tokenizer, {
      count: 1000,
      maxSeqLen: 256,
      seed: 1,
      balanceTailShare: 0.05,
    });
    const dropped = balanced.report.rejected["balanced out (MetaCLIP)"] ?? 0;
    expect(dropped).toBeGreaterThan(0);
    expect(balanced.report.selected).toBe(all.report.selected - dropped);
  });

  it("selects LIMA-style when asked: no duplicate answers, more entities and facts than a random set of the same size", () => {
    const { world, tokenizer } = factWorldSetup("default");
    const coverage = (selection: "lima" | "random") => {
      const { examples } = curateSftExamples(world, tokenizer, { count: 250, maxSeqLen: 256, seed: 1, selection });
      return {
        size: examples.length,
        entities: new Set(examples.map((e) => e.prompt.focus.entityId)).size,
        duplicates: examples.length - new Set(examples.map((e) => e.answerText)).size,
      };
    };
    const lima = coverage("lima");
    const random = coverage("random");
    expect([lima.size, random.size]).toEqual([250, 250]);
    expect(lima.duplicates).toBe(0);
    expect(lima.entities).toBeGreaterThan(random.entities + 40);
  });

  it("is deterministic from its seed and drops what does not fit", () => {
    const { world, tokenizer } = factWorldSetup("tiny");
    const a = curateSftExamples(world, tokenizer, { count: 30, maxSeqLen: 128, seed: 4 });
    const b = curateSftExamples(world, tokenizer, { count: 30, maxSeqLen: 128, seed: 4 });
    expect(a.examples.map((e) => e.prompt.id)).toEqual(b.examples.map((e) => e.prompt.id));
    const short = curateSftExamples(world, tokenizer, { count: 30, maxSeqLen: 40, seed: 4 });
    expect(short.report.rejected["longer than maxSeqLen"]).toBeGreaterThan(0);
  });
});

describe("SFT training (tiny)", () => {
  it("turns a briefly pretrained model into one that writes well-formed <think> … </think> answers", async () => {
    const out = mkdtempSync(join(tmpdir(), "factrl-sft-"));
    const model = {
      backbone: "dense",
      dModel: 48,
      nLayers: 1,
      nHeads: 2,
      dFF: 96,
      maxSeqLen: 128,
      positions: "rope",
    } as const;
    const pre = await pretrain(
      {
        ...DEFAULT_PRETRAIN,
        world: "tiny",
        model,
        seqLen: 32,
        batchSize: 16,
        learningRate: 5e-3,
        warmupSteps: 5,
        totalSteps: 20,
        evalEvery: 0,
        checkpointEvery: 0,
      },
      out,
    );
    const { world, tokenizer } = factWorldSetup("tiny");
    const { examples } = curateSftExamples(world, tokenizer, { count: 16, maxSeqLen: 128, seed: 1 });
    const prompts = examples.map((e) => e.prompt);
    const sampling = { temperature: 0.3, topP: 1, maxNewTokens: 90, seed: 2, batchSize: 16 };
    const before = await evaluateFactuality(pre.policy, world, tokenizer, prompts, sampling);
    pre.policy.dispose();

    const sft = await finetune(world, join(out, "pretrain"), join(out, "sft"), {
      ...DEFAULT_SFT,
      examples: 17, // one held out for the eval loss, 16 to learn the format from
      evalFraction: 0.05,
      batchSize: 16,
      learningRate: 1e-2,
      warmupSteps: 5,
      totalSteps: 80,
      evalEvery: 0,
      checkpointEvery: 0,
    });
    const after = await evaluateFactuality(sft.policy, world, tokenizer, prompts, sampling);
    expect(sft.finalEvalLoss).toBeLessThan(sft.firstLoss);
    expect(before.wellFormedRate).toBeLessThan(0.2);
    expect(after.wellFormedRate).toBeGreaterThanOrEqual(0.75);
    // The reasoning repeats the asked name only once the format is learned (these prompts were trained on).
    expect(before.namesEntityRate).toBeLessThan(0.2);
    expect(after.namesEntityRate).toBeGreaterThanOrEqual(0.5);
    // The answers are read back by the same prompt format the rollouts use.
    const sample = await sft.policy.sample([wordTextFormat(tokenizer).promptTokens(prompts[0]!.text)], {
      maxNewTokens: 90,
      seed: 1,
      temperature: 0.3,
    });
    expect(wordTextFormat(tokenizer).answerText(sample.sequences[0]!.tokens)).toMatch(/^<think> .* <\/think> /);
    sft.policy.dispose();
  });
});
