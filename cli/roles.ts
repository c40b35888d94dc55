/** Every role this build can run: the actors/ roles plus the learner (learner/ may not be imported by actors/). */
import { ACTOR_ROLES, makeRoleRegistry } from "../actors/roles.ts";

export const roles = makeRoleRegistry({
  ...ACTOR_ROLES,
  learner: () => import("../learner/index.ts").then((module) => module.learnerRole),
});
