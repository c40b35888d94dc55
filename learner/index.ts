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
  loadStartingPolicy,
  makeLedger,
  runLearner,
  saveLearnerCheckpoint,
  startingPolicy,
  type TimedUpdate,
  toGrpoBatch,
  updateOnGroups,
} from "./learner.ts";
export { learnerRole } from "./learner-actor.ts";
export { type LineageRecord, lineageDraw, lineageFile, openLineage } from "./lineage.ts";
export { learnerStepMetrics, meanAndStd } from "./step-metrics.ts";
