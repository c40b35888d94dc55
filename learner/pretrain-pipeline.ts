/**
 * The base policy, end to end — what `factrl pretrain CONFIG` runs: FactWorld pretraining
 * (resumable) → LIMA-style SFT → a factuality report on eval-split prompts by popularity bucket →
 * optionally a shipped copy (float16, no optimiser state) with the report inside its manifest.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generatePrompts } from "../envs/index.ts";
import { mulberry32, type Policy, saveCheckpoint } from "../models/index.ts";
import type { TrainingProgress } from "./pretrain.ts";
import type { PretrainConfig } from "./pretrain-config.ts";
import {
  DEFAULT_PRETRAIN,
  factWorldSetup,
  type PatchingSummary,
  pretrain,
  tokenizerRecordFor,
} from "./pretrain-factworld.ts";
import { type CurationReport, DEFAULT_SFT, finetune } from "./sft.ts";
import { evaluateFactuality, type FactualityReport } from "./sft-eval.ts";

export interface BasePolicyReport {
  readonly pretrain: {
    readonly steps: number;
    readonly resumedFrom: number;
    readonly finalEvalLoss: number;
    /** BLT: the entropy patching it trained with. */
    readonly patching?: PatchingSummary;
  };
  readonly sft?: {
    readonly steps: number;
    readonly resumedFrom: number;
    readonly finalEvalLoss: number;
    readonly curation: CurationReport;
  };
  readonly factuality?: FactualityReport;
  /** The checkpoint holding the final policy. */
  readonly checkpoint: string;
  readonly exported?: string;
  readonly seconds: number;
}

export type PipelineEvent =
  | { readonly stage: "pretrain" | "sft"; readonly progress: TrainingProgress }
  | { readonly stage: "patching"; readonly patching: PatchingSummary }
  | { readonly stage: "evaluate"; readonly prompts: number }
  | { readonly stage: "done"; readonly report: BasePolicyReport };

export async function makeBasePolicy(
  config: PretrainConfig,
  onEvent: (event: PipelineEvent) => void = () => {},
): Promise<BasePolicyReport> {
  const started = performance.now();
  const { world, tokenizer } = factWorldSetup(config.world);
  // The config names layers and heads as a user would; the BLT-only settings are there only when set.
  const { layers: nLayers, heads: nHeads, ...shape } = config.model;
  const model = { ...shape, nLayers, nHeads };
  const p = config.pretrain;
  const pre = await pretrain(
    {
      ...DEFAULT_PRETRAIN,
      world: config.world,
      model,
      seqLen: p.seqLen,
      batchSize: p.batch,
      learningRate: p.learningRate,
      warmupSteps: p.warmupSteps,
      totalSteps: p.steps,
      ...(p.decaySteps !== undefined ? { decaySteps: p.decaySteps } : {}),
      clipNorm: p.clipNorm,
      evalEvery: p.evalEvery,
      checkpointEvery: p.checkpointEvery,
      seed: config.seed,
      nameEchoDocuments: p.nameEchoDocuments,
      entropy: {
        steps: p.entropy.steps,
        batchSize: p.entropy.batch,
        seqLen: p.entropy.seqLen,
        learningRate: p.entropy.learningRate,
        meanPatchLength: p.entropy.meanPatchLength,
      },
    },
    config.output,
    (progress) => onEvent({ stage: "pretrain", progress }),
    (patching) => onEvent({ stage: "patching", patching }),
  );
  let policy: Policy = pre.policy;
  let checkpoint = pre.checkpointDir;
  let step = pre.steps + pre.resumedFrom;
  let sftSummary: BasePolicyReport["sft"];
  if (config.sft.steps > 0) {
    pre.policy.dispose();
    const s = config.sft;
    const sft = await finetune(
      world,
      pre.checkpointDir,
      join(config.output, "sft"),
      {
        ...DEFAULT_SFT,
        examples: s.examples,
        ...(s.maxLength !== undefined ? { maxExampleLength: s.maxLength } : {}),
        batchSize: s.batch,
        learningRate: s.learningRate,
        warmupSteps: s.warmupSteps,
        totalSteps: s.steps,
        clipNorm: s.clipNorm,
        seed: config.seed,
      },
      (progress) => onEvent({ stage: "sft", progress }),
    );
    policy = sft.policy;
    checkpoint = sft.checkpointDir;
    step = sft.resumedFrom + sft.steps;
    sftSummary = {
      steps: sft.steps,
      resumedFrom: sft.resumedFrom,
      finalEvalLoss: sft.finalEvalLoss,
      curation: sft.curation,
    };
  }

  let factuality: FactualityReport | undefined;
  if (config.evaluation.prompts > 0) {
    const evalPrompts = seededSample(
      generatePrompts(world).filter((prompt) => prompt.split === "eval"),
      config.evaluation.prompts,
      config.seed,
    );
    onEvent({ stage: "evaluate", prompts: evalPrompts.length });
    factuality = await evaluateFactuality(policy, world, tokenizer, evalPrompts, {
      temperature: config.evaluation.temperature,
      topP: 1,
      maxNewTokens: config.evaluation.maxNewTokens,
      seed: config.seed,
      batchSize: config.evaluation.batch,
    });
  }
  const summary = {
    pretrain: {
      steps: pre.steps,
      resumedFrom: pre.resumedFrom,
      finalEvalLoss: pre.finalEvalLoss,
      ...(pre.patching ? { patching: pre.patching } : {}),
    },
    ...(sftSummary ? { sft: sftSummary } : {}),
    ...(factuality ? { factuality } : {}),
    checkpoint,
  };
  if (config.export) {
    await saveCheckpoint(config.export.dir, {
      policy,
      step,
      tokenizer: tokenizerRecordFor(policy.config.backbone, tokenizer),
      weightsDtype: config.export.dtype,
      trainerState: { madeBy: "factrl pretrain", world: config.world, report: summary },
    });
  }
  policy.dispose();
  const report: BasePolicyReport = {
    ...summary,
    ...(config.export ? { exported: config.export.dir } : {}),
    seconds: (performance.now() - started) / 1000,
  };
  mkdirSync(config.output, { recursive: true });
  writeFileSync(join(config.output, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  onEvent({ stage: "done", report });
  return report;
}

/** `count` items in a seeded random order (all of them if there are fewer). */
function seededSample<T>(items: readonly T[], count: number, seed: number): T[] {
  const random = mulberry32(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out.slice(0, count);
}
