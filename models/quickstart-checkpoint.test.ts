/** The base policy shipped for the quick start (made by `factrl pretrain configs/pretrain.yaml`). */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { createTokenizer, generatePrompts, parseAnswer, worldFromSpec } from "../envs/index.ts";
import { initBackend } from "./backend.ts";
import { loadCheckpoint } from "./checkpoint.ts";
import { tokenizerFromRecord } from "./policy-records.ts";
import { wordTextFormat } from "./prompt-format.ts";

const DIR = join(import.meta.dirname, "checkpoints", "quickstart");

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("shipped quick-start policy", () => {
  it("fits in 2 MB and loads with its tokenizer and report", async () => {
    const bytes = readdirSync(DIR).reduce((sum, f) => sum + statSync(join(DIR, f)).size, 0);
    expect(bytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    const loaded = await loadCheckpoint(DIR);
    expect(loaded.manifest.weightsDtype).toBe("float16");
    const world = worldFromSpec("default");
    const tokenizer = createTokenizer(world);
    expect(tokenizerFromRecord(loaded.tokenizer, DIR).words).toEqual(tokenizer.words);
    const report = (
      loaded.trainerState as {
        report: { factuality: { byBucket: Record<"head" | "tail", { hallucinationRate: number }> } };
      }
    ).report;
    expect(report.factuality.byBucket.tail.hallucinationRate).toBeGreaterThan(
      report.factuality.byBucket.head.hallucinationRate,
    );

    // It answers eval-split prompts in the expected format.
    const prompts = generatePrompts(world)
      .filter((p) => p.split === "eval")
      .slice(0, 8);
    const result = await loaded.policy.sample(
      prompts.map((p) => wordTextFormat(tokenizer).promptTokens(p.text)),
      { temperature: 0.7, maxNewTokens: 160, seed: 1 },
    );
    const wellFormed = result.sequences.filter(
      (s) => s.finishReason === "stop" && parseAnswer(wordTextFormat(tokenizer).answerText(s.tokens)).ok,
    ).length;
    expect(wellFormed).toBeGreaterThanOrEqual(6);
    loaded.policy.dispose();
  });
});
