/**
 * What `factrl nats auth` needs from the roles: each role's access as its definition declares it
 * (RoleDefinition.takes/gives/writes/writesBlobs/requests), and the experiment's layout (every queue,
 * every role). The permission sets themselves are messaging/permissions.ts.
 */
import { type ExperimentLayout, experimentSubjects, type RoleAccess } from "../messaging/index.ts";
import type { RoleDefinition } from "./runtime.ts";
import { PIPELINE_QUEUES } from "./topology.ts";

/** A role's access, from its definition. */
export const roleAccess = (role: RoleDefinition): RoleAccess => ({
  role: role.name,
  takes: (role.takes ?? []).map((queue) => queue.name),
  gives: (role.gives ?? []).map((queue) => queue.name),
  writesState: (role.writes ?? []).map((key) => key.key),
  writesBlobs: role.writesBlobs ?? false,
  requests: role.requests ?? [],
  serves: role.serves ?? [],
  asks: role.asks ?? [],
});

/** The experiment as the permission sets see it: the pipeline's queues and every role's, every role. */
export const experimentLayout = (experiment: string, roles: readonly RoleDefinition[]): ExperimentLayout => {
  const accesses = roles.map(roleAccess);
  return {
    subjects: experimentSubjects(experiment),
    queues: [
      ...new Set([...PIPELINE_QUEUES.map((queue) => queue.name), ...accesses.flatMap((a) => [...a.takes, ...a.gives])]),
    ],
    roles: roles.map((role) => role.name),
  };
};
