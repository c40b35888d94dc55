/** How many actors of each role `factrl run` starts on this machine: `actors.*` resolved. */
import type { ExperimentConfig, RoleName } from "./schema.ts";

/**
 * `actors.rollout: auto` on a machine with `cores` cores: one core per learner, the rest sampling.
 * The curator, reward, monitor and evaluator take little CPU between evaluations; a rollout actor and
 * the learner each keep a core busy, and a third compute process on two cores slows every one of
 * them (BENCHMARKS.md, "Pipeline").
 */
export const autoRolloutActors = (cores: number, learners: number): number => Math.max(1, cores - learners);

/**
 * How many processes of `role` `factrl run` starts on a machine with `cores` cores. Retrieval-augmented
 * rollouts (`rollout.retrieval`) need a retriever: at least one is started even when actors.retriever is 0.
 */
export const actorCount = (
  config: Pick<ExperimentConfig, "actors" | "rollout">,
  role: RoleName,
  cores: number,
): number => {
  const count = config.actors[role];
  if (count === "auto") return autoRolloutActors(cores, config.actors.learner);
  return role === "retriever" && config.rollout.retrieval !== undefined ? Math.max(1, count) : count;
};
