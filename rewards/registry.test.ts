import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { generateWorld } from "../envs/index.ts";
import { createRewardPipeline, defaultRegistry, loadModuleFile } from "./registry.ts";

const REPO = resolve(import.meta.dirname, "..");

const dir = await mkdtemp(join(tmpdir(), "factrl-reward-modules-"));
const file = async (name: string, text: string) => {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
};

describe("reward modules by path", () => {
  it("loads a JS module exporting a factory, with its options, and scores with it", async () => {
    const path = await file(
      "length.mjs",
      `export default (options) => ({
        name: "length", version: "0.1.0",
        score: async (batch) => batch.map((item) => ({ ok: true, components: { length: item.answer.length * options.scale } })),
      });\n`,
    );
    const pipeline = await createRewardPipeline({
      modules: [{ path, weight: 2, options: { scale: 10 } }],
      timeoutMs: 1000,
      retries: 0,
    });
    const [score] = await pipeline.score([{ prompt: { id: "p", text: "q" }, answer: "abc" }]);
    expect(score!.reward).toBe(60);
    expect(pipeline.terms).toEqual([{ name: "length", weight: 2 }]);
  });

  it("loads a TypeScript module exporting a module object, relative to baseDir", async () => {
    await file(
      "constant.ts",
      `const module: { name: string; version: string; score: (b: unknown[]) => Promise<unknown[]> } = {
        name: "constant", version: "1.0.0", score: async (batch) => batch.map(() => ({ ok: true, components: { constant: 0.25 } })),
      };
      export default module;\n`,
    );
    const module = await loadModuleFile("constant.ts", {}, { baseDir: dir });
    expect(await module.score([{ prompt: { id: "p", text: "q" }, answer: "" }], new AbortController().signal)).toEqual([
      { ok: true, components: { constant: 0.25 } },
    ]);
  });

  it("refuses files that are not reward modules, naming the problem", async () => {
    const noScore = await file("no-score.mjs", `export default { name: "x", version: "1" };\n`);
    await expect(loadModuleFile(noScore, {}, {})).rejects.toThrow(/not a reward module: score must be a function/);
    const noDefault = await file("no-default.mjs", `export const x = 1;\n`);
    await expect(loadModuleFile(noDefault, {}, {})).rejects.toThrow(/no default export/);
    await expect(loadModuleFile(join(dir, "absent.mjs"), {}, {})).rejects.toThrow(/no such file/);
  });
});

describe("registry and pipeline configuration errors", () => {
  it("names unknown modules, missing FactWorld, missing NATS, and duplicate names", async () => {
    const world = generateWorld({ size: "tiny" });
    const base = { timeoutMs: 1000, retries: 0 };
    await expect(createRewardPipeline({ ...base, modules: [{ name: "nope", weight: 1 }] }, { world })).rejects.toThrow(
      /unknown reward module "nope" \(known: format, precision, detail, relevance, evidence\)/,
    );
    await expect(createRewardPipeline({ ...base, modules: [{ name: "precision", weight: 1 }] })).rejects.toThrow(
      /reward module "precision" verifies claims against the environment's knowledge base .* has none: judge with an http: module instead/,
    );
    await expect(createRewardPipeline({ ...base, modules: [{ service: "judge", weight: 1 }] })).rejects.toThrow(
      /needs a NATS connection/,
    );
    await expect(
      createRewardPipeline(
        {
          ...base,
          modules: [
            { name: "precision", weight: 1 },
            { name: "precision", weight: 2 },
          ],
        },
        { world },
      ),
    ).rejects.toThrow(/two modules are named "precision"/);
    expect(() => defaultRegistry().register("format", () => ({}) as never)).toThrow(/already registered/);
  });

  it("format needs no knowledge base: the same verdicts with and without a world", async () => {
    const config = { timeoutMs: 1000, retries: 0, modules: [{ name: "format", weight: 1 }] };
    const item = (answer: string, truncated = false) => ({ prompt: { id: "q", text: "tell me" }, answer, truncated });
    const batch = [item("<think> plan </think> An answer."), item("no markers"), item("<think> cut", true)];
    const scores = async (pipeline: Awaited<ReturnType<typeof createRewardPipeline>>) =>
      (await pipeline.score(batch)).map((s) => s.reward);
    const without = await scores(await createRewardPipeline(config));
    expect(without).toEqual([0, -1, -1]);
    expect(await scores(await createRewardPipeline(config, { world: generateWorld({ size: "tiny" }) }))).toEqual(
      without,
    );
  });
});

describe("module files in the reward designer's own folder (no package.json), loaded as factrl runs them", () => {
  // Vitest transforms imports itself, so the loading is tested in a real `node` process under tsx,
  // as the reward actor runs: bin/run-ts.mjs, which registers tsx like bin/factrl.mjs.
  const moduleObject = (name: string, value: number) =>
    `export default { name: "${name}", version: "1.0.0", score: async (batch) => batch.map(() => ({ ok: true, components: { ${name}: ${value} } })) };\n`;
  const typedModule = `import { wordCount } from "./count.ts";
import type { Weighting } from "./weighting.ts";

interface Item { readonly answer: string }
type Outcome = { ok: true; components: Record<string, number> };
const unit: number = await Promise.resolve(1); // top-level await: an ES module for sure

export default (options: Weighting) => ({
  name: "words",
  version: "1.0.0",
  score: async (batch: readonly Item[]): Promise<Outcome[]> =>
    batch.map((item) => ({ ok: true, components: { words: wordCount(item.answer) * options.scale * unit } }) satisfies Outcome),
});
`;

  it("loads and runs a .ts, .mts, .js and .mjs module, and a TypeScript one with types, satisfies, top-level await and sibling imports", async () => {
    const folder = await mkdtemp(join(tmpdir(), "my-rewards-"));
    // The case of the issue: nothing above the folder says what kind of module a .ts or .js file is.
    expect([folder, tmpdir()].some((d) => existsSync(join(d, "package.json")))).toBe(false);
    await writeFile(join(folder, "plain-ts.ts"), moduleObject("plainTs", 1));
    await writeFile(join(folder, "plain-mts.mts"), moduleObject("plainMts", 2));
    await writeFile(join(folder, "plain-js.js"), moduleObject("plainJs", 3));
    await writeFile(join(folder, "plain-mjs.mjs"), moduleObject("plainMjs", 4));
    await writeFile(join(folder, "my-reward.ts"), typedModule);
    await writeFile(
      join(folder, "count.ts"),
      "export const wordCount = (text: string): number => text.split(/\\s+/).length;\n",
    );
    await writeFile(join(folder, "weighting.ts"), "export interface Weighting { readonly scale: number }\n");
    await writeFile(
      join(folder, "score.mjs"),
      `import { createRewardPipeline } from ${JSON.stringify(join(REPO, "rewards/registry.ts"))};
const files = ["plain-ts.ts", "plain-mts.mts", "plain-js.js", "plain-mjs.mjs", "my-reward.ts"];
const pipeline = await createRewardPipeline({
  modules: files.map((file) => ({ path: file, weight: 1, options: { scale: 10 } })),
  timeoutMs: 10000,
  retries: 0,
}, { baseDir: ${JSON.stringify(folder)} });
const [score] = await pipeline.score([{ prompt: { id: "p", text: "q" }, answer: "three short words" }]);
await pipeline.close();
console.log(JSON.stringify(score));
`,
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [join(REPO, "bin/run-ts.mjs"), join(folder, "score.mjs")],
      {
        cwd: folder,
      },
    );
    const score = JSON.parse(stdout);
    expect(score.failures).toEqual([]);
    expect(score.components).toMatchObject({ plainTs: 1, plainMts: 2, plainJs: 3, plainMjs: 4, words: 30 });
    expect(score.reward).toBe(40);
  }, 60_000);
});

describe("an environment's own modules", () => {
  it("replace the built-in of the same name (so configs, metrics and reports keep their names)", async () => {
    const world = generateWorld({ size: "tiny" });
    const precision = () => ({
      name: "precision",
      version: "env",
      score: async (batch: readonly unknown[]) => batch.map(() => ({ ok: true, components: { precision: 0.75 } })),
    });
    const config = { timeoutMs: 1000, retries: 0, modules: [{ name: "precision", weight: 1 }] };
    const item = { prompt: { id: "p", text: "q" }, answer: "<think> x </think> Pega Lelofe was a teacher ." };
    const builtin = await createRewardPipeline(config, { world });
    expect((await builtin.score([item]))[0]!.reward).not.toBe(0.75);
    const own = await createRewardPipeline(config, { world, environmentModules: { precision } });
    expect(own.modules[0]!.version).toBe("env");
    expect((await own.score([item]))[0]!.reward).toBe(0.75);
  });
});
