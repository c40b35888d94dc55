import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkEnvironment, EnvironmentError } from "./environment.ts";
import { PromptFileError } from "./external.ts";
import { generatePrompts } from "./factworld/prompts.ts";
import { worldVocabulary } from "./factworld/tokenizer.ts";
import { generateWorld, WORLD_SIZES, worldFromSpec } from "./factworld/world.ts";
import { ModuleFileError } from "./module-file.ts";
import { environmentKinds, makeEnvironment, registerEnvironment } from "./registry.ts";

const scratch = () => mkdtempSync(join(tmpdir(), "factrl-envs-"));

describe("the environment registry", () => {
  it("builds FactWorld exactly as before: the same prompts, its knowledge base and vocabulary", async () => {
    const env = await makeEnvironment({ kind: "factworld", size: "tiny", promptSeed: 1, evalFraction: 0.2 });
    const world = generateWorld(WORLD_SIZES.tiny);
    const prompts = generatePrompts(world, { seed: 1, evalFraction: 0.2 });
    expect(env.train).toEqual(prompts.filter((p) => p.split === "train"));
    expect(env.eval).toEqual(prompts.filter((p) => p.split === "eval"));
    expect(env.knowledge?.entities.length).toBe(world.entities.length);
    expect(env.vocabulary).toContain(world.entities[0]!.name.split(" ")[0]);
    expect(env.modalities).toEqual(["text"]);
  });

  it("builds the world a section names with any preset option overridden (as factrl pretrain's world does)", async () => {
    const section = { kind: "factworld", size: "tiny", seed: 11, people: 20, promptSeed: 1, evalFraction: 0.2 };
    const env = await makeEnvironment(section);
    expect(env.knowledge?.options).toMatchObject({ seed: 11, people: 20, places: WORLD_SIZES.tiny.places });
    expect(env.vocabulary).toEqual(worldVocabulary(worldFromSpec({ size: "tiny", seed: 11, people: 20 })));
  });

  it("builds once per process and section", async () => {
    const section = { kind: "factworld", size: "tiny", promptSeed: 2, evalFraction: 0.2 };
    expect(await makeEnvironment(section)).toBe(await makeEnvironment({ ...section }));
  });

  it("reads a JSONL prompt set: suites from a field or the file's name, a stable split by id", async () => {
    const path = join(scratch(), "longfact.jsonl");
    const lines = Array.from({ length: 40 }, (_, i) =>
      JSON.stringify({ id: `q${i}`, prompt: `tell me about thing ${i}`, ...(i % 2 ? { suite: "odd" } : {}) }),
    );
    writeFileSync(path, `${lines.join("\n")}\n`);
    const env = await makeEnvironment({ kind: "jsonl", path, evalFraction: 0.25 });
    expect(env.train.length + env.eval.length).toBe(40);
    expect(env.eval.length).toBeGreaterThan(2);
    expect(env.eval.length).toBeLessThan(20);
    expect(new Set(env.suites)).toEqual(new Set(["longfact", "odd"]));
    const again = await makeEnvironment({ kind: "jsonl", path, evalFraction: 0.25, field: "prompt" });
    expect(again.eval.map((p) => p.id)).toEqual(env.eval.map((p) => p.id));
    expect(env.knowledge).toBeUndefined();
  });

  it("refuses a JSONL file with a bad line, naming the line", async () => {
    const path = join(scratch(), "bad.jsonl");
    writeFileSync(path, '{"prompt": "fine"}\n{"prompt": 3}\n');
    await expect(makeEnvironment({ kind: "jsonl", path, evalFraction: 0.2 })).rejects.toThrow(PromptFileError);
    await expect(makeEnvironment({ kind: "jsonl", path, evalFraction: 0.2 })).rejects.toThrow(/line 2/);
  });

  it("loads an environment module from a folder with no package.json (a factory of options)", async () => {
    const dir = scratch();
    writeFileSync(join(dir, "words.ts"), 'export const WORDS: readonly string[] = ["yes", "no"];\n');
    writeFileSync(
      join(dir, "yes-no.ts"),
      `import { WORDS } from "./words.ts";
type Split = "train" | "eval";
const prompt = (i: number, split: Split) => ({ id: \`q\${i}\`, text: "yes or no ?", suite: "yn", split });
export default (options: { n?: number }) => ({
  kind: "yes-no",
  description: "answer yes",
  modalities: ["text"],
  train: [prompt(1, "train"), prompt(2, "train")].slice(0, options.n ?? 2),
  eval: [prompt(3, "eval")],
  suites: ["yn"],
  vocabulary: [...WORDS, "or", "?"],
}) satisfies object;
`,
    );
    const env = await makeEnvironment({ kind: "module", path: join(dir, "yes-no.ts"), options: { n: 1 } });
    expect(env.kind).toBe("yes-no");
    expect(env.train.map((p) => p.id)).toEqual(["q1"]);
    expect(env.vocabulary).toEqual(["yes", "no", "or", "?"]);
  });

  it("names every wrong field of a malformed environment module", async () => {
    const path = join(scratch(), "broken.mjs");
    writeFileSync(
      path,
      'export default { kind: "x", description: "d", modalities: ["smell"], train: [{ id: "a", text: "", suite: "s", split: "eval" }], eval: [], suites: [] };\n',
    );
    const failure = await makeEnvironment({ kind: "module", path }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EnvironmentError);
    const message = (failure as Error).message;
    expect(message).toContain("modalities: each must be");
    expect(message).toContain("train[0].text");
    expect(message).toContain('train[0].split: expected "train"');
    expect(message).toContain('suite "s" is not listed');
  });

  it("says which file is missing, and which kinds exist", async () => {
    await expect(makeEnvironment({ kind: "module", path: join(scratch(), "nope.ts") })).rejects.toThrow(
      ModuleFileError,
    );
    await expect(makeEnvironment({ kind: "chess" })).rejects.toThrow(
      /unknown kind "chess" \(known: factworld, factworld-vision, jsonl/,
    );
  });

  it("takes new kinds by registration, once each", async () => {
    const kind = `registered-${Date.now()}`;
    registerEnvironment(kind, () => ({
      kind,
      description: "one prompt",
      modalities: ["text"],
      train: [{ id: "p", text: "hi", suite: "s", split: "train" }],
      eval: [],
      suites: ["s"],
    }));
    expect(environmentKinds()).toContain(kind);
    expect((await makeEnvironment({ kind })).train).toHaveLength(1);
    expect(() => registerEnvironment(kind, () => checkEnvironment({}, "x"))).toThrow(/already registered/);
  });

  it("refuses duplicate prompt ids and an environment with nothing to train on", () => {
    const base = { kind: "k", description: "d", modalities: ["text"], suites: ["s"], eval: [] };
    const p = { id: "same", text: "t", suite: "s", split: "train" };
    expect(() => checkEnvironment({ ...base, train: [p, p] }, "env")).toThrow(/"same" is used twice/);
    expect(() => checkEnvironment({ ...base, train: [] }, "env")).toThrow(/no training prompts/);
  });
});

describe("factworld's prompt log (env.popularPrompts)", () => {
  it("is what env.popularPrompts makes of the training split; evaluation prompts are not repeated", async () => {
    const plain = await makeEnvironment({ kind: "factworld", size: "tiny" });
    const logged = await makeEnvironment({ kind: "factworld", size: "tiny", popularPrompts: 100 });
    expect(logged.train.length).toBeGreaterThan(plain.train.length);
    expect(logged.eval).toEqual(plain.eval);
  });
});
