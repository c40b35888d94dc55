/** How many actors of each role `factrl run` starts on this machine: `actors.*` resolved. */
import type { ExperimentConfig, RoleName } from "./schema.ts";

/**
 * `actors.rollout: auto` on a machine with `cores` cores: one core per learner, the rest sampling.
 * The curator, reward, monitor and evaluator take little CPU between evaluations; a rollout actor and
 * the learner each keep a core busy, and a third compute process on two cores slows every one of
 * them (BENCHMARKS.md, "Pipeline").
 */
export const autoRolloutActors = (cores: number, learners: number): number => Math.max(1, cores - learners);

/** What deciding who scores and how many actors to start reads of a config. */
type ScoringChoice = Pick<ExperimentConfig, "actors" | "rewards" | "rollout"> & {
  readonly nats: Pick<ExperimentConfig["nats"], "roleAuth">;
};

/**
 * Whether the rollout actors score their own groups (`rewards.scoredBy`). `auto` picks them when it
 * costs nothing: every module in-process (a `service` or `http` judge would hold up sampling for its
 * round trips), no explicit reward actors, and no per-role credentials (which let only the reward
 * role publish scored groups).
 */
export const rolloutActorsScore = (config: ScoringChoice): boolean => {
  const { scoredBy, modules } = config.rewards;
  if (scoredBy !== "auto") return scoredBy === "rollout";
  return (
    config.actors.reward === "auto" &&
    config.nats.roleAuth === undefined &&
    modules.every((module) => "name" in module || "path" in module)
  );
};

/**
 * How many processes of `role` `factrl run` starts on a machine with `cores` cores. Retrieval-augmented
 * rollouts (`rollout.retrieval`) need a retriever: at least one is started even when actors.retriever is 0.
 */
export const actorCount = (config: ScoringChoice, role: RoleName, cores: number): number => {
  const count = config.actors[role];
  if (count === "auto") {
    if (role === "reward") return rolloutActorsScore(config) ? 0 : 1;
    return autoRolloutActors(cores, config.actors.learner);
  }
  return role === "retriever" && config.rollout.retrieval !== undefined ? Math.max(1, count) : count;
};
