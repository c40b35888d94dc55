/**
 * What a policy checkpoint records beside its weights, in one place for everyone who writes or
 * reads one (pretraining, SFT, the learner): the model config built from a shape and a tokenizer,
 * and the tokenizer record (tokenizer.json) — FactWorld words, with an image tokenizer when the
 * policy reads pictures, or UTF-8 bytes for BLT.
 */
import { tokenizerFromWords, type WordTokenizer } from "../envs/index.ts";
import { BLT_VOCAB_SIZE, type BltConfig, BOE, BOS, BYTE_OFFSET, bltConfigForShape, EOS, PAD } from "./blt/index.ts";
import type { PolicyConfigBase } from "./policy.ts";
import { type ImageTokenizer, imageTokenizerRecord, imageTokenRange } from "./prompt-format.ts";

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
