/**
 * BLT's byte vocabulary, as in the reference implementation (facebookresearch/blt,
 * `bytelatent/tokenizers/constants.py`): byte b is token b + 4; BOE = 0, BOS = 1, EOS = 2, PAD = 3.
 * `<think>` / `</think>` are plain text here, not special tokens.
 */
export const BOE = 0;
export const BOS = 1;
export const EOS = 2;
export const PAD = 3;
/** Token id of byte 0. */
export const BYTE_OFFSET = 4;
export const BLT_VOCAB_SIZE = 256 + BYTE_OFFSET;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8");

/** UTF-8 bytes of `text` as BLT tokens, optionally wrapped in BOS … EOS. */
export function encodeBytes(text: string, options: { bos?: boolean; eos?: boolean } = {}): Int32Array {
  const bytes = encoder.encode(text);
  const head = options.bos ? 1 : 0;
  const out = new Int32Array(head + bytes.length + (options.eos ? 1 : 0));
  if (options.bos) out[0] = BOS;
  for (let i = 0; i < bytes.length; i++) out[head + i] = bytes[i]! + BYTE_OFFSET;
  if (options.eos) out[out.length - 1] = EOS;
  return out;
}

/** The bytes among `tokens` (special tokens dropped). */
export function tokensToBytes(tokens: ArrayLike<number>): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t >= BYTE_OFFSET && t < BLT_VOCAB_SIZE) bytes.push(t - BYTE_OFFSET);
  }
  return Uint8Array.from(bytes);
}

/** Text of the bytes among `tokens`; invalid UTF-8 becomes U+FFFD (use `isValidUtf8` to check). */
export function decodeBytes(tokens: ArrayLike<number>): string {
  return decoder.decode(tokensToBytes(tokens));
}

/**
 * BLT's text codec (the shape of envs' `TextCodec`): encode gives bytes + 4 without BOS/EOS;
 * decode drops special tokens. `<think>` tags are plain bytes.
 */
export const bltCodec = {
  vocabSize: BLT_VOCAB_SIZE,
  specialTokens: { pad: PAD, bos: BOS, eos: EOS },
  encode: (text: string): Int32Array => encodeBytes(text),
  decode: (ids: ArrayLike<number>): string => decodeBytes(ids),
} as const;

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

export function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}
