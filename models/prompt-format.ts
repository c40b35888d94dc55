/**
 * How a backbone reads a prompt and writes an answer, in its own tokens. SFT, rollouts, evaluation
 * and the learner must all use the same format, so it is chosen in one place: `textFormatFor`.
 *
 * - words (dense, MoT): `<bos> prompt words <sep>`; the policy writes `<think> … </think> answer <eos>`.
 * - bytes (BLT): `BOS` + the prompt's UTF-8 bytes + "\n"; the policy writes the answer's bytes
 *   (`<think>` tags are plain text) and `EOS`. The same text, so the same rewards apply unchanged.
 */
import { tokenizerFromWords, type WordTokenizer } from "../envs/index.ts";
import { BOS, decodeBytes, EOS, encodeBytes } from "./blt/tokens.ts";

export interface TextFormat {
  readonly kind: "words" | "bytes";
  /** The tokens a policy continues to answer `text`. */
  promptTokens(text: string): Int32Array;
  /** An answer as training target: its tokens and the stop token. */
  answerTokens(text: string): Int32Array;
  /** Generated tokens → answer text, without the stop token (and anything after it). */
  answerText(tokens: ArrayLike<number>): string;
  /** Generation ends at these tokens. */
  readonly stopTokens: readonly number[];
}

/** Everything up to (not including) the first `stop`. */
const untilStop = (tokens: ArrayLike<number>, stop: number): number[] => {
  const ids = Array.from(tokens);
  const end = ids.indexOf(stop);
  return end < 0 ? ids : ids.slice(0, end);
};

export function wordTextFormat(tokenizer: WordTokenizer): TextFormat {
  const { bos, sep, eos } = tokenizer.specialTokens;
  return {
    kind: "words",
    promptTokens: (text) => Int32Array.from([bos, ...tokenizer.encode(text), sep]),
    answerTokens: (text) => Int32Array.from([...tokenizer.encode(text), eos]),
    answerText: (tokens) => tokenizer.decode(untilStop(tokens, eos)),
    stopTokens: [eos],
  };
}

const PROMPT_END = encodeBytes("\n");

export const byteTextFormat: TextFormat = {
  kind: "bytes",
  promptTokens: (text) => Int32Array.from([BOS, ...encodeBytes(text), ...PROMPT_END]),
  answerTokens: (text) => encodeBytes(text, { eos: true }),
  answerText: (tokens) => decodeBytes(untilStop(tokens, EOS)),
  stopTokens: [EOS],
};

/** The text format of a backbone: BLT reads and writes bytes, the others FactWorld's words. */
export const textFormatFor = (backbone: string, tokenizer: WordTokenizer): TextFormat =>
  backbone === "blt" ? byteTextFormat : wordTextFormat(tokenizer);

/**
 * The text format of a policy from the tokenizer record saved with it (a checkpoint's tokenizer.json,
 * or the one the learner publishes): `{ kind: "bytes" }` for BLT, `{ words: [...] }` for word policies.
 */
export function textFormatOfRecord(backbone: string, record: unknown, source: string): TextFormat {
  const kind = (record as { kind?: unknown } | undefined)?.kind;
  if (backbone === "blt") {
    if (kind !== "bytes")
      throw new Error(`${source}: a blt policy needs a byte tokenizer, got ${JSON.stringify(kind)}`);
    return byteTextFormat;
  }
  const words = (record as { words?: unknown } | undefined)?.words;
  if (!Array.isArray(words) || !words.every((w) => typeof w === "string"))
    throw new Error(`${source}: a ${backbone} policy needs a word tokenizer record ({ words: [...] })`);
  return wordTextFormat(tokenizerFromWords(words));
}
