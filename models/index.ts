/** What other parts may use from models/. */
export { type BackendInfo, type BackendOptions, type BackendRequest, initBackend, memoryFigures } from "./backend.ts";
// BLT's own stages, for pretraining: the entropy model, its patching, bytes in and out.
export { type BltConfig, BltPolicy, bitsPerByte, encodeBytes, prepareEntropyPatching } from "./blt/index.ts";
export {
  CheckpointError,
  type CheckpointManifest,
  configDifferences,
  type LoadedCheckpoint,
  loadCheckpoint,
  readCheckpointManifest,
  recoverInterruptedSave,
  saveCheckpoint,
} from "./checkpoint.ts";
export {
  type ContrastiveConfig,
  ContrastiveEncoder,
  ContrastiveEncoderError,
  clipLoss,
  MAX_LOGIT_SCALE,
  normalizedEmbeddings,
} from "./contrastive.ts";
export {
  checkDecoding,
  contrastiveScores,
  type Decoding,
  DecodingParameterError,
  type GuidedDecoding,
  guidedLogits,
} from "./decoding.ts";
export { type DenseConfig, DensePolicy } from "./dense.ts";
export { embedSequences, embedTexts } from "./embedding.ts";
export { eventLoopYielder, yieldToEventLoop } from "./event-loop.ts";
export {
  type HuggingFaceTokenizerRecord,
  huggingFaceDocumentTokens,
  isHuggingFaceTokenizerRecord,
} from "./hf-text-format.ts";
export {
  checkHuggingFaceModel,
  exportHuggingFaceModel,
  HuggingFaceError,
  type ImportedModel,
  importHuggingFaceModel,
  loadHuggingFaceModel,
} from "./huggingface.ts";
export {
  accumulateGradients,
  createOptimizer,
  type GradientAccumulator,
  learningRateAt,
  type OptimizerSettings,
  type OptimizerStep,
} from "./optimizer.ts";
export * from "./policy.ts";
export {
  BYTE_TOKENIZER_RECORD,
  checkpointWordTokenizer,
  isByteTokenizerRecord,
  type ModelShape,
  modelConfigFor,
  tokenizerFromRecord,
  tokenizerRecord,
  tokenizerRecordFor,
} from "./policy-records.ts";
export {
  byteTextFormat,
  type ImageTokenizer,
  type ImageTokenizerRecord,
  imageTokenizerFromPictures,
  imageTokenizerOfRecord,
  imageTokenizerRecord,
  imageTokenRange,
  type TextFormat,
  textFormatFor,
  textFormatOfRecord,
  wordTextFormat,
} from "./prompt-format.ts";
export { mixSeed, mulberry32, type Random } from "./random.ts";
export { buildPolicy, policyStartingFrom } from "./registry.ts";
export * from "./retrieval/index.ts";
export { type DecodeSession, decodingLogProbs, logSoftmax, sampleBatch, sampleToken } from "./sampling.ts";
export { registerWasmSegmentSum } from "./segment-sum-kernel.ts";
export {
  codebookFromJson,
  codebookToJson,
  DEFAULT_VQ_OPTIONS,
  decodeTokens,
  encodePicture,
  type ReconstructionError,
  reconstructionError,
  tokensPerPicture,
  trainVqCodebook,
  type VqCodebook,
  type VqCodebookJson,
  VqError,
  type VqTrainOptions,
} from "./vq.ts";
export { decodeNamedTensors, encodeNamedTensors, type NamedTensor, WeightsFormatError } from "./weights-file.ts";
