import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect, Either, Exit } from "effect";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import {
  applySetting,
  ConfigError,
  decodeConfig,
  decodeConfigText,
  loadConfig,
  mergeConfigs,
  parseSetting,
  renderConfig,
  writeResolvedConfig,
} from "./loader.ts";

const dir = mkdtempSync(join(tmpdir(), "factrl-configs-"));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const problemsOf = (raw: unknown): string[] => {
  const result = decodeConfig(raw);
  if (Either.isRight(result)) throw new Error("expected the config to be rejected");
  return [...result.left.problems];
};

const load = (path: string, set: string[] = []) => Effect.runSync(loadConfig(path, { set }));
const loadError = (path: string, set: string[] = []): ConfigError => {
  const exit = Effect.runSyncExit(loadConfig(path, { set }));
  if (Exit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error("expected a ConfigError");
  return exit.cause.error;
};

describe("config schema", () => {
  it("a one-line config gets every default", () => {
    const config = Either.getOrThrow(decodeConfig({ experiment: "minimal" }));
    expect(config.rollout.groupSize).toBe(8);
    expect(config.model.backbone).toBe("dense");
    expect(config.env).toMatchObject({ kind: "factworld", size: "default" });
    expect(config.actors).toMatchObject({ curator: 1, rollout: "auto", echo: 0 });
    expect(config.nats.url).toBeUndefined();
    expect(config.runtime.restart.maxRestarts).toBe(5);
  });

  it("reports every wrong field at once, each with its path, what was expected and what was found", () => {
    const problems = problemsOf({
      experiment: "bad id",
      rollout: { groupSize: 1, temperature: "hot", topP: 1.5, typo: 2 },
      model: { backbone: "rnn" },
      learner: { maxPolicyLag: 1.5, lossAggregation: "sum" },
      rewards: { modules: [{ name: "precision", weight: "high" }, { nme: "detail" }] },
      nats: { auth: "secret" },
      env: { kind: "jsonl" },
      evaluation: 7,
      unknownSection: {},
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^experiment: expected an id .*no dots, wildcards, spaces.*found "bad id"$/),
        "rollout.groupSize: expected an integer ≥ 2, found 1",
        'rollout.temperature: expected number, found "hot"',
        "rollout.topP: expected a number in (0, 1], found 1.5",
        expect.stringMatching(/^rollout\.typo: unknown key \(allowed here: groupSize, temperature/),
        'model.backbone: expected "dense" | "mot" | "blt", found "rnn"',
        "learner.maxPolicyLag: expected an integer, found 1.5",
        'learner.lossAggregation: expected "token-mean" | "seq-mean-token-mean" | "seq-mean-token-sum-norm", found "sum"',
        'rewards.modules[0].weight: expected number, found "high"',
        'rewards.modules[1]: expected {name} | {path} | {service} | {http}, found {"nme":"detail"}',
        'nats.auth: expected {token} | {user, pass} | {creds} | {nkey}, found "secret"',
        "env.path: missing (required)",
        "evaluation: expected a mapping, found 7",
        expect.stringMatching(/^unknownSection: unknown key \(allowed here: experiment, seed, nats/),
      ]),
    );
    expect(problems).toHaveLength(14);
  });

  it("cross-field checks name the field at fault (checked once the section's fields are valid)", () => {
    expect(problemsOf({ experiment: "x", model: { dModel: 128, heads: 3 } })).toEqual([
      "model.heads: expected a divisor of dModel (128), found 3",
    ]);
  });

  it("rollout.retrieval: absent by default, defaults when set, and k or timeoutMs out of range named", () => {
    expect(Either.getOrThrow(decodeConfig({ experiment: "x" })).rollout.retrieval).toBeUndefined();
    expect(Either.getOrThrow(decodeConfig({ experiment: "x", rollout: { retrieval: {} } })).rollout.retrieval).toEqual({
      k: 3,
      timeoutMs: 2_000,
      queryDropout: false,
    });
    const problems = problemsOf({ experiment: "x", rollout: { retrieval: { k: 0, timeoutMs: 0, extra: 1 } } });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^rollout\.retrieval\.k: expected an integer in \[1, 64\].*found 0/),
        expect.stringMatching(/^rollout\.retrieval\.timeoutMs: expected an integer > 0, found 0/),
        expect.stringMatching(/^rollout\.retrieval\.extra/),
      ]),
    );
    expect(problemsOf({ experiment: "x", rollout: { retrieval: { k: -1 } } })).toEqual([
      expect.stringMatching(/rollout\.retrieval\.k: expected an integer in \[1, 64\].*found -1/),
    ]);
    expect(problemsOf({ experiment: "x", rollout: { retrieval: { k: 65 } } })).toEqual([
      expect.stringMatching(/rollout\.retrieval\.k: expected an integer in \[1, 64\].*found 65/),
    ]);
  });

  it("refuses an environment a backbone cannot read before anything starts: BLT has no image tokens", () => {
    const vision = { kind: "factworld-vision", size: "tiny" };
    expect(problemsOf({ experiment: "x", env: vision, model: { backbone: "blt" } })).toEqual([
      "model.backbone: expected dense or mot for env.kind factworld-vision, found blt: a byte-level policy has no image tokens (docs/backbones.md)",
    ]);
    for (const backbone of ["dense", "mot"])
      expect(Either.isRight(decodeConfig({ experiment: "x", env: vision, model: { backbone } })), backbone).toBe(true);
    expect(
      problemsOf({ experiment: "x", env: { ...vision, dropAltText: 2, altText: { rightNameRate: 0.95 } } }),
    ).toEqual([
      "env.altText.wrongNameRate: expected rightNameRate + wrongNameRate ≤ 1, found 1.05",
      "env.dropAltText: expected a number in [0, 1], found 2",
    ]);
  });

  it("rejects experiment ids that would break subjects or paths", () => {
    for (const id of ["a.b", "a*", "a>", "a b", "a/b", "", "-lead", "x".repeat(65)]) {
      expect(problemsOf({ experiment: id })[0], id).toMatch(/^experiment: expected an id/);
    }
    expect(Either.isRight(decodeConfig({ experiment: "run_42-b" }))).toBe(true);
  });

  it("a missing experiment id is named", () => {
    expect(problemsOf({})).toEqual(["experiment: missing (required)"]);
  });
});

describe("config files", () => {
  const base = file(
    "base.yaml",
    "experiment: base\nrollout:\n  groupSize: 4\n  temperature: 0.7\nlearner:\n  lr: 0.001\nnats:\n  url: nats://a:4222\n",
  );
  const mid = file("mid.yaml", "extends: base.yaml\nexperiment: mid\nrollout:\n  groupSize: 6\nnats:\n  url: null\n");
  const top = file("top.yaml", "extends: ./mid.yaml\nexperiment: top\nlearner:\n  totalSteps: 3\n");

  it("extends chains merge: later files win key by key, null restores the default", () => {
    const config = load(top);
    expect(config.experiment).toBe("top");
    expect(config.rollout.groupSize).toBe(6); // mid over base
    expect(config.rollout.temperature).toBe(0.7); // kept from base
    expect(config.learner.lr).toBe(0.001);
    expect(config.learner.totalSteps).toBe(3);
    expect(config.nats.url).toBeUndefined(); // mid's null removed base's url
    expect(load(base).nats.url).toBe("nats://a:4222");
    expect(load(mid).learner.totalSteps).toBe(200);
  });

  it("--set wins over every file and is type-checked by the schema", () => {
    const config = load(top, ["rollout.groupSize=16", "learner.lr=1e-4", "learner.normalizeStd=false", "seed=7"]);
    expect(config.rollout.groupSize).toBe(16);
    expect(config.learner.lr).toBe(1e-4);
    expect(config.learner.normalizeStd).toBe(false);
    expect(config.seed).toBe(7);
    expect(load(top, ["rollout.groupSize=2", "rollout.groupSize=3"]).rollout.groupSize).toBe(3); // last wins
    expect(load(top, ["rollout.temperature=null"]).rollout.temperature).toBe(1); // default again

    expect(loadError(top, ["rollout.groupSize=many"]).problems).toEqual([
      'rollout.groupSize: expected number, found "many"',
    ]);
  });

  it("--set on a path the schema does not have is an error that lists what is there", () => {
    const error = loadError(top, ["learner.lrr=1"]);
    expect(error.source).toBe("--set");
    expect(error.problems[0]).toMatch(/^learner\.lrr: no such setting \(learner has: lr, epsLow/);
    expect(loadError(top, ["nope=1"]).problems[0]).toMatch(/^nope: no such setting \(the top level has: experiment/);
    expect(loadError(top, ["rollout"]).problems[0]).toMatch(/expected key=value/);
  });

  it("--set reaches into lists, union members and free-form options", () => {
    const withModules = file(
      "modules.yaml",
      "experiment: m\nrewards:\n  modules:\n    - name: precision\n    - http: { url: 'http://judge/v1', model: j }\n",
    );
    const config = load(withModules, ["rewards.modules[0].weight=0.5", "rewards.modules.1.options.temperature=0"]);
    expect(config.rewards.modules[0]).toEqual({ name: "precision", weight: 0.5, options: {} });
    expect(config.rewards.modules[1]).toMatchObject({ weight: 1, options: { temperature: 0 } });
    const lists = load(top, ["rewards.modules=[{name: precision}]", "evaluation.suites=[a, b]"]);
    expect(lists.rewards.modules).toEqual([{ name: "precision", weight: 1, options: {} }]);
    expect(lists.evaluation.suites).toEqual(["a", "b"]);
    expect(loadError(top, ["rewards.modules[3].weight=1"]).problems[0]).toMatch(/has no item 3.*set the whole list/);
    expect(load(top, ["nats.auth.token=s3cret"]).nats.auth).toEqual({ token: "s3cret" });
  });

  const perBackbone = file(
    "per-backbone.yaml",
    [
      "experiment: pb",
      "model: { init: dense-ckpt }",
      "rollout: { maxNewTokens: 128, groupSize: 6 }",
      "backbones:",
      "  blt: { model: { init: byte-ckpt, maxSeqLen: 1024 }, rollout: { maxNewTokens: 768 } }",
      "  mot: { model: { untie: ffn } }",
    ].join("\n"),
  );

  it("backbones: the chosen backbone's block applies over the files and under --set", () => {
    const dense = load(perBackbone);
    expect([dense.model.init, dense.model.maxSeqLen, dense.rollout.maxNewTokens]).toEqual(["dense-ckpt", 256, 128]);
    const blt = load(perBackbone, ["model.backbone=blt"]);
    expect([blt.model.init, blt.model.maxSeqLen, blt.rollout.maxNewTokens]).toEqual(["byte-ckpt", 1024, 768]);
    expect(blt.rollout.groupSize).toBe(6); // untouched by the block
    expect(load(perBackbone, ["model.backbone=blt", "rollout.maxNewTokens=500"]).rollout.maxNewTokens).toBe(500);
    expect(load(perBackbone, ["model.backbone=mot"]).model.untie).toBe("ffn");
    // The resolved config is what runs: the blocks are applied, not carried along.
    expect(YAML.parse(renderConfig(blt))).not.toHaveProperty("backbones");
  });

  it("backbones: unknown backbones and settings, and a block that switches backbone, are all named", () => {
    const bad = file(
      "bad-backbones.yaml",
      [
        "experiment: b",
        "backbones:",
        "  gpt: { model: { init: x } }",
        "  blt: { model: { backbone: dense, inti: y } }",
        "  mot: { rollout: 3, model: { untie: some } }",
      ].join("\n"),
    );
    expect(loadError(bad).problems).toEqual([
      "backbones.gpt: not a backbone (model.backbone is dense | mot | blt)",
      "backbones.blt.model.backbone: cannot be set here",
      expect.stringMatching(/^backbones\.blt\.model\.inti: no such setting \(model has: backbone, dModel/),
      expect.stringMatching(/^backbones\.mot\.model\.untie: expected "ffn" \| "ffn\+attention" \| "all", found "some"/),
      "backbones.mot.rollout: expected a mapping, found 3",
    ]);
  });

  it("an extends cycle is named with its whole chain", () => {
    const a = file("cycle-a.yaml", "extends: cycle-b.yaml\nexperiment: a\n");
    file("cycle-b.yaml", "extends: cycle-a.yaml\n");
    const error = loadError(a);
    expect(error.problems[0]).toBe(`extends cycle: ${resolve(a)} → ${resolve(dir, "cycle-b.yaml")} → ${resolve(a)}`);
  });

  it("names the file for unreadable files, YAML errors, duplicate keys and a bad extends", () => {
    expect(loadError(join(dir, "absent.yaml")).problems[0]).toMatch(/cannot read the file/);
    const broken = file("broken.yaml", "experiment: [unclosed\n");
    expect(loadError(broken).source).toBe(broken);
    expect(loadError(broken).problems[0]).toMatch(/^YAML:/);
    expect(loadError(file("dup.yaml", "experiment: a\nexperiment: b\n")).problems[0]).toMatch(/^YAML:.*unique/i);
    expect(loadError(file("list.yaml", "- a\n")).problems[0]).toMatch(/expected a mapping at the top level/);
    expect(loadError(file("badext.yaml", "extends: 3\nexperiment: a\n")).problems[0]).toBe(
      "extends: expected a file path, found 3",
    );
    const missingParent = loadError(file("orphan.yaml", "extends: nowhere.yaml\nexperiment: a\n"));
    expect(missingParent.source).toBe(resolve(dir, "nowhere.yaml"));
  });

  it("the rendered (dry-run) config decodes to exactly the config a run uses, and is what the run records", () => {
    const config = load(top, ["rollout.groupSize=5", `output.dir=${join(dir, "runs")}`]);
    const printed = renderConfig(config);
    expect(Either.getOrThrow(decodeConfigText(printed, "dry-run"))).toEqual(config);
    const written = Effect.runSync(writeResolvedConfig(config));
    expect(written).toBe(join(dir, "runs", "top", "config.yaml"));
    expect(readFileSync(written, "utf8")).toBe(printed);
    // Every default is spelled out, so the record does not depend on the defaults of a later version.
    expect(YAML.parse(printed).learner).toHaveProperty("maxPolicyLag", 2);
  });

  it("the shipped configs are valid", () => {
    for (const name of ["quickstart", "quickstart-vision", "tiny", "smoke"]) {
      const config = load(resolve(import.meta.dirname, `${name}.yaml`));
      expect(config.experiment).toBe(name);
    }
    expect(load(resolve(import.meta.dirname, "tiny.yaml")).rollout.groupSize).toBe(4);
  });
});

describe("merge and settings (pure)", () => {
  it("mergeConfigs replaces a mapping of another kind whole: an env's fields do not leak into another kind's", () => {
    const base = { env: { kind: "factworld", size: "tiny" } };
    expect(mergeConfigs(base, { env: { kind: "jsonl", path: "p.jsonl" } })).toEqual({
      env: { kind: "jsonl", path: "p.jsonl" },
    });
    expect(mergeConfigs(base, { env: { kind: "factworld", seed: 3 } })).toEqual({
      env: { kind: "factworld", size: "tiny", seed: 3 },
    });
    expect(mergeConfigs(base, { env: { seed: 3 } })).toEqual({ env: { kind: "factworld", size: "tiny", seed: 3 } });
  });

  it("mergeConfigs replaces lists and scalars, merges mappings, deletes on null", () => {
    expect(mergeConfigs({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: null, e: 2 })).toEqual({
      a: { b: 1, c: [3] },
      e: 2,
    });
  });

  it("parseSetting reads values as YAML", () => {
    expect(parseSetting("a.b=3").value).toBe(3);
    expect(parseSetting("a.b=3.5").value).toBe(3.5);
    expect(parseSetting("a.b=true").value).toBe(true);
    expect(parseSetting("a.b=x=y").value).toBe("x=y");
    expect(parseSetting("a.b=").value).toBe(null);
    expect(parseSetting("nats.url=nats://h:4222").value).toBe("nats://h:4222");
    expect(parseSetting("a[2].b=1").path).toEqual(["a", 2, "b"]);
  });

  it("applySetting does not change its input", () => {
    const raw = { experiment: "x", rollout: { groupSize: 2 } };
    const updated = applySetting(raw, parseSetting("rollout.groupSize=3"));
    expect(raw.rollout.groupSize).toBe(2);
    expect(updated).toEqual({ experiment: "x", rollout: { groupSize: 3 } });
  });

  it("ConfigError's message lists each problem on its own line", () => {
    const error = new ConfigError({ source: "f.yaml", problems: ["a: x", "b: y"] });
    expect(error.message).toBe("invalid config (f.yaml), 2 problems:\n  - a: x\n  - b: y");
  });
});

describe("rollout.decoding and learner.offPolicy", () => {
  it("decode plain by default, and cfg / cd-k with their defaults", () => {
    const plain = Either.getOrThrow(decodeConfig({ experiment: "d" }));
    expect(plain.rollout.decoding).toEqual({ kind: "plain" });
    expect(plain.learner.offPolicy).toEqual({ mode: "drop", cap: 2 });
    const cdk = Either.getOrThrow(decodeConfig({ experiment: "d", rollout: { decoding: { kind: "cd-k" } } }));
    expect(cdk.rollout.decoding).toEqual({ kind: "cd-k", alpha: 0.1, k: 1 });
  });

  it("refuse alpha outside (0, 1], k < 1, a non-finite scale and a cap below 1, naming the path", () => {
    const bad: [unknown, RegExp][] = [
      [{ decoding: { kind: "cd-k", alpha: 0 } }, /rollout\.decoding\.alpha[\s\S]*\(0, 1\]/],
      [{ decoding: { kind: "cd-k", alpha: 1.01 } }, /rollout\.decoding\.alpha/],
      [{ decoding: { kind: "cd-k", k: 0 } }, /rollout\.decoding\.k[\s\S]*integer > 0/],
      [{ decoding: { kind: "cfg", scale: Number.POSITIVE_INFINITY } }, /rollout\.decoding\.scale[\s\S]*finite/],
      [{ decoding: { kind: "cfg", scale: Number.NaN } }, /rollout\.decoding\.scale/],
    ];
    for (const [rollout, message] of bad) expect(problemsOf({ experiment: "d", rollout }).join("\n")).toMatch(message);
    expect(problemsOf({ experiment: "d", learner: { offPolicy: { cap: 0.5 } } }).join("\n")).toMatch(
      /learner\.offPolicy\.cap/,
    );
  });
});
