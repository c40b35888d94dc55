/**
 * Pretraining on the FactWorld corpus: the world, its tokenizer and corpus from seeds, a dense (or
 * any registered backbone) policy from the model settings, next-token training with periodic eval
 * loss and checkpoints, and resume from the last checkpoint. `factrl pretrain` calls `pretrain`.
 *
 * BLT reads the same corpus as UTF-8 bytes (BOS … EOS per document; `seqLen` and `maxSeqLen` in
 * bytes). Its recipe has one more stage before next-byte training: the entropy model is trained on
 * the bytes and the patching threshold calibrated to a mean patch length; both then stay frozen
 * and travel with the weights.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type CorpusOptions,
  createTokenizer,
  generateCorpus,
  nameEchoDocuments,
  tokenizerFromWords,
  type WordTokenizer,
  type World,
  type WorldSpec,
  worldFromSpec,
} from "../envs/index.ts";
import {
  BLT_VOCAB_SIZE,
  type BltConfig,
  BltPolicy,
  BOE,
  BOS,
  BYTE_OFFSET,
  bitsPerByte,
  bltConfigForShape,
  EOS,
  encodeBytes,
  PAD,
  prepareEntropyPatching,
} from "../models/blt/index.ts";
import {
  buildPolicy,
  byteTextFormat,
  type ImageTokenizer,
  imageTokenizerOfRecord,
  imageTokenizerRecord,
  imageTokenRange,
  loadCheckpoint,
  type Policy,
  type PolicyConfigBase,
  type PromptAnswerBatch,
} from "../models/index.ts";
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
import {
  captionTokenizer,
  imageTokenizerFromPictures,
  pictureDocumentTokens,
  picturePretrainingSet,
  seededSample,
  type VisionPretraining,
} from "./pretrain-vision.ts";

/** The architecture part of a model config (vocabulary and special tokens come from the tokenizer). */
export interface ModelShape {
  readonly backbone: string;
  readonly dModel: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly dFF: number;
  readonly maxSeqLen: number;
  readonly positions: "rope" | "learned";
  /** BLT only: buckets of each hashed n-gram table (default: the backbone's). */
  readonly hashBuckets?: number;
  /** BLT only: local encoder and decoder layers, each side (default: the backbone's, 1). */
  readonly localLayers?: number;
  /** BLT only: the local layers' causal attention window in bytes (default: the backbone's, 64). */
  readonly localWindow?: number;
  /** BLT only: patches from the entropy model (the default) or one per word (`space`). */
  readonly patching?: "entropy" | "space";
  readonly [extra: string]: unknown;
}

/** BLT only: how the entropy model is trained and the patching threshold calibrated. */
export interface EntropyPatchingSettings {
  readonly steps: number;
  readonly batchSize: number;
  /** Bytes per training window. */
  readonly seqLen: number;
  readonly learningRate: number;
  /** The calibration target: mean patch length in bytes (the paper's ≈ 4.5). */
  readonly meanPatchLength: number;
}

export const DEFAULT_ENTROPY_PATCHING: EntropyPatchingSettings = {
  steps: 300,
  batchSize: 16,
  seqLen: 128,
  learningRate: 3e-3,
  meanPatchLength: 5,
};

export interface PretrainSettings extends OptimizerSettings {
  /** FactWorld size preset. */
  readonly world: WorldSpec;
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
  /** BLT only (default `DEFAULT_ENTROPY_PATCHING`). */
  readonly entropy?: EntropyPatchingSettings;
  /** BLT only: name-echo documents added to the training stream (envs `nameEchoDocuments`; default none). */
  readonly nameEchoDocuments?: number;
  /**
   * A captioner (dense or MoT): the caption task's vocabulary, a VQ image tokenizer learned from the
   * pretraining pictures, and picture–caption documents mixed into the stream (pretrain-vision.ts).
   */
  readonly vision?: VisionPretraining;
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

export function factWorldSetup(spec: WorldSpec): FactWorldSetup {
  const world = worldFromSpec(spec);
  return { world, tokenizer: createTokenizer(world) };
}

/**
 * A model config for `tokenizer`'s vocabulary and special tokens, plus `image`'s tokens after the
 * words when the policy reads pictures — or, for BLT, for bytes (the model section's shape is the
 * global transformer's; `maxSeqLen` is in bytes).
 */
export function modelConfigFor(
  shape: ModelShape,
  tokenizer: WordTokenizer,
  initSeed: number,
  image?: ImageTokenizer,
): PolicyConfigBase {
  const { hashBuckets, localLayers, localWindow, patching, ...architecture } = shape;
  if (shape.backbone === "blt") {
    if (image) throw new Error("a blt policy reads bytes: it has no image tokens (docs/backbones.md)");
    const config: BltConfig = bltConfigForShape(shape, initSeed);
    const sized: BltConfig = {
      ...config,
      hash: { ...config.hash, buckets: hashBuckets ?? config.hash.buckets },
      local: {
        ...config.local,
        encoderLayers: localLayers ?? config.local.encoderLayers,
        decoderLayers: localLayers ?? config.local.decoderLayers,
        window: localWindow ?? config.local.window,
      },
      ...(patching === "space" ? { patching: { mode: "space" } } : {}),
    };
    return sized;
  }
  if ([hashBuckets, localLayers, localWindow, patching].some((setting) => setting !== undefined)) {
    throw new Error(
      `model.hashBuckets, model.localLayers, model.localWindow and model.patching are for the BLT backbone, not ${shape.backbone}`,
    );
  }
  const { pad, bos, eos, thinkOpen, thinkClose } = tokenizer.specialTokens;
  return {
    ...architecture,
    vocabSize: tokenizer.vocabSize + (image?.codebook.size ?? 0),
    specialTokens: { pad, bos, eos, thinkOpen, thinkClose },
    initSeed,
    ...(image ? { imageTokens: imageTokenRange(image) } : {}),
  };
}

/** What a checkpoint of a byte-level (BLT) policy stores as its tokenizer: UTF-8 bytes, no words. */
export const BYTE_TOKENIZER_RECORD = {
  kind: "bytes",
  vocabSize: BLT_VOCAB_SIZE,
  byteOffset: BYTE_OFFSET,
  specialTokens: { boe: BOE, bos: BOS, eos: EOS, pad: PAD },
} as const;

/**
 * What a checkpoint of a word-level policy stores as its tokenizer, and how to get the tokenizer back;
 * a policy that reads pictures also stores its image tokenizer (the VQ codebook, ids after the words).
 */
export const tokenizerRecord = (tokenizer: WordTokenizer, image?: ImageTokenizer) => ({
  kind: "factworld-words",
  words: tokenizer.words,
  ...(image ? { image: imageTokenizerRecord(image) } : {}),
});

/** The tokenizer record of a `backbone` policy trained on `tokenizer`'s world (and `image`'s pictures). */
export const tokenizerRecordFor = (backbone: string, tokenizer: WordTokenizer, image?: ImageTokenizer) =>
  backbone === "blt" ? BYTE_TOKENIZER_RECORD : tokenizerRecord(tokenizer, image);

export const isByteTokenizerRecord = (record: unknown): boolean =>
  (record as { kind?: unknown } | undefined)?.kind === "bytes";

export function tokenizerFromRecord(record: unknown, source: string): WordTokenizer {
  if (isByteTokenizerRecord(record)) {
    throw new Error(
      `${source}: a byte-level (BLT) checkpoint has no word tokenizer; it reads and writes UTF-8 bytes (textFormatFor("blt", …))`,
    );
  }
  const words = (record as { words?: unknown } | undefined)?.words;
  if (!Array.isArray(words)) throw new Error(`${source}: the checkpoint has no FactWorld tokenizer (tokenizer.json)`);
  return tokenizerFromWords(words as string[]);
}

/**
 * The world's word tokenizer for a checkpointed policy (claims are parsed in words whatever the
 * backbone): a word policy's own (which must be `world`'s), a byte policy's world's. Fails when the
 * record does not fit the backbone.
 */
export function checkpointWordTokenizer(
  record: unknown,
  backbone: string,
  world: WordTokenizer,
  source: string,
): WordTokenizer {
  const bytes = backbone === "blt";
  if (bytes !== isByteTokenizerRecord(record)) {
    throw new Error(
      `${source}: a ${backbone} policy needs a ${bytes ? "byte" : "word"} tokenizer record, the checkpoint has ${JSON.stringify((record as { kind?: unknown } | undefined)?.kind)}`,
    );
  }
  if (bytes) return world;
  const saved = tokenizerFromRecord(record, source);
  if (saved.words.join(" ") !== world.words.join(" ")) {
    throw new Error(`${source}: its tokenizer is not this world's (another world size or seed?)`);
  }
  return saved;
}

/** BLT's patching after the entropy stage: what the threshold cuts held-out bytes into. */
export interface PatchingSummary {
  readonly threshold: number;
  /** Mean patch length on held-out windows (bytes). */
  readonly meanPatchLength: number;
  /** The entropy model's bits per byte on held-out windows. */
  readonly entropyModelBitsPerByte: number;
}

export interface PretrainOutcome extends TrainingResult {
  readonly policy: Policy;
  readonly tokenizer: WordTokenizer;
  /** A captioner's image tokenizer (saved with it). */
  readonly image?: ImageTokenizer;
  readonly world: World;
  readonly checkpointDir: string;
  /** Step the run resumed from (0 for a fresh run). */
  readonly resumedFrom: number;
  /** BLT with entropy patching: the patching it trained with. */
  readonly patching?: PatchingSummary;
}

/**
 * Pretrains into `outDir/pretrain` (the checkpoint, rewritten every `checkpointEvery` steps). If a
 * checkpoint is already there, training resumes from its step with its weights and Adam state (a
 * BLT's entropy model and threshold included). A fresh BLT first gets its entropy patching.
 */
export async function pretrain(
  settings: PretrainSettings,
  outDir: string,
  onProgress?: (progress: TrainingProgress) => void,
  onPatching?: (patching: PatchingSummary) => void,
): Promise<PretrainOutcome> {
  const world = worldFromSpec(settings.world);
  const tokenizer = settings.vision ? captionTokenizer(world) : createTokenizer(world);
  const bytes = settings.model.backbone === "blt";
  if (bytes && settings.vision) throw new Error("pretrain: a blt policy reads bytes, it has no image tokens");
  const checkpointDir = join(outDir, "pretrain");
  const resuming = existsSync(join(checkpointDir, "manifest.json"));
  let documents = generateCorpus(world, settings.corpus).map((d) =>
    bytes ? encodeBytes(d.text) : tokenizer.encode(d.text),
  );
  let image: ImageTokenizer | undefined;
  if (settings.vision) {
    // The codebook is learned once and saved with every checkpoint: a resumed run reads it back.
    const pictures = picturePretrainingSet(world, settings.vision.pictureDocuments, settings.seed);
    image = resuming
      ? savedImageTokenizer(checkpointDir)
      : imageTokenizerFromPictures(pictures.pictures, tokenizer, {
          codebookSize: settings.vision.codebookSize,
          seed: settings.seed,
        });
    documents = mixedDocuments(documents, pictureDocumentTokens(pictures, image, tokenizer), settings.seed);
  }
  const heldOut = Math.max(1, Math.round(documents.length * settings.evalFraction));
  const [bos, eos] = bytes ? [BOS, EOS] : [tokenizer.specialTokens.bos, tokenizer.specialTokens.eos];
  const trainStream = concatTokens([
    tokenStream(documents.slice(heldOut), bos, eos),
    ...nameEchoStream(world, settings.model.backbone, settings.nameEchoDocuments ?? 0, settings.seed),
  ]);
  const evalStream = tokenStream(documents.slice(0, heldOut), bos, eos);
  const config = modelConfigFor(settings.model, tokenizer, settings.seed, image);
  if (settings.seqLen + 1 > config.maxSeqLen) {
    throw new Error(`pretrain: seqLen ${settings.seqLen} + 1 exceeds model.maxSeqLen ${config.maxSeqLen}`);
  }
  const policy = buildPolicy(config);
  const optimizer = createOptimizer(settings);
  const evalBatches = evalWindows(evalStream, settings.batchSize, settings.seqLen, settings.evalBatches);
  let startStep = 0;
  if (resuming) {
    const loaded = await loadCheckpoint(checkpointDir, { policy, optimizer });
    checkpointWordTokenizer(loaded.tokenizer, config.backbone, tokenizer, checkpointDir);
    startStep = loaded.step;
  }
  let patching: PatchingSummary | undefined;
  if (policy instanceof BltPolicy && policy.config.patching.mode === "entropy") {
    if (startStep === 0) {
      const entropy = settings.entropy ?? DEFAULT_ENTROPY_PATCHING;
      // Pieces of the training stream, so the entropy model and the threshold see what the BLT
      // will: windows that start mid-document and cross document boundaries.
      await prepareEntropyPatching(policy, streamPieces(trainStream, entropy.seqLen), {
        steps: entropy.steps,
        batchSize: entropy.batchSize,
        windowLength: entropy.seqLen,
        learningRate: entropy.learningRate,
        seed: settings.seed,
        meanPatchLength: entropy.meanPatchLength,
      });
    }
    patching = patchingSummary(policy, evalBatches);
    onPatching?.(patching);
  }
  const result = await trainLanguageModel({
    ...settings,
    policy,
    optimizer,
    batchAt: windowBatches(trainStream, settings.batchSize, settings.seqLen, settings.seed),
    evalBatches,
    checkpointDir,
    tokenizer: tokenizerRecordFor(config.backbone, tokenizer, image),
    startStep,
    ...(onProgress ? { onProgress } : {}),
  });
  optimizer.dispose();
  return {
    ...result,
    policy,
    tokenizer,
    ...(image ? { image } : {}),
    world,
    checkpointDir,
    resumedFrom: startStep,
    ...(patching ? { patching } : {}),
  };
}

/**
 * Name-echo documents as a BLT reads a prompt and writes an answer (`BOS` prompt "\n" answer
 * `EOS`), to be trained on with the corpus; the held-out stream stays corpus-only.
 */
function nameEchoStream(world: World, backbone: string, count: number, seed: number): Int32Array[] {
  if (count === 0) return [];
  if (backbone !== "blt") throw new Error(`pretrain: name-echo documents are for the blt backbone, not ${backbone}`);
  return nameEchoDocuments(world, count, seed).map((d) =>
    concatTokens([byteTextFormat.promptTokens(d.prompt), byteTextFormat.answerTokens(d.answer)]),
  );
}

/** Text and picture documents in one seeded order, so every window of the stream may hold either. */
function mixedDocuments(text: readonly Int32Array[], pictures: readonly Int32Array[], seed: number): Int32Array[] {
  return seededSample([...text, ...pictures], text.length + pictures.length, seed);
}

/** The image tokenizer a pretraining checkpoint was saved with (its config is checked when it loads). */
function savedImageTokenizer(checkpointDir: string): ImageTokenizer {
  const source = join(checkpointDir, "tokenizer.json");
  const image = imageTokenizerOfRecord(JSON.parse(readFileSync(source, "utf8")), source);
  if (!image) throw new Error(`${source}: a vision pretraining checkpoint without an image tokenizer`);
  return image;
}

const concatTokens = (parts: readonly Int32Array[]): Int32Array => {
  const joined = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return joined;
};

/** Consecutive pieces of `length` tokens (the last one shorter). */
const streamPieces = (stream: Int32Array, length: number): Int32Array[] =>
  Array.from({ length: Math.ceil(stream.length / length) }, (_, i) => stream.subarray(i * length, (i + 1) * length));

/** The threshold in use, and what it does to the held-out windows (each window as one sequence). */
function patchingSummary(policy: BltPolicy, evalBatches: readonly PromptAnswerBatch[]): PatchingSummary {
  const windows = evalBatches.flatMap((b) => b.prompts.map((p, i) => Int32Array.from([...p, ...b.answers[i]!])));
  let patches = 0;
  let positions = 0;
  for (const window of windows) {
    const lengths = policy.patchLengths(window);
    patches += lengths.length;
    positions += window.length + 1;
  }
  return {
    threshold: policy.entropyThreshold,
    meanPatchLength: positions / patches,
    entropyModelBitsPerByte: bitsPerByte(policy.entropyModel, windows),
  };
}
