/**
 * Role registries: role name → how to load its definition. Loading is lazy, so an actor process
 * (and the launcher) loads only the code of the roles it runs — an echo actor never loads tfjs.
 *
 * The roles living in actors/ are listed here; the learner lives in learner/ (which actors/ may not
 * import), so the full registry is assembled by the CLI (cli/roles.ts). Adding a role is one file
 * exporting a RoleDefinition — with the work queues it declares, which the launcher creates — and
 * one line in one of the two lists; for `factrl run` to start some, its count in configs/schema.ts
 * `ActorCounts` (docs/pipeline.md, "Adding a role").
 */
import type { RoleDefinition } from "./runtime.ts";

export type RoleLoader = () => Promise<RoleDefinition>;

export const ACTOR_ROLES: Readonly<Record<string, RoleLoader>> = {
  curator: () => import("./curator.ts").then((module) => module.curatorRole),
  rollout: () => import("./rollout.ts").then((module) => module.rolloutRole),
  reward: () => import("./reward.ts").then((module) => module.rewardRole),
  evaluator: () => import("./evaluator.ts").then((module) => module.evaluatorRole),
  monitor: () => import("./monitor.ts").then((module) => module.monitorRole),
  echo: () => import("./echo.ts").then((module) => module.echoRole),
  retriever: () => import("./retriever.ts").then((module) => module.retrieverRole),
};

export interface RoleRegistry {
  /** The roles this build can run. */
  readonly names: readonly string[];
  readonly has: (name: string) => boolean;
  /** The role's definition, or undefined for a name the registry does not have. */
  readonly load: (name: string) => Promise<RoleDefinition | undefined>;
}

export function makeRoleRegistry(loaders: Readonly<Record<string, RoleLoader>>): RoleRegistry {
  const has = (name: string) => Object.hasOwn(loaders, name);
  return {
    names: Object.keys(loaders),
    has,
    load: (name) => (has(name) ? loaders[name]!() : Promise.resolve(undefined)),
  };
}
