/**
 * The base policy, end to end — what `factrl pretrain CONFIG` runs: FactWorld pretraining
 * (resumable) → LIMA-style SFT → a factuality report on eval-split prompts by popularity bucket →
 * optionally a shipped copy (float16, no optimiser state) with the report inside its manifest.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { captionExamples, generatePrompts } from "../envs/index.ts";
import { type Policy, saveCheckpoint, textFormatFor, tokenizerRecordFor } from "../models/index.ts";
import type { TrainingProgress } from "./pretrain.ts";
import type { PretrainConfig } from "./pretrain-config.ts";
import { DEFAULT_PRETRAIN, type PatchingSummary, pretrain } from "./pretrain-factworld.ts";
import { type CaptionReport, evaluateCaptions, seededSample, type VisionPretraining } from "./pretrain-vision.ts";
import { type CurationReport, captionSftTask, DEFAULT_SFT, finetune } from "./sft.ts";
import { evaluateFactuality, type FactualityReport } from "./sft-eval.ts";

export interface BasePolicyReport {
  readonly pretrain: {
    readonly steps: number;
    readonly resumedFrom: number;
    readonly finalEvalLoss: number;
    /** The held-out loss at every step it was measured (`pretrain.evalEvery`) in this run. */
    readonly evalLosses: readonly { readonly step: number; readonly loss: number }[];
    readonly trainTokens: number;
    readonly heldOutTokens: number;
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
  /** A captioner's report on the caption task's eval pictures (instead of `factuality`). */
  readonly captions?: CaptionReport;
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
  // The config names layers and heads as a user would; the BLT-only settings are there only when set.
  const { layers: nLayers, heads: nHeads, ...shape } = config.model;
  const model = { ...shape, nLayers, nHeads };
  const vision = visionPretraining(config);
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
      ...(p.balanceTailShare !== undefined ? { balanceTailShare: p.balanceTailShare } : {}),
      ...(p.pruneShare !== undefined ? { pruneShare: p.pruneShare } : {}),
      ...(p.lowQualityRate > 0 ? { corpus: { lowQualityRate: p.lowQualityRate } } : {}),
      entropy: {
        steps: p.entropy.steps,
        batchSize: p.entropy.batch,
        seqLen: p.entropy.seqLen,
        learningRate: p.entropy.learningRate,
        meanPatchLength: p.entropy.meanPatchLength,
      },
      ...(vision ? { vision } : {}),
    },
    config.output,
    (progress) => onEvent({ stage: "pretrain", progress }),
    (patching) => onEvent({ stage: "patching", patching }),
  );
  const { world, tokenizer, image } = pre;
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
        ...(s.balanceTailShare !== undefined ? { balanceTailShare: s.balanceTailShare } : {}),
        selection: s.selection,
      },
      (progress) => onEvent({ stage: "sft", progress }),
      ...(vision ? [captionSftTask(world, vision)] : []),
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
  let captions: CaptionReport | undefined;
  if (config.evaluation.prompts > 0 && vision) {
    const evalPictures = seededSample(
      captionExamples(world, vision.task).filter((e) => e.prompt.split === "eval"),
      config.evaluation.prompts,
      config.seed,
    );
    onEvent({ stage: "evaluate", prompts: evalPictures.length });
    captions = await evaluateCaptions(
      policy,
      textFormatFor(policy.config.backbone, tokenizer, image),
      world,
      evalPictures,
      {
        temperature: config.evaluation.temperature,
        maxNewTokens: config.evaluation.maxNewTokens,
        seed: config.seed,
        batchSize: config.evaluation.batch,
      },
    );
  } else if (config.evaluation.prompts > 0) {
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
      evalLosses: pre.history.flatMap((p) => (p.evalLoss === undefined ? [] : [{ step: p.step, loss: p.evalLoss }])),
      trainTokens: pre.trainTokens,
      heldOutTokens: pre.heldOutTokens,
      ...(pre.patching ? { patching: pre.patching } : {}),
    },
    ...(sftSummary ? { sft: sftSummary } : {}),
    ...(factuality ? { factuality } : {}),
    ...(captions ? { captions } : {}),
    checkpoint,
  };
  if (config.export) {
    await saveCheckpoint(config.export.dir, {
      policy,
      step,
      tokenizer: tokenizerRecordFor(policy.config.backbone, tokenizer, image),
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

/** The config's `vision` section as pretraining settings (absent: a text policy). */
function visionPretraining(config: PretrainConfig): VisionPretraining | undefined {
  if (!config.vision) return undefined;
  const { codebookSize, pictureDocuments, captions, altText, ...task } = config.vision;
  return { task: { ...task, altText: altText ?? {} }, codebookSize, pictureDocuments, captions };
}
