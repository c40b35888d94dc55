/**
 * Loading a user's module file — an environment, a reward module — wherever it lives. An ES module
 * file (`.ts`, `.mts`, `.js`, `.mjs`; TypeScript through tsx, as factrl runs) loads also from a folder
 * with no package.json, where Node would take a `.ts` or `.js` file for CommonJS and fail on its
 * imports (module-file-hooks.mjs says why that needs a load hook).
 */
import { existsSync } from "node:fs";
import { register } from "node:module";
import { extname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";

export const MODULE_FILE_EXTENSIONS = [".ts", ".mts", ".js", ".mjs"] as const;

/** A module file that could not be loaded: names the file and why. */
export class ModuleFileError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`module file ${file}: ${reason}`);
    this.name = "ModuleFileError";
  }
}

/** Why a module file named in a config cannot be one (no I/O beyond a stat), or undefined. */
export function moduleFileProblem(path: string, baseDir: string = process.cwd()): string | undefined {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  if (!(MODULE_FILE_EXTENSIONS as readonly string[]).includes(extname(full)))
    return `expected a ${MODULE_FILE_EXTENSIONS.join(", ")} file`;
  if (!existsSync(full)) return "no such file";
  return undefined;
}

let hooksRegistered = false;

/** Imports a module file (relative paths from `baseDir`, default the working directory) and returns its default export. */
export async function importDefaultExport(path: string, baseDir: string = process.cwd()): Promise<unknown> {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  const problem = moduleFileProblem(full);
  if (problem) throw new ModuleFileError(full, problem);
  if (!hooksRegistered) {
    register(new URL("./module-file-hooks.mjs", import.meta.url));
    hooksRegistered = true;
  }
  let namespace: { default?: unknown };
  try {
    namespace = await import(pathToFileURL(full).href);
  } catch (error) {
    throw new ModuleFileError(full, `cannot load: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (namespace.default === undefined) throw new ModuleFileError(full, "no default export");
  return namespace.default;
}
