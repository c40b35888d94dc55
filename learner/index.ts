/** What other parts may use from learner/. */

export { aggregateLoss, clippedSurrogate, groupAdvantages, grpoLoss, k3KL, zeroVarianceGroups } from "./grpo.ts";
export { type GrpoBatch, type GrpoSettings, type GrpoStats, grpoUpdate } from "./grpo-step.ts";
export { learnerRole } from "./learner-actor.ts";
