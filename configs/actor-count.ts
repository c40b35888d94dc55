/** How many actors of each role `factrl run` starts on this machine: `actors.*` resolved. */
import type { ActorCounts, RoleName } from "./schema.ts";

/**
 * `actors.rollout: auto` on a machine with `cores` cores: one core per learner, the rest sampling.
 * The curator, reward, monitor and evaluator take little CPU between evaluations; a rollout actor and
 * the learner each keep a core busy, and a third compute process on two cores slows every one of
 * them (BENCHMARKS.md, "Pipeline").
 */
export const autoRolloutActors = (cores: number, learners: number): number => Math.max(1, cores - learners);

/** How many processes of `role` `factrl run` starts on a machine with `cores` cores. */
export const actorCount = (actors: ActorCounts, role: RoleName, cores: number): number => {
  const count = actors[role];
  return count === "auto" ? autoRolloutActors(cores, actors.learner) : count;
};
