/**
 * The role registry: role name → its definition. Adding a role is one file exporting a
 * RoleDefinition plus one line here (and its count in configs/schema.ts `ActorCounts`).
 */
import { echoRole } from "./echo.ts";
import type { RoleDefinition } from "./runtime.ts";

const ROLES: readonly RoleDefinition[] = [echoRole];

export const roleRegistry: ReadonlyMap<string, RoleDefinition> = new Map(ROLES.map((role) => [role.name, role]));

export const findRole = (name: string): RoleDefinition | undefined => roleRegistry.get(name);
