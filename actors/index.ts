/** The actor runtime, the role registry and the launcher: what other parts may use. */
export { echoRole } from "./echo.ts";
export { findRole, roleRegistry } from "./roles.ts";
export {
  type ActorContext,
  ActorGaveUp,
  type ActorServices,
  Draining,
  defaultActorId,
  type RoleDefinition,
  type RunActorOptions,
  runActor,
} from "./runtime.ts";
