/** The actor runtime, the role registry, the launcher and the pipeline's topology: what other parts may use. */
export { experimentLayout, roleAccess } from "./access.ts";
export { citDue, citMetrics, curateByPolicy } from "./cit-curation.ts";
export { curatorRole, promptGroupAt } from "./curator.ts";
export { echoRole } from "./echo.ts";
export { EnvironmentUnavailable, evaluationSample, experimentEnvironment, hash32 } from "./environment.ts";
export { type Answerer, claimRecordLines, type EvaluationResult, openAiAnswerer } from "./evaluation.ts";
export {
  describeEvaluation,
  evaluationModules,
  evaluationSampling,
  evaluatorRole,
  makeEvaluation,
} from "./evaluator.ts";
export { type Evidence, type EvidenceQuery, type EvidenceSource, inProcessEvidence, natsEvidence } from "./evidence.ts";
export { findHardSplit, type HardSplitOptions, type HardSplitResult, type HardSplitRow } from "./hard-split.ts";
export { IoFailed, tryIo } from "./io.ts";
export {
  ExperimentFailed,
  ensureExperimentQueues,
  LAUNCHER_CONTROL_ROLE,
  type LaunchOptions,
  launch,
  MAX_PROCESSES_PER_ROLE,
  natsUrlFile,
  QueueConflict,
  recordedNatsUrl,
} from "./launcher.ts";
export { ANY_POINTER_WRITE, followPolicy, type PolicyFollower, type PolicyInUse } from "./policy-sync.ts";
export { publishedTextFormat, publishPolicyTokenizer, TokenizerMismatch } from "./policy-tokenizer.ts";
export { checkTrainingPool, HandedOut } from "./prompt-choice.ts";
export { openConfiguredRetriever, RetrieverUnavailable, retrieverRole } from "./retriever.ts";
export { createExperimentRewards, makeScoring, rewardRole } from "./reward.ts";
export { ACTOR_ROLES, makeRoleRegistry, type RoleLoader, type RoleRegistry } from "./roles.ts";
export { rolloutRole } from "./rollout.ts";
export { answerSeed, makeRolloutWork, type RolloutBatch, type RolloutWork, referenceSeed } from "./rollout-work.ts";
export {
  type ActorContext,
  ActorGaveUp,
  type ActorServices,
  Draining,
  defaultActorId,
  type RoleDefinition,
  RoleFatal,
  type RunActorOptions,
  runActor,
} from "./runtime.ts";
export { type ActorStatus, listActors } from "./runtime-status.ts";
export { useBackend } from "./tf-backend.ts";
export {
  Answer,
  AnswerScore,
  CURATOR_CURSOR_KEY,
  CuratorCursor,
  EVALUATION_DONE_KEY,
  EvaluationDone,
  LEARNER_PROGRESS_KEY,
  LearnerProgress,
  NO_LEARNER_PROGRESS,
  PIPELINE_MESSAGES,
  PIPELINE_QUEUES,
  POLICY_ARCHITECTURE_KEY,
  POLICY_TOKENIZER_BLOB,
  PolicyArchitecture,
  PROMPTS_QUEUE,
  PromptGroup,
  PromptGroupMessage,
  PromptPicture,
  RewardFailure,
  ROLLOUTS_QUEUE,
  RolloutGroup,
  RolloutGroupMessage,
  SCORED_QUEUE,
  ScoredGroup,
  ScoredGroupMessage,
} from "./topology.ts";
export {
  evidenceAgreement,
  localVerification,
  natsVerification,
  needsEvidence,
  type RewardVerification,
  verificationMetrics,
} from "./verification.ts";
