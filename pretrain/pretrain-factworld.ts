/**
 * Pretraining on the FactWorld corpus: the world, its tokenizer and corpus from seeds, a dense (or
 * any registered backbone) policy from the model settings, next-token training with periodic eval
 * loss and checkpoints, and resume from the last checkpoint. `factrl pretrain` calls `pretrain`.
 *
 * BLT reads the same corpus as UTF-8 bytes (BOS … EOS per document; `seqLen` and `maxSeqLen` in
 * bytes). Its recipe has one more stage before next-byte training: the entropy model is trained on
 * the bytes and the patching threshold calibrated to a mean patch length; both then stay frozen
 * and travel with the weights.
 *
 * Continued pretraining (`init`, a Hugging Face model directory) starts from the imported model's
 * weights and reads the same corpus through the model's own tokenizer: only how a document becomes
 * tokens changes, the windows, the held-out loss, the checkpoints and resume are the same code.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import {
  balancePool,
  bigramModel,
  type CorpusDocument,
  type CorpusOptions,
  createTokenizer,
  documentScore,
  filterWeights,
  generateCorpus,
  nameEchoDocuments,
  pruneLowest,
  type WordTokenizer,
  type World,
  type WorldSpec,
  worldFromSpec,
  worldMetadata,
} from "../envs/index.ts";
import {
  BltPolicy,
  BYTE_TOKENIZER_RECORD,
  bitsPerByte,
  buildPolicy,
  byteTextFormat,
  checkHuggingFaceModel,
  checkpointWordTokenizer,
  createOptimizer,
  DensePolicy,
  encodeBytes,
  type HuggingFaceTokenizerRecord,
  huggingFaceDocumentTokens,
  type ImageTokenizer,
  imageTokenizerFromPictures,
  imageTokenizerOfRecord,
  importHuggingFaceModel,
  loadCheckpoint,
  type ModelShape,
  modelConfigFor,
  type OptimizerSettings,
  type Policy,
  type PromptAnswerBatch,
  prepareEntropyPatching,
  tokenizerRecordFor,
} from "../models/index.ts";
import {
  evalWindows,
  type TrainingProgress,
  type TrainingResult,
  tokenStream,
  trainLanguageModel,
  windowBatches,
} from "./pretrain.ts";
import {
  captionTokenizer,
  pictureDocumentTokens,
  picturePretrainingSet,
  seededSample,
  type VisionPretraining,
} from "./pretrain-vision.ts";

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
  /** MetaCLIP-balance the corpus (envs `balancePool` over the world's metadata) at this tail share; absent: as generated. */
  readonly balanceTailShare?: number;
  /** Text-quality pruning: drop this share of the documents, the lowest-scoring first (`curatedCorpus`); absent: none. */
  readonly pruneShare?: number;
  /** BLT only: name-echo documents added to the training stream (envs `nameEchoDocuments`; default none). */
  readonly nameEchoDocuments?: number;
  /**
   * A captioner (dense or MoT): the caption task's vocabulary, a VQ image tokenizer learned from the
   * pretraining pictures, and picture–caption documents mixed into the stream (pretrain-vision.ts).
   */
  readonly vision?: VisionPretraining;
  /**
   * Continued pretraining of a Hugging Face model: this model directory's weights and architecture
   * (`model` is not read), and its tokenizer.json reading the corpus (`seqLen` in its tokens). Its
   * tokenizer record travels in the checkpoints. Not with `vision`, BLT or name-echo documents.
   */
  readonly init?: string;
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
  /** With `init`: the imported model's tokenizer record, which the policy reads and writes through (its checkpoints keep it). */
  readonly record?: HuggingFaceTokenizerRecord;
  readonly world: World;
  readonly checkpointDir: string;
  /** Step the run resumed from (0 for a fresh run). */
  readonly resumedFrom: number;
  /** BLT with entropy patching: the patching it trained with. */
  readonly patching?: PatchingSummary;
  /** Tokens in the training stream (what curation shrinks) and in the held-out one. */
  readonly trainTokens: number;
  readonly heldOutTokens: number;
}

/** How the corpus stage reads a document: its tokens, and the ids the stream puts around each one. */
interface CorpusTokens {
  readonly encode: (text: string) => Int32Array;
  /** Before each document; absent when `encode` already begins it (a Hugging Face post-processor's). */
  readonly bos?: number;
  readonly eos: number;
}

/**
 * Pretrains into `outDir/pretrain` (the checkpoint, rewritten every `checkpointEvery` steps). If a
 * checkpoint is already there, training resumes from its step with its weights and Adam state (a
 * BLT's entropy model and threshold included). A fresh BLT first gets its entropy patching. With
 * `init`, a fresh run starts from the Hugging Face model's weights, and a resumed one checks that
 * the checkpoint was made from that model (its config and tokenizer).
 */
export async function pretrain(
  settings: PretrainSettings,
  outDir: string,
  onProgress?: (progress: TrainingProgress) => void,
  onPatching?: (patching: PatchingSummary) => void,
): Promise<PretrainOutcome> {
  const world = worldFromSpec(settings.world);
  const tokenizer = settings.vision ? captionTokenizer(world) : createTokenizer(world);
  const { init } = settings;
  // Headers and tokenizer only: the weights are read below, and not at all when resuming.
  const hf = init === undefined ? undefined : await checkHuggingFaceModel(init);
  if (hf && settings.vision) throw new Error(`pretrain: ${init} is a text model, it has no image tokens`);
  const bytes = !hf && settings.model.backbone === "blt";
  if (bytes && settings.vision) throw new Error("pretrain: a blt policy reads bytes, it has no image tokens");
  const corpusTokens: CorpusTokens = hf
    ? { encode: huggingFaceDocumentTokens(hf.tokenizer, join(init!, "tokenizer.json")), eos: hf.tokenizer.eos }
    : bytes
      ? { encode: encodeBytes, ...pick(BYTE_TOKENIZER_RECORD.specialTokens) }
      : { encode: (text) => tokenizer.encode(text), ...pick(tokenizer.specialTokens) };
  const checkpointDir = join(outDir, "pretrain");
  const resuming = existsSync(join(checkpointDir, "manifest.json"));
  const corpus = pretrainingCorpus(world, settings);
  let documents = [...corpus.heldOut, ...corpus.train].map((d) => corpusTokens.encode(d.text));
  let heldOut = corpus.heldOut.length;
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
    // A captioner's held-out windows come from the mixed stream, so its eval loss covers pictures too.
    documents = mixedDocuments(documents, pictureDocumentTokens(pictures, image, tokenizer), settings.seed);
    heldOut = heldOutCount(documents.length, settings.evalFraction);
  }
  const { bos, eos } = corpusTokens;
  const trainStream = concatTokens([
    tokenStream(documents.slice(heldOut), bos, eos),
    ...nameEchoStream(
      world,
      hf ? "huggingface" : settings.model.backbone,
      settings.nameEchoDocuments ?? 0,
      settings.seed,
    ),
  ]);
  const evalStream = tokenStream(documents.slice(0, heldOut), bos, eos);
  const config = hf ? hf.config : modelConfigFor(settings.model, tokenizer, settings.seed, image);
  if (settings.seqLen + 1 > config.maxSeqLen) {
    throw new Error(
      `pretrain: seqLen ${settings.seqLen} + 1 exceeds ${hf ? `${init}'s max_position_embeddings` : "model.maxSeqLen"} ${config.maxSeqLen}`,
    );
  }
  // A resumed run's weights come from its checkpoint: an imported model is only read when starting.
  const policy = !hf
    ? buildPolicy(config)
    : resuming
      ? new DensePolicy(hf.config, { randomWeights: false })
      : (await importHuggingFaceModel(init!)).policy;
  const optimizer = createOptimizer(settings);
  const evalBatches = evalWindows(evalStream, settings.batchSize, settings.seqLen, settings.evalBatches);
  let startStep = 0;
  if (resuming) {
    const loaded = await loadCheckpoint(checkpointDir, { policy, optimizer });
    if (!hf) checkpointWordTokenizer(loaded.tokenizer, config.backbone, tokenizer, checkpointDir);
    else if (!isDeepStrictEqual(loaded.tokenizer, hf.tokenizer))
      throw new Error(`${checkpointDir}: its tokenizer is not ${init}'s (pretrained from another model?)`);
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
    tokenizer: hf ? hf.tokenizer : tokenizerRecordFor(config.backbone, tokenizer, image),
    startStep,
    ...(onProgress ? { onProgress } : {}),
  });
  optimizer.dispose();
  return {
    ...result,
    policy,
    tokenizer,
    ...(image ? { image } : {}),
    ...(hf ? { record: hf.tokenizer } : {}),
    world,
    checkpointDir,
    resumedFrom: startStep,
    ...(patching ? { patching } : {}),
    trainTokens: trainStream.length,
    heldOutTokens: evalStream.length,
  };
}

/** Documents in a clean corpus of the same world (another seed, nothing garbled) the quality reference model learns from. */
const REFERENCE_DOCUMENTS = 4000;

const heldOutCount = (documents: number, evalFraction: number): number =>
  Math.max(1, Math.round(documents * evalFraction));

/**
 * The generated corpus split before any curation: the first `evalFraction` of its documents are held
 * out, with their low-quality lines removed, and the rest curated for training. So every curation
 * of one corpus (pruned, balanced or not) is measured on the same held-out text, the world's clean
 * text, and never trains on it. Without curation and low-quality lines this is the plain split.
 */
export function pretrainingCorpus(
  world: World,
  settings: Pick<PretrainSettings, "corpus" | "balanceTailShare" | "pruneShare" | "seed" | "evalFraction">,
): { readonly heldOut: CorpusDocument[]; readonly train: CorpusDocument[] } {
  const generated = generateCorpus(world, settings.corpus);
  const count = heldOutCount(generated.length, settings.evalFraction);
  return {
    heldOut: generated.slice(0, count).map(withoutLowQualityLines),
    train: curatedCorpus(world, generated.slice(count), settings),
  };
}

function withoutLowQualityLines(document: CorpusDocument): CorpusDocument {
  if (!document.lowQuality?.length) return document;
  const added = new Set(document.lowQuality.map((l) => l.line));
  const lines = document.lines.filter((_, i) => !added.has(i));
  return { id: document.id, entityId: document.entityId, noisy: document.noisy, lines, text: lines.join(" ") };
}

/**
 * Pretraining documents as training reads them: text-quality pruned (`pruneShare`: line filters
 * weighted by a bigram model of a clean corpus of the same world, documents scored by the
 * token-weighted mean of their lines, the lowest share dropped), then MetaCLIP-balanced
 * (`balanceTailShare`). Each step a function of the seeds: the same settings keep the same documents.
 */
export function curatedCorpus(
  world: World,
  generated: readonly CorpusDocument[],
  settings: Pick<PretrainSettings, "corpus" | "balanceTailShare" | "pruneShare" | "seed">,
): CorpusDocument[] {
  let corpus = [...generated];
  if (settings.pruneShare !== undefined) {
    const reference = generateCorpus(world, {
      seed: (settings.corpus?.seed ?? 1) + 7919,
      documents: REFERENCE_DOCUMENTS,
      noiseRate: 0,
    });
    const weights = filterWeights(
      corpus.map((d) => d.lines),
      bigramModel(reference.flatMap((d) => d.lines)),
    );
    const kept = pruneLowest(
      corpus.map((d) => documentScore(d.lines, weights)),
      settings.pruneShare,
    );
    corpus = kept.map((i) => corpus[i]!);
  }
  if (settings.balanceTailShare === undefined) return corpus;
  const { kept } = balancePool(
    corpus.map((d) => d.text),
    worldMetadata(world),
    { seed: settings.seed, tailShare: settings.balanceTailShare },
  );
  return kept.map((i) => corpus[i]!);
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

const pick = ({ bos, eos }: { readonly bos: number; readonly eos: number }) => ({ bos, eos });

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
