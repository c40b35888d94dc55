import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeConfig } from "./loader.ts";
import { configPaths, pathFieldProblem, runReaders } from "./paths.ts";
import { natsUrlProblem } from "./schema.ts";

const dir = mkdtempSync(join(tmpdir(), "factrl-paths-"));
mkdirSync(join(dir, "checkpoint"));
writeFileSync(join(dir, "checkpoint", "manifest.json"), "{}");
mkdirSync(join(dir, "half-saved"));
writeFileSync(join(dir, "prompts.jsonl"), "");
writeFileSync(join(dir, "a-file"), "");

/** A config setting every path field there is. */
const everyPath = (paths: Record<string, string>) =>
  Either.getOrThrow(
    decodeConfig({
      experiment: "paths",
      env: { kind: "jsonl", path: paths.env },
      model: { init: paths.init },
      nats: {
        url: "nats://127.0.0.1:4222",
        auth: { creds: paths.creds },
        tls: { ca: paths.ca, cert: paths.cert, key: paths.key },
        embedded: { storeDir: paths.storeDir },
      },
      rewards: { modules: [{ name: "format" }, { path: paths.module }] },
      output: { dir: paths.output },
    }),
  );

/** Every path field set to something that is there and fits. */
const FINE = {
  env: "prompts.jsonl",
  init: "checkpoint",
  creds: "a-file",
  ca: "a-file",
  cert: "a-file",
  key: "a-file",
  storeDir: "runs/x/nats",
  module: join(dir, "a-file"),
  output: "runs",
};

const problems = (config: ReturnType<typeof everyPath>, readers = runReaders(config)) =>
  configPaths(config, readers).flatMap((field) => pathFieldProblem(field, dir) ?? []);

describe("config paths", () => {
  it("finds every path field of the schema that a config sets, with its field path", () => {
    const config = everyPath({
      env: "e",
      init: "i",
      creds: "c",
      ca: "ca",
      cert: "ce",
      key: "k",
      storeDir: "s",
      module: "m",
      output: "o",
    });
    expect(configPaths(config).map(({ field, path, check }) => [field, path, check.kind])).toEqual([
      ["nats.embedded.storeDir", "s", "directory"],
      ["nats.auth.creds", "c", "file"],
      ["nats.tls.ca", "ca", "file"],
      ["nats.tls.cert", "ce", "file"],
      ["nats.tls.key", "k", "file"],
      ["env.path", "e", "file"],
      ["model.init", "i", "checkpoint"],
      ["rewards.modules[1].path", "m", "module"],
      ["output.dir", "o", "directory"],
    ]);
  });

  it("names every missing or wrong path at once, relative ones resolved from the working directory", () => {
    const config = everyPath({
      env: "absent.jsonl",
      init: "half-saved",
      creds: "checkpoint",
      ca: "absent-ca.pem",
      cert: "prompts.jsonl",
      key: "prompts.jsonl",
      storeDir: "a-file/store",
      module: "absent.ts",
      output: "a-file",
    });
    expect(problems(config)).toEqual([
      `nats.embedded.storeDir: cannot create ${dir}/a-file/store: ${dir}/a-file is not a directory`,
      `nats.auth.creds: ${dir}/checkpoint is not a file`,
      `nats.tls.ca: no such file ${dir}/absent-ca.pem`,
      `env.path: no such file ${dir}/absent.jsonl`,
      `model.init: ${dir}/half-saved has no manifest.json (not a factrl checkpoint, or its save was interrupted)`,
      `rewards.modules[1].path: no such file ${dir}/absent.ts`,
      `output.dir: ${dir}/a-file is not a directory`,
    ]);
    expect(problems(everyPath(FINE))).toEqual([]);
  });

  it("checks only what the starting processes read: model.init is the learner's, module files the reward's and evaluator's", () => {
    const config = everyPath({
      env: "prompts.jsonl",
      init: "absent",
      creds: "a-file",
      ca: "a-file",
      cert: "a-file",
      key: "a-file",
      storeDir: "a-file/store",
      module: "absent.ts",
      output: "runs",
    });
    const fields = (readers: Parameters<typeof problems>[1]) => problems(config, readers).map((p) => p.split(":")[0]);
    expect(fields(["rollout"])).toEqual([]);
    expect(fields(["learner"])).toEqual(["model.init"]);
    expect(fields(["evaluator"])).toEqual(["rewards.modules[1].path"]);
    expect(fields(["launcher"])).toEqual(["nats.embedded.storeDir"]);
    expect(runReaders(config)).toEqual(["launcher", "curator", "rollout", "reward", "learner", "evaluator", "monitor"]);
  });
});

describe("model.init: hf:DIR", () => {
  const initProblems = (init: string) => problems(everyPath({ ...FINE, init }));
  mkdirSync(join(dir, "hf-model"));
  writeFileSync(join(dir, "hf-model", "config.json"), "{}");

  it("names the Hugging Face files a directory lacks, and accepts one that has them", () => {
    expect(initProblems("hf:absent")).toEqual([`model.init: no such Hugging Face model directory ${dir}/absent`]);
    expect(initProblems("hf:hf-model")).toEqual([
      `model.init: ${dir}/hf-model has no tokenizer.json, model.safetensors (or model.safetensors.index.json) (not a Hugging Face model directory)`,
    ]);
    writeFileSync(join(dir, "hf-model", "tokenizer.json"), "{}");
    writeFileSync(join(dir, "hf-model", "model.safetensors.index.json"), "{}");
    expect(initProblems("hf:hf-model")).toEqual([]);
    // A factrl checkpoint is no Hugging Face directory, and the other way round.
    expect(initProblems("hf:checkpoint")).toHaveLength(1);
    expect(initProblems("hf-model")).toEqual([
      `model.init: ${dir}/hf-model has no manifest.json (not a factrl checkpoint, or its save was interrupted)`,
    ]);
  });
});

describe("NATS URLs", () => {
  it("accepts nats://, tls://, HOST:PORT and comma-separated clusters", () => {
    for (const url of [
      "nats://127.0.0.1:4222",
      "tls://nats.example:4443",
      "localhost:4222",
      "nats://a:1, nats://[::1]:2",
    ])
      expect(natsUrlProblem(url)).toBeUndefined();
  });

  it("says what is wrong with anything else", () => {
    expect(natsUrlProblem("htp:/127.0.0.1")).toBe('"htp:/127.0.0.1": neither SCHEME://HOST:PORT nor HOST:PORT');
    expect(natsUrlProblem("http://h:4222")).toBe('"http://h:4222": unknown scheme http://');
    expect(natsUrlProblem("ws://h:4222")).toMatch(/websocket URLs are not supported/);
    expect(natsUrlProblem("nats://h:70000")).toMatch(/not a URL \(a port is 1–65535\)/);
    expect(natsUrlProblem("nats://h:0")).toMatch(/port 0/);
    expect(natsUrlProblem("nats://h:4222/x")).toMatch(/no path, query or fragment/);
    expect(natsUrlProblem("nats://a:1,,nats://b:2")).toBe("an empty entry in the server list");
  });

  it("a bad nats.url is a config problem at its path", () => {
    const result = decodeConfig({ experiment: "x", nats: { url: "htp:/127.0.0.1" } });
    expect(Either.isLeft(result) && result.left.problems).toEqual([
      'nats.url: expected nats://HOST:PORT or tls://HOST:PORT, found "htp:/127.0.0.1": neither SCHEME://HOST:PORT nor HOST:PORT',
    ]);
  });
});
