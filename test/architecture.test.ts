/**
 * The parts (top-level folders, README.md "The folders") and who may import whom, checked on the
 * source itself: a part that reaches into one it must not know about, past another part's
 * `index.ts`, or into an import cycle fails here — and so does a part that is not there, so a
 * renamed folder cannot make the checks pass by leaving them nothing to check.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const PARTS = [
  "messaging",
  "actors",
  "learner",
  "pretrain",
  "pipeline",
  "models",
  "rewards",
  "envs",
  "configs",
  "cli",
  "dashboard",
  "bench",
] as const;
type Part = (typeof PARTS)[number];

/** For each part, the other parts it may import. */
const ALLOWED: Record<Part, readonly Part[]> = {
  messaging: [],
  envs: [],
  models: ["envs"],
  rewards: ["envs", "messaging"],
  configs: ["messaging"],
  // Reads what a run directory records and shows it (plots, the dashboard, Prometheus): no role inside.
  dashboard: ["messaging", "configs"],
  actors: ["messaging", "models", "rewards", "envs", "configs", "dashboard"],
  learner: ["actors", "messaging", "models", "envs", "configs", "rewards"],
  // Pretraining and SFT make base policies offline: no actor, no queue, no learner.
  pretrain: ["models", "envs", "configs"],
  // The serial runner drives the roles' work (actors/, learner/) in one process.
  pipeline: ["actors", "learner", "messaging", "models", "configs"],
  cli: ["messaging", "actors", "learner", "pretrain", "pipeline", "models", "rewards", "envs", "configs", "dashboard"],
  // Benchmarks measure any part but the command line; no part depends on a benchmark.
  bench: PARTS.filter((part) => part !== "bench" && part !== "cli"),
};

/** Parts another part may import: each offers what it exports in its `index.ts`, and nothing else. */
const IMPORTED = new Set(Object.values(ALLOWED).flat());

/**
 * The only files another part may import besides an `index.ts`, each with its reason. An entry
 * nothing imports any more fails the test, so the list cannot outlive its reasons.
 */
const ENTRY_POINTS: Readonly<Record<string, string>> = {
  // actors/index.ts exports the roles (tfjs and all); these load none, so `factrl status`, `scale`,
  // `study`, the launcher and an echo actor stay light.
  "actors/launcher.ts": "light: the launcher, without the roles",
  "actors/report.ts": "light: the study table, without the roles",
  "actors/roles.ts": "light: the lazy role registry",
  "actors/runtime.ts": "light: the actor runtime, without the roles",
  "actors/runtime-status.ts": "light: `factrl status`, without the roles",
};

/**
 * Benchmarks measure internals (BLT's hashing, MoT's routing, the curator's prompt of a sequence
 * number, the vision classifier envs/index.ts keeps out so that it loads no tfjs), as tests do: the
 * index rule does not apply to them. Which parts they may import, and that none imports them, does.
 */
const MEASURES_INTERNALS: ReadonlySet<Part> = new Set(["bench"]);

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
const isPart = (name: string): name is Part => (PARTS as readonly string[]).includes(name);

// A missing part is reported by the first test below, not read as an empty one.
const files = PARTS.filter((part) => existsSync(join(ROOT, part))).flatMap((part) => sourceFiles(join(ROOT, part)));

/** Every import of one part's file from another's, as `from → to` paths relative to the root. */
const crossPartImports = files.flatMap((file) =>
  relativeImports(file)
    .filter((target) => isPart(partOf(target)) && partOf(target) !== partOf(file))
    .map((target) => ({ from: file, to: target })),
);
const show = ({ from, to }: { from: string; to: string }) => `${relative(ROOT, from)} → ${relative(ROOT, to)}`;

describe("architecture", () => {
  it("every part is a folder with sources, type-checked, and every part others import has an index.ts", () => {
    const missing = PARTS.filter((part) => !existsSync(join(ROOT, part)) || sourceFiles(join(ROOT, part)).length === 0);
    expect(missing, "parts with no folder or no source file").toEqual([]);
    const noIndex = [...IMPORTED].filter((part) => !existsSync(join(ROOT, part, "index.ts")));
    expect(noIndex, "imported parts without an index.ts").toEqual([]);
    const typeChecked: string[] = JSON.parse(readFileSync(join(ROOT, "tsconfig.json"), "utf8")).include;
    expect(
      PARTS.filter((part) => !typeChecked.includes(part)),
      "parts tsconfig.json does not type-check",
    ).toEqual([]);
  });

  it("each part imports only the parts the design allows", () => {
    const violations = crossPartImports.filter(({ from, to }) => {
      const allowed: readonly string[] = ALLOWED[partOf(from) as Part];
      return !allowed.includes(partOf(to));
    });
    expect(violations.map(show)).toEqual([]);
  });

  it("imports another part only through its index.ts (or a listed entry point)", () => {
    const deep = crossPartImports.filter(
      ({ from, to }) =>
        !MEASURES_INTERNALS.has(partOf(from) as Part) &&
        to !== join(ROOT, partOf(to), "index.ts") &&
        !Object.hasOwn(ENTRY_POINTS, relative(ROOT, to)),
    );
    expect(deep.map(show)).toEqual([]);
    const used = new Set(
      crossPartImports
        .filter(({ from }) => !MEASURES_INTERNALS.has(partOf(from) as Part))
        .map(({ to }) => relative(ROOT, to)),
    );
    expect(
      Object.keys(ENTRY_POINTS).filter((entry) => !used.has(entry)),
      "entry points nothing imports",
    ).toEqual([]);
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
