/**
 * envs/curation: data curation as pure functions — MetaCLIP balancing (matching, probabilities,
 * thresholds; a fixed pool or an online stream), CiT selection, FACTORY-style prompt checks and the
 * model-in-the-loop hard split, over FactWorld's metadata; text-quality scoring and pruning.
 */
export {
  balanceProbabilities,
  CurationArgumentError,
  citSelect,
  keepProbability,
  substringMatches,
  tailShare,
  thresholdForTailShare,
} from "./balance.ts";
export {
  CHECK_REASONS,
  type CheckedPrompt,
  type CheckOptions,
  type CheckReason,
  checkPrompt,
  checkPrompts,
  type PromptCheck,
  type PromptCheckReport,
} from "./checks.ts";
export {
  type CitTarget,
  citTargetNames,
  ensembleEmbedding,
  entityNamesIn,
  fillTemplates,
  maxSimilarities,
} from "./cit.ts";
export { hardSplit, type PromptPrecisions } from "./hard-split.ts";
export { limaSelect, type SftCandidate, wordJaccard } from "./lima.ts";
export { worldMetadata } from "./metadata.ts";
export {
  type BalancedPool,
  BalancedStream,
  type BalanceOptions,
  balancePool,
  balanceThreshold,
  entryCounts,
  matchPool,
} from "./pool.ts";
export {
  bigramModel,
  documentScore,
  filterWeights,
  LINE_FILTERS,
  type LineFilter,
  lineScores,
  perplexity,
  pruneLowest,
  type ReferenceModel,
} from "./quality.ts";
