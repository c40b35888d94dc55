import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateWorld } from "../envs/index.ts";
import { createRewardPipeline, defaultRegistry, loadModuleFile } from "./registry.ts";

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
    await expect(loadModuleFile(join(dir, "absent.mjs"), {}, {})).rejects.toThrow(/cannot load/);
  });
});

describe("registry and pipeline configuration errors", () => {
  it("names unknown modules, missing FactWorld, missing NATS, and duplicate names", async () => {
    const world = generateWorld({ size: "tiny" });
    const base = { timeoutMs: 1000, retries: 0 };
    await expect(createRewardPipeline({ ...base, modules: [{ name: "nope", weight: 1 }] }, { world })).rejects.toThrow(
      /unknown reward module "nope" \(known: format, precision, detail, relevance\)/,
    );
    await expect(createRewardPipeline({ ...base, modules: [{ name: "precision", weight: 1 }] })).rejects.toThrow(
      /needs FactWorld/,
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
