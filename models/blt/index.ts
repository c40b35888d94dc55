/** What other parts may use from models/blt/. */
export { HASH_PRIMES, hashNgramIds } from "./hash.ts";
export {
  BLT_SPECIAL_TOKENS,
  type BltConfig,
  type BltPatching,
  BltPolicy,
  bltConfig,
  validateBltConfig,
} from "./model.ts";
export { entropyPatchLengths, spacePatchLengths, splitLongPatches, staticPatchLengths } from "./patcher.ts";
export {
  BLT_VOCAB_SIZE,
  BOE,
  BOS,
  BYTE_OFFSET,
  decodeBytes,
  EOS,
  encodeBytes,
  isValidUtf8,
  PAD,
  tokensToBytes,
} from "./tokens.ts";
export { type ByteTraining, bitsPerByte, sampleWindows, trainOnBytes } from "./train.ts";
