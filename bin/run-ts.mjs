#!/usr/bin/env node
import { resolve } from "node:path";
// Runs one TypeScript entry point (benchmarks, scripts) under tsx: `node bin/run-ts.mjs FILE [ARGS…]`.
import { pathToFileURL } from "node:url";
import { register } from "tsx/esm/api";

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error("usage: node bin/run-ts.mjs FILE.ts [ARGS…]");
  process.exit(2);
}
process.argv = [process.argv[0], resolve(file), ...rest];
register();
await import(pathToFileURL(resolve(file)).href);
