/**
 * Module hooks (registered with node:module's `register` before a reward module file is imported)
 * that load an ES module file wherever it lives.
 *
 * Node and tsx take the format of a `.ts` or `.js` file from the nearest package.json's "type"; with
 * none — a reward designer's own folder — or "commonjs", they load it as CommonJS, and on Node 20 a
 * file written with import/export then fails ("Cannot require() ES Module … in a cycle"). Here a
 * `.ts` or `.js` file outside node_modules that has import/export statements is loaded as the ES
 * module it is (Node itself detects module syntax this way in `.js` files of a typeless scope); in a
 * "type": "module" scope that changes nothing. Everything else is left to the next loader.
 * Plain JavaScript: hooks run in a thread of their own, which may have no TypeScript loader.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const TS_OR_JS = /\.(ts|js)$/;
/** A statement only an ES module has: import/export (not TypeScript's `export =` / `import x = require`), import.meta. */
const MODULE_SYNTAX =
  /^\s*(?:import\s*[\w*{'"]|export\s*(?:[{*]|(?:default|const|let|var|function|class|async|type|interface|enum|abstract|declare)\b))|\bimport\.meta\b/m;

function isModuleSource(url) {
  if (!url.startsWith("file:")) return false;
  const path = fileURLToPath(url);
  if (!TS_OR_JS.test(path) || path.includes("/node_modules/")) return false;
  try {
    return MODULE_SYNTAX.test(readFileSync(path, "utf8"));
  } catch {
    return false; // unreadable: the next loader reports it
  }
}

export async function load(url, context, nextLoad) {
  return nextLoad(url, isModuleSource(url) ? { ...context, format: "module" } : context);
}
