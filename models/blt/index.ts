/** What other parts may use from models/blt/. */
export { HASH_PRIMES, hashNgramIds, hashNgramIdsInto } from "./hash.ts";
export {
  BLT_SPECIAL_TOKENS,
  type BltConfig,
  type BltPatching,
  BltPolicy,
  bltConfig,
  bltConfigForShape,
  validateBltConfig,
} from "./model.ts";
export { entropyPatchLengths, spacePatchLengths, splitLongPatches, staticPatchLengths } from "./patcher.ts";
export {
  BLT_VOCAB_SIZE,
  BOE,
  BOS,
  BYTE_OFFSET,
  bltCodec,
  decodeBytes,
  EOS,
  encodeBytes,
  isValidUtf8,
  PAD,
  tokensToBytes,
} from "./tokens.ts";
export { type ByteTraining, bitsPerByte, prepareEntropyPatching, sampleWindows, trainOnBytes } from "./train.ts";
