/** What other parts may use from learner/. */

export { aggregateLoss, clippedSurrogate, groupAdvantages, grpoLoss, k3KL } from "./grpo.ts";
export { type GrpoBatch, type GrpoSettings, type GrpoStats, grpoUpdate } from "./grpo-step.ts";
export {
  environmentMismatch,
  grpoSettingsFor,
  hasSignal,
  initialPolicy,
  judgeGroup,
  type LearnerLink,
  type LearnerState,
  learnerCheckpointDir,
  learnerStepMetrics,
  loadStartingPolicy,
  makeLedger,
  runLearner,
  saveLearnerCheckpoint,
  startingPolicy,
  toGrpoBatch,
} from "./learner.ts";
export { learnerRole } from "./learner-actor.ts";
export { answerNll, createOptimizer, trainLanguageModel, trainStep } from "./pretrain.ts";
export { loadPretrainConfig, PretrainConfig, PretrainConfigError } from "./pretrain-config.ts";
export {
  BYTE_TOKENIZER_RECORD,
  checkpointWordTokenizer,
  factWorldSetup,
  isByteTokenizerRecord,
  tokenizerFromRecord,
  tokenizerRecord,
  tokenizerRecordFor,
} from "./pretrain-factworld.ts";
export { type BasePolicyReport, makeBasePolicy, type PipelineEvent } from "./pretrain-pipeline.ts";
export { curateSftExamples, finetune } from "./sft.ts";
export { evaluateFactuality, type FactualityReport } from "./sft-eval.ts";
