/**
 * How a backbone reads a prompt and writes an answer, in its own tokens. SFT, rollouts, evaluation
 * and the learner must all use the same format, so it is chosen in one place: `textFormatFor`.
 *
 * - words (dense, MoT): `<bos> prompt words <sep>`; the policy writes `<think> … </think> answer <eos>`.
 * - bytes (BLT): `BOS` + the prompt's UTF-8 bytes + "\n"; the policy writes the answer's bytes
 *   (`<think>` tags are plain text) and `EOS`. The same text, so the same rewards apply unchanged.
 * - tokens (a policy imported from Hugging Face): its own tokenizer, `<think>` tags as text
 *   (models/hf-text-format.ts).
 */
import { type Picture, tokenizerFromWords, type WordTokenizer } from "../envs/index.ts";
import { BOS, decodeBytes, EOS, encodeBytes } from "./blt/tokens.ts";
import { huggingFaceTextFormat, isHuggingFaceTokenizerRecord } from "./hf-text-format.ts";
import type { TokenRange } from "./policy.ts";
import {
  codebookFromJson,
  codebookToJson,
  encodePicture,
  trainVqCodebook,
  type VqCodebook,
  type VqCodebookJson,
  type VqTrainOptions,
} from "./vq.ts";

export interface TextFormat {
  /** FactWorld's words, UTF-8 bytes (BLT), or a Hugging Face tokenizer's tokens (models/hf-text-format.ts). */
  readonly kind: "words" | "bytes" | "tokens";
  /**
   * The tokens a policy continues to answer `text` about `picture` (if any): the picture's image
   * tokens come right after `<bos>`, before the text. A policy without image tokens refuses a picture.
   */
  promptTokens(text: string, picture?: Picture): Int32Array;
  /** An answer as training target: its tokens and the stop token. */
  answerTokens(text: string): Int32Array;
  /** Generated tokens → answer text, without the stop token (and anything after it). */
  answerText(tokens: ArrayLike<number>): string;
  /** Generation ends at these tokens. */
  readonly stopTokens: readonly number[];
  /** The image tokens' ids, when the policy reads pictures. */
  readonly imageTokens?: TokenRange;
}

/**
 * Pictures as tokens (Chameleon-style): a picture's VQ codes, each shifted by `offset` — the image
 * token ids follow the words, so one vocabulary holds both.
 */
export interface ImageTokenizer {
  readonly codebook: VqCodebook;
  readonly offset: number;
}

/** How a policy's tokenizer record (tokenizer.json) stores its image tokenizer. */
export interface ImageTokenizerRecord {
  readonly codebook: VqCodebookJson;
  readonly offset: number;
}

export const imageTokenizerRecord = (image: ImageTokenizer): ImageTokenizerRecord => ({
  codebook: codebookToJson(image.codebook),
  offset: image.offset,
});

/** An image tokenizer whose codebook is learned from `pictures`; its ids follow `tokenizer`'s words. */
export function imageTokenizerFromPictures(
  pictures: readonly Picture[],
  tokenizer: WordTokenizer,
  options: Partial<VqTrainOptions> = {},
): ImageTokenizer {
  // A small set of pictures (a tiny world) cannot make more codes than it has patches.
  const patches = pictures.length * (pictures[0] ? (pictures[0].width * pictures[0].height) / 16 : 0);
  const codebookSize = Math.min(options.codebookSize ?? 256, patches);
  return { codebook: trainVqCodebook(pictures, { ...options, codebookSize }), offset: tokenizer.vocabSize };
}

/** The ids an image tokenizer's codes take. */
export const imageTokenRange = (image: ImageTokenizer): TokenRange => ({
  first: image.offset,
  count: image.codebook.size,
});

const noPictures = (reads: string) => (): never => {
  throw new Error(`this policy reads no pictures (${reads}): a prompt with a picture needs an image tokenizer`);
};

/** Everything up to (not including) the first `stop`. */
const untilStop = (tokens: ArrayLike<number>, stop: number): number[] => {
  const ids = Array.from(tokens);
  const end = ids.indexOf(stop);
  return end < 0 ? ids : ids.slice(0, end);
};

/**
 * FactWorld's words, and with `image` pictures too. An image token the policy writes into an answer
 * reads as `<unk>` (which makes the answer malformed: answers are text).
 */
export function wordTextFormat(tokenizer: WordTokenizer, image?: ImageTokenizer): TextFormat {
  const { bos, sep, eos, unk } = tokenizer.specialTokens;
  const words = tokenizer.vocabSize;
  if (image && image.offset !== words)
    throw new Error(`image tokens must follow the ${words} words (offset ${words}), got offset ${image.offset}`);
  const pictureTokens = image
    ? (picture: Picture) => Array.from(encodePicture(image.codebook, picture), (code) => code + image.offset)
    : noPictures("its tokenizer has no image codebook");
  return {
    kind: "words",
    promptTokens: (text, picture) =>
      Int32Array.from([bos, ...(picture ? pictureTokens(picture) : []), ...tokenizer.encode(text), sep]),
    answerTokens: (text) => Int32Array.from([...tokenizer.encode(text), eos]),
    answerText: (tokens) => tokenizer.decode(untilStop(tokens, eos).map((t) => (t >= words ? unk : t))),
    stopTokens: [eos],
    ...(image ? { imageTokens: imageTokenRange(image) } : {}),
  };
}

const PROMPT_END = encodeBytes("\n");

const bytesReadNoPictures = noPictures("a byte-level policy has no image tokens");

export const byteTextFormat: TextFormat = {
  kind: "bytes",
  promptTokens: (text, picture) =>
    picture ? bytesReadNoPictures() : Int32Array.from([BOS, ...encodeBytes(text), ...PROMPT_END]),
  answerTokens: (text) => encodeBytes(text, { eos: true }),
  answerText: (tokens) => decodeBytes(untilStop(tokens, EOS)),
  stopTokens: [EOS],
};

/** The text format of a backbone: BLT reads and writes bytes, the others FactWorld's words (and pictures with `image`). */
export const textFormatFor = (backbone: string, tokenizer: WordTokenizer, image?: ImageTokenizer): TextFormat =>
  backbone === "blt" ? byteTextFormat : wordTextFormat(tokenizer, image);

/** The image tokenizer a word tokenizer record carries (`image: { codebook, offset }`), if any. */
export function imageTokenizerOfRecord(record: unknown, source: string): ImageTokenizer | undefined {
  const image = (record as { image?: unknown } | undefined)?.image;
  if (image === undefined) return undefined;
  const { codebook, offset } = (image ?? {}) as { codebook?: unknown; offset?: unknown };
  if (typeof offset !== "number" || !Number.isInteger(offset) || offset < 0)
    throw new Error(`${source}: image.offset must be an integer ≥ 0, got ${JSON.stringify(offset)}`);
  try {
    return { codebook: codebookFromJson(codebook), offset };
  } catch (error) {
    throw new Error(`${source}: image.${(error as Error).message}`);
  }
}

/**
 * The text format of a policy from the tokenizer record saved with it (a checkpoint's tokenizer.json,
 * or the one the learner publishes): `{ kind: "bytes" }` for BLT, `{ words: [...] }` for word
 * policies, with `image: { codebook, offset }` for policies that read pictures, `{ kind: "huggingface" }`
 * for a policy imported from Hugging Face.
 */
export function textFormatOfRecord(backbone: string, record: unknown, source: string): TextFormat {
  const kind = (record as { kind?: unknown } | undefined)?.kind;
  if (isHuggingFaceTokenizerRecord(record)) {
    if (backbone !== "dense")
      throw new Error(`${source}: a Hugging Face tokenizer goes with a dense policy, not ${backbone}`);
    return huggingFaceTextFormat(record, source);
  }
  if (backbone === "blt") {
    if (kind !== "bytes")
      throw new Error(`${source}: a blt policy needs a byte tokenizer, got ${JSON.stringify(kind)}`);
    return byteTextFormat;
  }
  const words = (record as { words?: unknown } | undefined)?.words;
  if (!Array.isArray(words) || !words.every((w) => typeof w === "string"))
    throw new Error(`${source}: a ${backbone} policy needs a word tokenizer record ({ words: [...] })`);
  return wordTextFormat(tokenizerFromWords(words), imageTokenizerOfRecord(record, source));
}
