/**
 * The design's parts and who may import whom (../shared/DESIGN.md, "The parts"), checked on the
 * source itself: a part that reaches into one it must not know about, or an import cycle, fails here.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const PARTS = ["messaging", "actors", "learner", "models", "rewards", "envs", "configs", "cli"] as const;
type Part = (typeof PARTS)[number];

/** For each part, the other parts it may import. */
const ALLOWED: Record<Part, readonly Part[]> = {
  messaging: [],
  envs: [],
  models: ["envs"],
  rewards: ["envs", "messaging"],
  configs: ["messaging"],
  actors: ["messaging", "models", "rewards", "envs", "configs"],
  learner: ["actors", "messaging", "models", "envs", "configs", "rewards"],
  cli: ["messaging", "actors", "learner", "models", "rewards", "envs", "configs"],
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (path.endsWith(".ts") && !path.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function relativeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const spec = match[1] ?? match[2];
    if (spec?.startsWith(".")) found.push(resolve(dirname(file), spec));
  }
  return found;
}

const partOf = (file: string): string => relative(ROOT, file).split("/")[0] ?? "";

const files = PARTS.flatMap((part) => {
  try {
    return sourceFiles(join(ROOT, part));
  } catch {
    return []; // a part with no content yet
  }
});

describe("architecture", () => {
  it("each part imports only the parts the design allows", () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = partOf(file) as Part;
      for (const target of relativeImports(file)) {
        const to = partOf(target);
        if (to === from || !PARTS.includes(to as Part)) continue;
        if (!ALLOWED[from].includes(to as Part)) violations.push(`${relative(ROOT, file)} → ${relative(ROOT, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it("has no import cycles", () => {
    const graph = new Map(files.map((file) => [file, relativeImports(file)]));
    const state = new Map<string, "visiting" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(ROOT, f)).join(" → "));
        return;
      }
      state.set(file, "visiting");
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });
});
