/** What other parts may use from learner/. */

export { answerNll, trainLanguageModel, trainStep } from "./pretrain.ts";
export { loadPretrainConfig, PretrainConfig, PretrainConfigError } from "./pretrain-config.ts";
export { factWorldSetup, tokenizerFromRecord, tokenizerRecord } from "./pretrain-factworld.ts";
export { type BasePolicyReport, makeBasePolicy, type PipelineEvent } from "./pretrain-pipeline.ts";
export { curateSftExamples, finetune } from "./sft.ts";
export { evaluateFactuality, type FactualityReport } from "./sft-eval.ts";
