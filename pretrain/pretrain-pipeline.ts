/**
 * The base policy, end to end — what `factrl pretrain CONFIG` runs: FactWorld pretraining
 * (resumable; from a Hugging Face model with `init`, in its own tokenizer) → LIMA-style SFT → a factuality report on eval-split prompts by popularity bucket →
 * optionally a shipped copy (float16, no optimiser state) with the report inside its manifest.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { huggingFaceDir } from "../configs/index.ts";
import {
  captionExamples,
  factWorld,
  generatePrompts,
  type WordTokenizer,
  type World,
  type WorldSpec,
} from "../envs/index.ts";
import {
  DEFAULT_RETRIEVAL_RULES,
  type HuggingFaceTokenizerRecord,
  type ImageTokenizer,
  importHuggingFaceModel,
  openRetriever,
  type Policy,
  saveCheckpoint,
  textFormatFor,
  textFormatOfRecord,
  tokenizerRecordFor,
} from "../models/index.ts";
import type { TrainingProgress } from "./pretrain.ts";
import type { PretrainConfig } from "./pretrain-config.ts";
import { DEFAULT_PRETRAIN, factWorldSetup, type PatchingSummary, pretrain } from "./pretrain-factworld.ts";
import { type CaptionReport, evaluateCaptions, seededSample, type VisionPretraining } from "./pretrain-vision.ts";
import {
  type CurationReport,
  captionSftTask,
  DEFAULT_SFT,
  finetune,
  retrievalAugmentedSftTask,
  type SftTask,
} from "./sft.ts";
import { evaluateFactuality, type FactualityReport } from "./sft-eval.ts";

export interface BasePolicyReport {
  /** The Hugging Face model it started from (`init: hf:DIR`). */
  readonly init?: string;
  /** The corpus stage (absent when it was skipped: `init` with `pretrain.steps: 0`). */
  readonly pretrain?: {
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
  const vision = visionPretraining(config);
  // With init and no corpus steps, SFT starts from the imported model as it is.
  const start =
    config.init !== undefined && config.pretrain.steps === 0
      ? await importedStart(config, config.init)
      : await pretrainedStart(config, onEvent);
  const { world, tokenizer, image } = start;
  let policy: Policy = start.policy;
  let checkpoint = start.checkpointDir;
  let step = start.step;
  let sftSummary: BasePolicyReport["sft"];
  if (config.sft.steps > 0) {
    start.policy.dispose();
    const s = config.sft;
    const task: SftTask | undefined = vision
      ? captionSftTask(world, vision)
      : s.retrieval
        ? retrievalAugmentedSftTask(world, {
            retriever: await openRetriever(
              s.retrieval.index,
              worldEnvironment(config.world),
              { ...DEFAULT_RETRIEVAL_RULES, queryDropout: s.retrieval.queryDropout },
              s.retrieval.kind,
            ),
            k: s.retrieval.k,
            seed: config.seed,
          })
        : undefined;
    const sft = await finetune(
      world,
      start.checkpointDir,
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
      ...(task ? [task] : []),
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
  // An imported policy reads and writes through its own tokenizer (models/hf-text-format.ts).
  const record = start.record ?? tokenizerRecordFor(policy.config.backbone, tokenizer, image);
  const format = start.record
    ? textFormatOfRecord(policy.config.backbone, start.record, start.checkpointDir)
    : textFormatFor(policy.config.backbone, tokenizer, image);

  let factuality: FactualityReport | undefined;
  let captions: CaptionReport | undefined;
  if (config.evaluation.prompts > 0 && vision) {
    const evalPictures = seededSample(
      captionExamples(world, vision.task).filter((e) => e.prompt.split === "eval"),
      config.evaluation.prompts,
      config.seed,
    );
    onEvent({ stage: "evaluate", prompts: evalPictures.length });
    captions = await evaluateCaptions(policy, format, world, evalPictures, {
      temperature: config.evaluation.temperature,
      maxNewTokens: config.evaluation.maxNewTokens,
      seed: config.seed,
      batchSize: config.evaluation.batch,
    });
  } else if (config.evaluation.prompts > 0) {
    const evalPrompts = seededSample(
      generatePrompts(world).filter((prompt) => prompt.split === "eval"),
      config.evaluation.prompts,
      config.seed,
    );
    onEvent({ stage: "evaluate", prompts: evalPrompts.length });
    factuality = await evaluateFactuality(
      policy,
      world,
      tokenizer,
      evalPrompts,
      {
        temperature: config.evaluation.temperature,
        topP: 1,
        maxNewTokens: config.evaluation.maxNewTokens,
        seed: config.seed,
        batchSize: config.evaluation.batch,
      },
      format,
    );
  }
  const summary = {
    ...(start.pretrain ? { pretrain: start.pretrain } : {}),
    ...(config.init !== undefined ? { init: config.init } : {}),
    ...(sftSummary ? { sft: sftSummary } : {}),
    ...(factuality ? { factuality } : {}),
    ...(captions ? { captions } : {}),
    checkpoint,
  };
  if (config.export) {
    await saveCheckpoint(config.export.dir, {
      policy,
      step,
      tokenizer: record,
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

/**
 * The world as an environment, for its documents: what a retrieval index is built over and checked
 * against (prompt seeds do not change the documents).
 */
const worldEnvironment = (spec: WorldSpec) =>
  factWorld({ ...(typeof spec === "string" ? { size: spec } : spec), promptSeed: 1, evalFraction: 0.2 });

/** The config's `vision` section as pretraining settings (absent: a text policy). */
function visionPretraining(config: PretrainConfig): VisionPretraining | undefined {
  if (!config.vision) return undefined;
  const { codebookSize, pictureDocuments, captions, altText, ...task } = config.vision;
  return { task: { ...task, altText: altText ?? {} }, codebookSize, pictureDocuments, captions };
}

/** Where SFT starts: the pretrained policy, or the imported one (with its tokenizer record), pretrained or not. */
interface Start {
  readonly world: World;
  /** The world's words: claims are read in them whatever the policy's tokenizer. */
  readonly tokenizer: WordTokenizer;
  readonly image?: ImageTokenizer;
  readonly policy: Policy;
  readonly checkpointDir: string;
  readonly step: number;
  /** An imported policy's own tokenizer record (models/hf-text-format.ts). */
  readonly record?: HuggingFaceTokenizerRecord;
  readonly pretrain?: BasePolicyReport["pretrain"];
}

/**
 * The corpus stage (resumable) on FactWorld's words, or, with `init: hf:DIR`, continued pretraining
 * of the imported model on the same corpus in the model's own tokenizer.
 */
async function pretrainedStart(config: PretrainConfig, onEvent: (event: PipelineEvent) => void): Promise<Start> {
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
      ...(config.init !== undefined ? { init: huggingFaceDir(config.init) ?? config.init } : {}),
    },
    config.output,
    (progress) => onEvent({ stage: "pretrain", progress }),
    (patching) => onEvent({ stage: "patching", patching }),
  );
  return {
    world: pre.world,
    tokenizer: pre.tokenizer,
    ...(pre.image ? { image: pre.image } : {}),
    ...(pre.record ? { record: pre.record } : {}),
    policy: pre.policy,
    checkpointDir: pre.checkpointDir,
    step: pre.steps + pre.resumedFrom,
    pretrain: {
      steps: pre.steps,
      resumedFrom: pre.resumedFrom,
      finalEvalLoss: pre.finalEvalLoss,
      evalLosses: pre.history.flatMap((p) => (p.evalLoss === undefined ? [] : [{ step: p.step, loss: p.evalLoss }])),
      trainTokens: pre.trainTokens,
      heldOutTokens: pre.heldOutTokens,
      ...(pre.patching ? { patching: pre.patching } : {}),
    },
  };
}

/**
 * `init: hf:DIR` without a corpus stage: the imported policy, saved as step 0 in `OUTPUT/init` (SFT starts and resumes from
 * checkpoints; the Hugging Face tokenizer travels in it).
 */
async function importedStart(config: PretrainConfig, init: string): Promise<Start> {
  const imported = await importHuggingFaceModel(huggingFaceDir(init) ?? init);
  const checkpointDir = join(config.output, "init");
  await saveCheckpoint(checkpointDir, {
    policy: imported.policy,
    step: 0,
    tokenizer: imported.tokenizer,
    trainerState: { madeBy: "factrl pretrain", init },
  });
  const { world, tokenizer } = factWorldSetup(config.world);
  return { world, tokenizer, policy: imported.policy, checkpointDir, step: 0, record: imported.tokenizer };
}
