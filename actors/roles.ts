/**
 * The role registry: role name → how to load its definition. Adding a role is one file exporting a
 * RoleDefinition plus one line here (and its count in configs/schema.ts `ActorCounts`). Loading is
 * lazy, so an actor process (and the launcher) loads only the code of the roles it runs — an echo
 * actor never loads tfjs.
 */
import type { RoleDefinition } from "./runtime.ts";

const ROLES: Readonly<Record<string, () => Promise<RoleDefinition>>> = {
  echo: () => import("./echo.ts").then((module) => module.echoRole),
};

/** The roles this build can run. */
export const roleNames = (): string[] => Object.keys(ROLES);

export const hasRole = (name: string): boolean => Object.hasOwn(ROLES, name);

/** The role's definition, or undefined for a name this build does not have. */
export const loadRole = (name: string): Promise<RoleDefinition | undefined> =>
  hasRole(name) ? ROLES[name]!() : Promise.resolve(undefined);
