/** envs/curation: data curation as pure functions — MetaCLIP balancing and CiT selection. */
export {
  balanceProbabilities,
  CurationArgumentError,
  citSelect,
  keepProbability,
  substringMatches,
  tailShare,
  thresholdForTailShare,
} from "./balance.ts";
