/**
 * Pretraining on the FactWorld corpus: the world, its tokenizer and corpus from seeds, a dense (or
 * any registered backbone) policy from the model settings, next-token training with periodic eval
 * loss and checkpoints, and resume from the last checkpoint. `factrl pretrain` calls `pretrain`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type CorpusOptions,
  createTokenizer,
  generateCorpus,
  generateWorld,
  tokenizerFromWords,
  WORLD_SIZES,
  type WordTokenizer,
  type World,
  type WorldSize,
} from "../envs/index.ts";
import { buildPolicy, loadCheckpoint, type Policy, type PolicyConfigBase } from "../models/index.ts";
import {
  createOptimizer,
  evalWindows,
  type OptimizerSettings,
  type TrainingProgress,
  type TrainingResult,
  tokenStream,
  trainLanguageModel,
  windowBatches,
} from "./pretrain.ts";

/** The architecture part of a model config (vocabulary and special tokens come from the tokenizer). */
export interface ModelShape {
  readonly backbone: string;
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dFF: number;
  readonly maxSeqLen: number;
  readonly positions: "rope" | "learned";
  readonly [extra: string]: unknown;
}

export interface PretrainSettings extends OptimizerSettings {
  /** FactWorld size preset. */
  readonly world: WorldSize;
  /** Corpus generation (seed, documents, noise); defaults from envs. */
  readonly corpus?: Partial<CorpusOptions>;
  readonly model: ModelShape;
  /** Tokens per training window. */
  readonly seqLen: number;
  readonly batchSize: number;
  /** Share of corpus documents held out for the eval loss. */
  readonly evalFraction: number;
  /** Eval batches (of batchSize windows) per eval. */
  readonly evalBatches: number;
  readonly evalEvery: number;
  readonly checkpointEvery: number;
  /** Seed of weight init and window sampling. */
  readonly seed: number;
}

export const DEFAULT_PRETRAIN: PretrainSettings = {
  world: "default",
  model: { backbone: "dense", dModel: 128, nLayers: 2, nHeads: 4, dFF: 512, maxSeqLen: 256, positions: "rope" },
  seqLen: 128,
  batchSize: 32,
  learningRate: 2e-3,
  warmupSteps: 50,
  totalSteps: 1200,
  clipNorm: 1,
  evalFraction: 0.02,
  evalBatches: 4,
  evalEvery: 100,
  checkpointEvery: 200,
  seed: 1,
};

/** The FactWorld pieces every stage (pretrain, SFT, evaluation) rebuilds from the same seeds. */
export interface FactWorldSetup {
  readonly world: World;
  readonly tokenizer: WordTokenizer;
}

export function factWorldSetup(size: WorldSize): FactWorldSetup {
  const world = generateWorld(WORLD_SIZES[size]);
  return { world, tokenizer: createTokenizer(world) };
}

/** A model config for `tokenizer`'s vocabulary and special tokens. */
export function modelConfigFor(shape: ModelShape, tokenizer: WordTokenizer, initSeed: number): PolicyConfigBase {
  const { pad, bos, eos, thinkOpen, thinkClose } = tokenizer.specialTokens;
  return {
    ...shape,
    vocabSize: tokenizer.vocabSize,
    specialTokens: { pad, bos, eos, thinkOpen, thinkClose },
    initSeed,
  };
}

/** What a checkpoint stores as its tokenizer, and how to get the tokenizer back. */
export const tokenizerRecord = (tokenizer: WordTokenizer) => ({ kind: "factworld-words", words: tokenizer.words });

export function tokenizerFromRecord(record: unknown, source: string): WordTokenizer {
  const words = (record as { words?: unknown } | undefined)?.words;
  if (!Array.isArray(words)) throw new Error(`${source}: the checkpoint has no FactWorld tokenizer (tokenizer.json)`);
  return tokenizerFromWords(words as string[]);
}

export interface PretrainOutcome extends TrainingResult {
  readonly policy: Policy;
  readonly tokenizer: WordTokenizer;
  readonly world: World;
  readonly checkpointDir: string;
  /** Step the run resumed from (0 for a fresh run). */
  readonly resumedFrom: number;
}

/**
 * Pretrains into `outDir/pretrain` (the checkpoint, rewritten every `checkpointEvery` steps). If a
 * checkpoint is already there, training resumes from its step with its weights and Adam state.
 */
export async function pretrain(
  settings: PretrainSettings,
  outDir: string,
  onProgress?: (progress: TrainingProgress) => void,
): Promise<PretrainOutcome> {
  const { world, tokenizer } = factWorldSetup(settings.world);
  const documents = generateCorpus(world, settings.corpus).map((d) => tokenizer.encode(d.text));
  const heldOut = Math.max(1, Math.round(documents.length * settings.evalFraction));
  const { bos, eos } = tokenizer.specialTokens;
  const trainStream = tokenStream(documents.slice(heldOut), bos, eos);
  const evalStream = tokenStream(documents.slice(0, heldOut), bos, eos);
  const config = modelConfigFor(settings.model, tokenizer, settings.seed);
  if (settings.seqLen + 1 > config.maxSeqLen) {
    throw new Error(`pretrain: seqLen ${settings.seqLen} + 1 exceeds model.maxSeqLen ${config.maxSeqLen}`);
  }
  const checkpointDir = join(outDir, "pretrain");
  const policy = buildPolicy(config);
  const optimizer = createOptimizer(settings);
  let startStep = 0;
  if (existsSync(join(checkpointDir, "manifest.json"))) {
    const loaded = await loadCheckpoint(checkpointDir, { policy, optimizer });
    const saved = tokenizerFromRecord(loaded.tokenizer, checkpointDir);
    if (saved.words.join(" ") !== tokenizer.words.join(" ")) {
      throw new Error(`${checkpointDir}: its tokenizer is not this world's (another world size or seed?)`);
    }
    startStep = loaded.step;
  }
  const result = await trainLanguageModel({
    ...settings,
    policy,
    optimizer,
    batchAt: windowBatches(trainStream, settings.batchSize, settings.seqLen, settings.seed),
    evalBatches: evalWindows(evalStream, settings.batchSize, settings.seqLen, settings.evalBatches),
    checkpointDir,
    tokenizer: tokenizerRecord(tokenizer),
    startStep,
    ...(onProgress ? { onProgress } : {}),
  });
  optimizer.dispose();
  return { ...result, policy, tokenizer, world, checkpointDir, resumedFrom: startStep };
}
