/** rewards/: what other parts may use — modules, composition, the pipeline, plug-ins, records, metrics. */

export { VERDICTS, type VerdictAgreement, verdictAgreement } from "./agreement.ts";
export {
  BUILTIN_VERSION,
  type DetailMode,
  detailModule,
  explainRelevance,
  FactWorldAnalyzer,
  type FactWorldContext,
  formatModule,
  precisionModule,
  relevanceModule,
} from "./builtins.ts";
export { type ComposedScore, composeReward, type WeightedTerm } from "./compose.ts";
export {
  distinctClaims,
  EVIDENCE_VERIFIER,
  type EvidenceOptions,
  type EvidencePassage,
  type EvidenceSource,
  type EvidenceVerification,
  evidenceModule,
  evidenceVerification,
} from "./evidence.ts";
export {
  type ChatCompletion,
  chatCompletion,
  extractionPrompt,
  HttpJudge,
  type HttpJudgeModule,
  type HttpJudgeOptions,
  type HttpJudgeTarget,
  httpJudgeModule,
  isHttpJudgeModule,
  type JudgeLabel,
  type Judgement,
  NO_VERIFIABLE_CLAIM,
  parseExtraction,
  parseVerification,
  verificationPrompt,
} from "./http-judge.ts";
export {
  type AnswerResult,
  abstentionRate,
  answerPrecisions,
  answerResultOf,
  type FactualityMetrics,
  hallucinationRate,
  type MeanEstimate,
  macroAverageStandardError,
  malformedRate,
  meanEstimate,
  meanLength,
  meanSupported,
  relevanceWinRate,
  summarize,
  summarizeBy,
} from "./metrics.ts";
export {
  checkModule,
  type FailureKind,
  type ItemResult,
  type ModuleOutcome,
  type RewardFailure,
  type RewardItem,
  type RewardModule,
  type RewardPrompt,
} from "./module.ts";
export {
  ANY_REWARD_SERVICE,
  type InfoReply,
  type NatsModuleOptions,
  natsRewardModule,
  REWARD_PROTOCOL_VERSION,
  rewardSubjects,
  type ScoreReply,
  type ScoreRequest,
  type ServeOptions,
  serveRewardModule,
} from "./nats.ts";
export { appendRecords, factWorldRecord, judgementRecord, type RecordSource, type VeriScoreRecord } from "./records.ts";
export {
  checkModuleFile,
  createRewardPipeline,
  defaultRegistry,
  EVIDENCE_MODULES,
  type FactoryContext,
  KNOWLEDGE_BASE_MODULES,
  loadModuleFile,
  type ModuleContext,
  type ModuleFactory,
  type ModuleRef,
  type RewardPipeline,
  RewardRegistry,
  type RewardsConfig,
} from "./registry.ts";
export { type CallPolicy, DEFAULT_CALL_POLICY, runModule } from "./runner.ts";
export {
  cachedVerdict,
  decodeVerdict,
  encodeVerdict,
  kvVerdictCache,
  memoryVerdictCache,
  type RejectionLog,
  type VerdictCache,
  type VerdictCacheCounts,
  type VerifierIdentity,
  verdictKey,
} from "./verdict-cache.ts";
