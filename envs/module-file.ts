/**
 * Loading a user's module file — an environment, a reward module — wherever it lives. TypeScript
 * files go through tsx's `tsImport`, which compiles them whatever the nearest package.json says; a
 * `.ts` file outside an ESM package comes back as CommonJS interop (`{ __esModule, default }`), which
 * is unwrapped so every kind of file yields its default export the same way.
 */
import { existsSync } from "node:fs";
import { extname, isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { tsImport } from "tsx/esm/api";

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

/** The absolute path of a module file named in a config, or why it cannot be one (no I/O beyond a stat). */
export function moduleFileProblem(path: string, baseDir: string = process.cwd()): string | undefined {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  if (!(MODULE_FILE_EXTENSIONS as readonly string[]).includes(extname(full)))
    return `${full}: expected a ${MODULE_FILE_EXTENSIONS.join(", ")} file`;
  if (!existsSync(full)) return `${full}: no such file`;
  return undefined;
}

/** Imports a module file and returns its default export. */
export async function importDefaultExport(path: string, baseDir: string = process.cwd()): Promise<unknown> {
  const full = isAbsolute(path) ? path : resolve(baseDir, path);
  const problem = moduleFileProblem(full);
  if (problem) throw new ModuleFileError(full, problem.slice(full.length + 2));
  let namespace: Record<string, unknown>;
  try {
    const url = pathToFileURL(full).href;
    namespace = /\.m?ts$/.test(full) ? await tsImport(url, import.meta.url) : await import(url);
  } catch (error) {
    throw new ModuleFileError(full, `cannot load: ${error instanceof Error ? error.message : String(error)}`);
  }
  const exported = namespace.default as { __esModule?: boolean; default?: unknown } | undefined;
  const value = exported?.__esModule === true ? exported.default : exported;
  if (value === undefined) throw new ModuleFileError(full, "no default export");
  return value;
}
