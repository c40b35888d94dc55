/**
 * `npm run bench` lists the benchmarks, each with the first line of its header; `npm run bench --
 * NAME [ARGS…]` runs bench/NAME.ts with ARGS, exactly as `node bin/run-ts.mjs bench/NAME.ts ARGS…`
 * does. Their latest figures, and the command behind each, are in BENCHMARKS.md. Code the benchmarks
 * share lives in bench/lib/.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const DIR = import.meta.dirname;
const BENCHMARKS = readdirSync(DIR)
  .filter((file) => file.endsWith(".ts") && file !== "index.ts")
  .map((file) => file.slice(0, -".ts".length))
  .sort();

/** The first line of a benchmark's header comment (`//` lines or a `/** … *\/` block). */
const summary = (name: string): string => {
  for (const line of readFileSync(join(DIR, `${name}.ts`), "utf8").split("\n")) {
    const text = line.replace(/^\s*(\/\/|\/\*\*|\*)\s?/, "").trim();
    if (text !== "") return text;
  }
  return "";
};

const [name, ...args] = process.argv.slice(2);
if (name === undefined || name === "--help") {
  console.log("usage: npm run bench -- NAME [ARGS…]\n");
  const width = Math.max(...BENCHMARKS.map((b) => b.length));
  for (const benchmark of BENCHMARKS) console.log(`  ${benchmark.padEnd(width)}  ${summary(benchmark)}`);
} else if (!BENCHMARKS.includes(name)) {
  console.error(`unknown benchmark "${name}" (available: ${BENCHMARKS.join(", ")})`);
  process.exitCode = 2;
} else {
  const file = join(DIR, `${name}.ts`);
  // The benchmark reads its arguments from process.argv, as when it is run on its own.
  process.argv = [process.argv[0]!, file, ...args];
  await import(pathToFileURL(file).href);
}
