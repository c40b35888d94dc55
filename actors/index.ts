/** The actor runtime, the role registry and the launcher: what other parts may use. */
export { echoRole } from "./echo.ts";
export {
  ExperimentFailed,
  LAUNCHER_CONTROL_ROLE,
  type LaunchOptions,
  launch,
  MAX_PROCESSES_PER_ROLE,
  natsUrlFile,
  recordedNatsUrl,
} from "./launcher.ts";
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
export { type ActorStatus, listActors } from "./runtime-status.ts";
