import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { comparePretrainTable, readPretrainReport, stepsToLoss } from "./compare.ts";

const curve = [
  { step: 25, loss: 3.1 },
  { step: 50, loss: 2.4 },
  { step: 75, loss: 2.0 },
  { step: 100, loss: 1.9 },
];

function runDir(name: string, report: unknown): string {
  const dir = join(mkdtempSync(join(tmpdir(), "factrl-compare-")), name);
  mkdirSync(dir);
  writeFileSync(join(dir, "report.json"), JSON.stringify(report));
  return dir;
}

const stats = (hallucinationRate: number) => ({
  answers: 10,
  wellFormedRate: 0.9,
  abstentionRate: 0,
  hallucinationRate,
  meanSupported: 2.5,
  meanTokens: 40,
  onTopicClaimRate: 1,
  namesEntityRate: 1,
});

describe("compare-pretrain", () => {
  it("finds the first step at which the held-out loss reaches the target", () => {
    expect(stepsToLoss(curve, 2.4)).toBe(50);
    expect(stepsToLoss(curve, 2.05)).toBe(75);
    expect(stepsToLoss(curve, 1.5)).toBeUndefined();
  });

  it("races every run to the first run's final held-out loss and shows factuality by bucket", () => {
    const reference = readPretrainReport(
      runDir("full", {
        pretrain: { steps: 100, resumedFrom: 0, finalEvalLoss: 2.0, evalLosses: curve, trainTokens: 500000 },
        factuality: {
          ...stats(0.1),
          byBucket: { head: stats(0.05), torso: stats(0.08), tail: stats(0.2) },
          samples: [],
        },
        checkpoint: "x",
        seconds: 1,
      }),
    );
    const faster = readPretrainReport(
      runDir("pruned", {
        pretrain: {
          steps: 100,
          resumedFrom: 0,
          finalEvalLoss: 1.8,
          evalLosses: curve.map((e) => ({ ...e, loss: e.loss - 0.5 })),
          trainTokens: 300000,
        },
        checkpoint: "x",
        seconds: 1,
      }),
    );
    const old = readPretrainReport(
      runDir("old", { pretrain: { steps: 100, resumedFrom: 0, finalEvalLoss: 2.2 }, checkpoint: "x", seconds: 1 }),
    );
    const lines = comparePretrainTable([reference, faster, old]).split("\n");
    expect(lines[0]).toContain("steps to 2.000");
    expect(lines[2]).toBe("| full | 500,000 | 2.000 | 75 | – | 90.0 % | 10.0 % | 5.0 % | 8.0 % | 20.0 % | 2.50 |");
    expect(lines[3]).toMatch(/^\| pruned \| 300,000 \| 1\.800 \| 50 \|/);
    expect(lines[4]).toMatch(/^\| old \| – \| 2\.200 \| not in 100 \|/);
  });

  it("refuses to race runs whose corpus was read by different tokenizers", () => {
    const pretrain = { steps: 100, resumedFrom: 0, finalEvalLoss: 2.0, evalLosses: curve };
    const words = readPretrainReport(runDir("words", { pretrain, checkpoint: "x", seconds: 1 }));
    const llama = readPretrainReport(
      runDir("llama", { init: "hf:models/llama", pretrain, checkpoint: "x", seconds: 1 }),
    );
    expect(() => comparePretrainTable([words, llama])).toThrow(
      /llama read the corpus with hf:models\/llama, words with FactWorld's word tokenizer: .*not comparable/,
    );
    expect(comparePretrainTable([llama, llama]).split("\n")).toHaveLength(4);
  });

  it("names the file that is not a pretrain report", () => {
    const dir = runDir("bogus", { hello: 1 });
    expect(() => readPretrainReport(dir)).toThrow(/bogus\/report\.json is not a factrl pretrain report/);
    expect(() => readPretrainReport(join(dir, "nowhere"))).toThrow(/cannot read .*nowhere\/report\.json/);
  });
});
