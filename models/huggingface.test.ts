/**
 * Parity with Hugging Face: tiny random Llama and Qwen2 checkpoints in the exact Hugging Face layout,
 * with reference logits from an independent numpy implementation of transformers' forward pass
 * (scripts/hf-fixture.py writes models/fixtures/hf). factrl's full forward and its KV-cache decoding
 * must reproduce them to 1e-4.
 */
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAnswer } from "../envs/index.ts";
import { initBackend } from "./backend.ts";
import type { DensePolicy } from "./dense.ts";
import { huggingFaceTextFormat } from "./hf-text-format.ts";
import {
  checkHuggingFaceModel,
  exportHuggingFaceModel,
  importHuggingFaceModel,
  loadHuggingFaceModel,
} from "./huggingface.ts";
import { policyStartingFrom } from "./registry.ts";
import { readSafetensorsFile } from "./safetensors.ts";

const FIXTURES = join(import.meta.dirname, "fixtures", "hf");
const TOLERANCE = 1e-4;

async function reference(dir: string) {
  const { text, ids } = JSON.parse(await readFile(join(dir, "reference.json"), "utf8")) as {
    text: string;
    ids: number[];
  };
  const logits = (await readSafetensorsFile(join(dir, "reference-logits.safetensors"))).get("logits")!;
  const [T, V] = logits.shape as [number, number];
  return { text, ids, V, row: (t: number) => logits.values.subarray(t * V, (t + 1) * V), T };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
};

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), "factrl-hf-"));
  tempDirs.push(dir);
  return dir;
};

beforeAll(async () => {
  await initBackend();
});
afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

describe.each(["tiny-llama", "tiny-qwen2"])("Hugging Face %s", (name) => {
  const dir = join(FIXTURES, name);

  it("tokenizes the reference text to the reference ids, and decodes the answer back", async () => {
    const ref = await reference(dir);
    const { policy, tokenizer } = await importHuggingFaceModel(dir);
    const format = huggingFaceTextFormat(tokenizer, dir);
    // The prompt format appends "\n", which the reference text ends with.
    expect(Array.from(format.promptTokens(ref.text.slice(0, -1)))).toEqual(ref.ids);
    const answer = "<think> the capital </think> Paris is in France.";
    const tokens = format.answerTokens(answer);
    expect(tokens.at(-1)).toBe(policy.config.specialTokens.eos);
    expect(format.answerText([...tokens, 5, 6])).toBe(answer);
    // The rewards read the decoded text: its reasoning/answer split is the one every backbone's has.
    expect(parseAnswer(format.answerText(tokens))).toMatchObject({
      ok: true,
      reasoning: "the capital",
      answer: " Paris is in France.",
    });
    // Qwen2's fixture has <think> and </think> as tokens of their own, Llama's spells them in pieces.
    const thinkTokens = format.answerTokens("<think>").length - 1;
    if (name === "tiny-qwen2") expect(thinkTokens).toBe(1);
    else expect(thinkTokens).toBeGreaterThan(1);
    policy.dispose();
  });

  it("gives the reference logits through the full forward pass", async () => {
    const ref = await reference(dir);
    const policy = await loadHuggingFaceModel(dir);
    expect(policy.config.vocabSize).toBe(ref.V);
    const logits = policy.forward({
      tokens: Int32Array.from(ref.ids),
      batchSize: 1,
      length: ref.T,
      promptLengths: Int32Array.of(ref.T),
    });
    const values = await logits.data();
    logits.dispose();
    expect(
      maxAbsDiff(
        values,
        Float32Array.from({ length: ref.T * ref.V }, (_, i) => ref.row(Math.floor(i / ref.V))[i % ref.V]!),
      ),
    ).toBeLessThanOrEqual(TOLERANCE);
    policy.dispose();
  });

  it("gives the reference logits through KV-cached decoding, alone and left-padded in a batch", async () => {
    const ref = await reference(dir);
    const policy = (await loadHuggingFaceModel(dir)) as DensePolicy;
    const start = 5;
    // Row 0 is the reference sequence; row 1 a shorter one, so row 0 is decoded beside left padding.
    const session = await policy.beginDecode([
      Int32Array.from(ref.ids.slice(0, start)),
      Int32Array.from(ref.ids.slice(0, 2)),
    ]);
    let worst = maxAbsDiff(session.logits.subarray(0, ref.V), ref.row(start - 1));
    for (let t = start; t < ref.T; t++) {
      await session.advance(Int32Array.of(ref.ids[t]!, ref.ids[t - start + 2]!));
      worst = Math.max(worst, maxAbsDiff(session.logits.subarray(0, ref.V), ref.row(t)));
      // Row 1 has seen ids[0 .. t − start + 2]: the reference row for that prefix.
      worst = Math.max(worst, maxAbsDiff(session.logits.subarray(ref.V), ref.row(t - start + 2)));
    }
    session.dispose();
    expect(worst).toBeLessThanOrEqual(TOLERANCE);
    policy.dispose();
  });

  it("holds each weight once (the variables' initial tensors are freed when the import assigns them)", async () => {
    const before = tf.memory().numBytes;
    const policy = await loadHuggingFaceModel(dir);
    expect(tf.memory().numBytes - before).toBe(4 * policy.parameterCount());
    policy.dispose();
    expect(tf.memory().numBytes).toBe(before);
  });

  it("exports to the same layout, and import → export → import is bit-identical", async () => {
    const first = await importHuggingFaceModel(dir);
    const out = await tempDir();
    await exportHuggingFaceModel(first.policy, first.tokenizer, out);
    const second = await importHuggingFaceModel(out);
    expect(second.architecture).toBe(first.architecture);
    expect(second.policy.config).toEqual(first.policy.config);
    expect(second.tokenizer).toEqual(first.tokenizer);
    expect(second.policy.variableNames).toEqual(first.policy.variableNames);
    for (const [i, v] of first.policy.trainableVariables.entries()) {
      const a = new Uint32Array((await v.data()).buffer);
      const b = new Uint32Array((await second.policy.trainableVariables[i]!.data()).buffer);
      expect(b, first.policy.variableNames[i]).toEqual(a);
    }
    first.policy.dispose();
    second.policy.dispose();
  });
});

describe("Hugging Face import refuses bad input, naming the file and the field or tensor", () => {
  /** The header-only check (what preflight runs, before any actor) and the import say the same. */
  const refused = async (dir: string, message: string | RegExp) => {
    await expect(checkHuggingFaceModel(dir)).rejects.toThrow(message);
    await expect(importHuggingFaceModel(dir)).rejects.toThrow(message);
  };
  const copyOf = async (name: string) => {
    const dir = await tempDir();
    await cp(join(FIXTURES, name), dir, { recursive: true });
    return dir;
  };
  const editConfig = async (dir: string, edit: (config: Record<string, unknown>) => void) => {
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    edit(config);
    await writeFile(join(dir, "config.json"), JSON.stringify(config));
  };

  it("an unsupported architecture or hidden_act", async () => {
    const dir = await copyOf("tiny-llama");
    await editConfig(dir, (c) => {
      c.architectures = ["GPT2LMHeadModel"];
      c.hidden_act = "gelu";
    });
    await refused(dir, `${join(dir, "config.json")}: architectures is ["GPT2LMHeadModel"]`);
    await refused(dir, /hidden_act = "gelu" is not supported/);
  });

  it("scaled RoPE and sliding windows", async () => {
    const dir = await copyOf("tiny-qwen2");
    await editConfig(dir, (c) => {
      c.rope_scaling = { rope_type: "llama3", factor: 8 };
      c.use_sliding_window = true;
    });
    await refused(dir, /config\.json: rope_scaling = .* is not supported.*; use_sliding_window = true/);
  });

  it("a missing file", async () => {
    const dir = await copyOf("tiny-llama");
    await rm(join(dir, "tokenizer.json"));
    await refused(dir, `${join(dir, "tokenizer.json")}: cannot read (ENOENT)`);
    const sharded = await copyOf("tiny-qwen2");
    await rm(join(sharded, "model-00002-of-00002.safetensors"));
    await refused(
      sharded,
      /model-00002-of-00002\.safetensors: missing \(model\.safetensors\.index\.json puts tensor model\.layers\.\d+\.\S+ there\)/,
    );
    const noTensor = await copyOf("tiny-llama");
    await editConfig(noTensor, (c) => {
      c.num_hidden_layers = 3;
    });
    await refused(
      noTensor,
      `${join(noTensor, "model.safetensors")}: missing tensor model.layers.2.input_layernorm.weight`,
    );
  });

  it("a shape that does not match the config", async () => {
    const dir = await copyOf("tiny-llama");
    await editConfig(dir, (c) => {
      c.intermediate_size = 80;
    });
    await refused(
      dir,
      `${join(dir, "model.safetensors")}: tensor model.layers.0.mlp.gate_proj.weight has shape [64,32], config.json makes it [80,32]`,
    );
  });

  it("a truncated safetensors file", async () => {
    const dir = await copyOf("tiny-llama");
    const file = join(dir, "model.safetensors");
    await truncate(file, (await readFile(file)).length - 100);
    await refused(dir, `${file}: truncated: tensor lm_head.weight ends at byte`);
    await truncate(file, 4);
    await refused(dir, `${file}: truncated: 4 bytes, not even the 8-byte header length`);
  });

  it("MoT refuses to start from an imported model", async () => {
    const { policy } = await importHuggingFaceModel(join(FIXTURES, "tiny-qwen2"));
    await expect(policyStartingFrom(policy, "mot", "hf:tiny-qwen2")).rejects.toThrow(
      /hf:tiny-qwen2 is a Llama-shaped dense policy .*: MoT has none of these/,
    );
    policy.dispose();
  });

  it("export refuses a policy that has no Hugging Face layout", async () => {
    const { policy } = await importHuggingFaceModel(join(FIXTURES, "tiny-llama"));
    await expect(
      exportHuggingFaceModel(policy, { kind: "factworld-words", words: [] }, await tempDir()),
    ).rejects.toThrow(/not a Hugging Face tokenizer/);
    policy.dispose();
  });
});

it("the parity check bites: the same weights with another rope_theta or eps miss the reference", async () => {
  const ref = await reference(join(FIXTURES, "tiny-qwen2"));
  for (const edit of [{ rope_theta: 10000 }, { rms_norm_eps: 0.5 }]) {
    const dir = await tempDir();
    await cp(join(FIXTURES, "tiny-qwen2"), dir, { recursive: true });
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    await writeFile(join(dir, "config.json"), JSON.stringify({ ...config, ...edit }));
    const policy = await loadHuggingFaceModel(dir);
    const logits = tf.tidy(() =>
      policy
        .forward({ tokens: Int32Array.from(ref.ids), batchSize: 1, length: ref.T, promptLengths: Int32Array.of(ref.T) })
        .reshape([-1]),
    );
    const values = await logits.data();
    logits.dispose();
    policy.dispose();
    expect(maxAbsDiff(values.subarray((ref.T - 1) * ref.V), ref.row(ref.T - 1)), JSON.stringify(edit)).toBeGreaterThan(
      100 * TOLERANCE,
    );
  }
});
