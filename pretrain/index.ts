/**
 * What other parts may use from pretrain/: making a base policy offline — pretraining on the
 * FactWorld corpus, LIMA-style SFT, the factuality and caption reports — for `factrl pretrain`,
 * the benchmarks and the test fixtures. The learner actor does not import it: what both need (the
 * optimiser, the model config and tokenizer records) lives in models/.
 */

export { comparePretrainTable, type NamedReport, readPretrainReport, stepsToLoss } from "./compare.ts";
export {
  type ContrastiveProgress,
  type ContrastiveReport,
  trainContrastive,
  type ZeroShotReport,
} from "./contrastive.ts";
export { CONTRASTIVE_DATA, contrastiveStudy, contrastiveStudyTable } from "./contrastive-study.ts";
export {
  evalLoss,
  evalWindows,
  type TrainingProgress,
  type TrainingResult,
  tokenStream,
  trainLanguageModel,
  trainStep,
  windowBatches,
} from "./pretrain.ts";
export { loadPretrainConfig, PretrainConfig, PretrainConfigError } from "./pretrain-config.ts";
export {
  DEFAULT_PRETRAIN,
  type FactWorldSetup,
  factWorldSetup,
  type PretrainOutcome,
  type PretrainSettings,
  pretrain,
} from "./pretrain-factworld.ts";
export { type BasePolicyReport, makeBasePolicy, type PipelineEvent } from "./pretrain-pipeline.ts";
export {
  type CaptionReport,
  captionTokenizer,
  DEFAULT_VISION_PRETRAINING,
  evaluateCaptions,
  pictureDocumentTokens,
  picturePretrainingSet,
  type VisionPretraining,
} from "./pretrain-vision.ts";
export {
  captionSftTask,
  curateSftExamples,
  DEFAULT_SFT,
  finetune,
  type SftOutcome,
  type SftSettings,
} from "./sft.ts";
export { evaluateFactuality, type FactualityReport } from "./sft-eval.ts";
