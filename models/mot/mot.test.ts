import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../backend.ts";
import { loadCheckpoint, saveCheckpoint } from "../checkpoint.ts";
import { type DenseConfig, DensePolicy } from "../dense.ts";
import { TINY_SPECIAL_TOKENS, tinyShape } from "../fixtures/tiny-models.ts";
import { Modality, type Policy, type PromptAnswerBatch, type TokenBatch, tokenModalities } from "../policy.ts";
import { buildPolicy, policyStartingFrom } from "../registry.ts";
import { type MotConfig, MotPolicy, type MotUntie } from "./index.ts";
import { groupBySlot } from "./routing.ts";

const special = TINY_SPECIAL_TOKENS;
const shape = tinyShape();
const denseConfig = (overrides: Partial<DenseConfig> = {}): DenseConfig => ({
  backbone: "dense",
  ...shape,
  ...overrides,
});
const motConfig = (overrides: Partial<MotConfig> = {}): MotConfig => ({ backbone: "mot", ...shape, ...overrides });

// Prompts of different lengths; continuations that open and close <think> (3 … 4), so every row
// crosses prompt → reasoning → answer at a different step.
const prompts = [Int32Array.of(1, 9, 12, 30), Int32Array.of(1, 17), Int32Array.of(1, 5, 6, 7, 8, 21, 22)];
const continuations = [
  Int32Array.of(3, 25, 4, 19, 11, 2),
  Int32Array.of(3, 4, 38, 6, 7, 9),
  Int32Array.of(3, 10, 11, 12, 4, 2),
];
const silent = { info: () => {} };

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: silent });
});

/** Larger weights than the init, so logits are far from uniform and differences show. */
function sharpen(policy: Policy) {
  for (const v of policy.trainableVariables) v.assign(tf.tidy(() => tf.mul(v, 4)));
}

/** Rows `prompt ++ continuation[0, step)`, right-padded, as a TokenBatch. */
function rowsAt(step: number): { batch: TokenBatch; lengths: number[] } {
  const rows = prompts.map((p, b) => Int32Array.from([...p, ...continuations[b]!.subarray(0, step)]));
  const L = Math.max(...rows.map((r) => r.length));
  const tokens = new Int32Array(rows.length * L);
  for (const [b, r] of rows.entries()) tokens.set(r, b * L);
  const promptLengths = Int32Array.from(prompts, (p) => p.length);
  return { batch: { tokens, batchSize: rows.length, length: L, promptLengths }, lengths: rows.map((r) => r.length) };
}

async function logitsOf(policy: Policy, batch: TokenBatch): Promise<Float32Array> {
  const logits = policy.forward(batch);
  const values = (await logits.data()) as Float32Array;
  logits.dispose();
  return values;
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
};

/** Decodes `continuations` through a KV-cached session; the next-token logits of every step. */
async function cachedLogits(policy: { beginDecode: MotPolicy["beginDecode"] }): Promise<Float32Array[]> {
  const session = await policy.beginDecode(prompts);
  const steps: Float32Array[] = [session.logits.slice()];
  for (let step = 0; step < continuations[0]!.length; step++) {
    await session.advance(Int32Array.from(continuations, (c) => c[step]!));
    steps.push(session.logits.slice());
  }
  session.dispose();
  return steps;
}

describe("groupBySlot", () => {
  it("groups rows stably by slot, with the inverse permutation and the non-empty groups", () => {
    const g = groupBySlot([2, 0, 1, 0, 2], 4);
    expect([...g.order]).toEqual([1, 3, 2, 0, 4]);
    expect([...g.inverse]).toEqual([3, 0, 2, 1, 4]);
    expect(g.groups).toEqual([
      { slot: 0, rows: 2 },
      { slot: 1, rows: 1 },
      { slot: 2, rows: 2 },
    ]);
    expect(g.identity).toBe(false);
    expect(groupBySlot([0, 0, 1, 3], 4).identity).toBe(true);
    expect(() => groupBySlot([0, 3], 3)).toThrow(/row 1 has slot 3, expected an integer in \[0, 3\)/);
  });
});

describe.each<[MotUntie, "rope" | "learned"]>([
  ["all", "rope"],
  ["ffn+attention", "learned"],
  ["ffn", "rope"],
])("MoT (untie %s, %s positions) with every modality tied to one dense model", (untie, positions) => {
  const dense = new DensePolicy(denseConfig({ positions, initSeed: 3 }));
  const mot = new MotPolicy(motConfig({ positions, untie, initSeed: 11 }));
  beforeAll(async () => {
    sharpen(dense);
    await mot.importDenseWeights(await dense.exportWeights());
  });
  afterAll(() => {
    dense.dispose();
    mot.dispose();
  });

  it("computes dense's logits in training (forward and the learner path), max abs diff ≤ 1e-5", async () => {
    const { batch } = rowsAt(continuations[0]!.length);
    const diff = maxAbsDiff(await logitsOf(mot, batch), await logitsOf(dense, batch));
    expect(diff).toBeLessThanOrEqual(1e-5);
    const scoring: PromptAnswerBatch = { prompts, answers: continuations };
    const [a, b] = [mot, dense].map((p) => p.answerLogProbs(scoring, { temperature: 0.7 }));
    expect(maxAbsDiff(await a!.logProbs.data(), await b!.logProbs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([a!.logProbs, a!.mask, b!.logProbs, b!.mask]);
  });

  it("computes dense's logits in KV-cache decoding, max abs diff ≤ 1e-5", async () => {
    const [motSteps, denseSteps] = [await cachedLogits(mot), await cachedLogits(dense)];
    motSteps.forEach((logits, step) => {
      expect(maxAbsDiff(logits, denseSteps[step]!)).toBeLessThanOrEqual(1e-5);
    });
  });

  it("has the dense model's compute per token and more parameters", () => {
    expect(mot.flopsPerToken(32)).toBe(dense.flopsPerToken(32));
    expect(mot.parameterCount()).toBeGreaterThan(dense.parameterCount());
  });
});

describe("MoT with untied weights", () => {
  const mot = new MotPolicy(motConfig());
  sharpen(mot);
  afterAll(() => mot.dispose());

  it("routes each token to its modality's weights: changing the reasoning FFN changes logits from the first reasoning token on", async () => {
    const { batch } = rowsAt(continuations[0]!.length);
    const before = await logitsOf(mot, batch);
    const names = mot.variableNames;
    const reasoningW1 = mot.trainableVariables[names.indexOf("layer0/reasoning/w1")]!;
    const saved = reasoningW1.clone();
    reasoningW1.assign(tf.tidy(() => tf.add(reasoningW1, 0.5)));
    const after = await logitsOf(mot, batch);
    reasoningW1.assign(saved);
    saved.dispose();
    const V = shape.vocabSize;
    for (let b = 0; b < batch.batchSize; b++) {
      const firstReasoning = prompts[b]!.length; // every continuation starts with <think>
      for (let t = 0; t < batch.length; t++) {
        const at = (b * batch.length + t) * V;
        const diff = maxAbsDiff(before.subarray(at, at + V), after.subarray(at, at + V));
        if (t < firstReasoning) expect(diff).toBe(0);
        else expect(diff).toBeGreaterThan(1e-4);
      }
    }
  });

  it("KV-cache decoding gives the logits of a full recompute (1e-4), modality of each new token from the tokens so far", async () => {
    const steps = await cachedLogits(mot);
    const V = shape.vocabSize;
    for (const [step, logits] of steps.entries()) {
      const { batch, lengths } = rowsAt(step);
      const full = await logitsOf(mot, batch);
      lengths.forEach((length, b) => {
        const at = (b * batch.length + length - 1) * V;
        expect(maxAbsDiff(logits.subarray(b * V, (b + 1) * V), full.subarray(at, at + V))).toBeLessThan(1e-4);
      });
    }
  });

  it("behaviour log-probs recorded while sampling equal the learner path's (1e-4)", async () => {
    // Stop tokens and a high temperature make rows cross <think> … </think> at different steps.
    const options = { temperature: 1.5, topP: 0.95, maxNewTokens: 16, seed: 5 };
    const result = await mot.sample(prompts, options);
    const answers = result.sequences.map((s) => s.tokens);
    const scored = mot.answerLogProbs({ prompts, answers }, { temperature: 1.5 });
    const learner = (await scored.logProbs.array()) as number[][];
    tf.dispose([scored.logProbs, scored.mask]);
    let thinkTokens = 0;
    result.sequences.forEach((s, b) => {
      expect(s.tokens.length).toBeGreaterThan(0);
      for (const [j, lp] of s.logProbs.entries()) expect(Math.abs(lp - learner[b]![j]!)).toBeLessThan(1e-4);
      thinkTokens += s.tokens.filter((t) => t === special.thinkOpen || t === special.thinkClose).length;
    });
    expect(thinkTokens).toBeGreaterThan(0); // the sample did exercise modality switches
  });

  it("sends gradient to every modality that predicts a token, and zeros (not none) to an absent one", () => {
    const withImage = new MotPolicy(motConfig({ modalities: ["prompt", "reasoning", "answer", "image"] }));
    // <think> 5 </think> are reasoning; 6 is answer and predicts 7 (the last token predicts nothing).
    const answers = [Int32Array.of(3, 5, 4, 6, 7)];
    const { grads, value } = tf.variableGrads(() => {
      const { logProbs } = withImage.answerLogProbs({ prompts: [prompts[0]!], answers });
      return tf.neg(tf.sum(logProbs)) as tf.Scalar;
    }, withImage.trainableVariables as tf.Variable[]);
    const gradientMass = (name: string) => {
      const variable = withImage.trainableVariables[withImage.variableNames.indexOf(name)]!;
      return tf.tidy(() => tf.sum(tf.abs(grads[variable.name]!))).dataSync()[0]!;
    };
    for (const m of ["prompt", "reasoning", "answer"]) {
      expect(gradientMass(`layer0/${m}/wq`)).toBeGreaterThan(0);
      expect(gradientMass(`layer1/${m}/w2`)).toBeGreaterThan(0);
      expect(gradientMass(`${m}/final_norm`)).toBeGreaterThan(0);
    }
    // Optimisers and clipping expect one gradient per variable, as dense gives.
    expect(Object.keys(grads).length).toBe(withImage.trainableVariables.length);
    expect(gradientMass("layer0/image/wq")).toBe(0);
    expect(gradientMass("layer1/image/w2")).toBe(0);
    tf.dispose([value, ...Object.values(grads)]);
    withImage.dispose();
  });
});

describe("MoT with an image modality", () => {
  // Ids 32–39 are image tokens (a codebook's codes after the words); each prompt starts with a picture.
  const imageTokens = { first: 32, count: 8 };
  const mot = new MotPolicy(motConfig({ imageTokens, modalities: ["prompt", "reasoning", "answer", "image"] }));
  sharpen(mot);
  afterAll(() => mot.dispose());
  const picturePrompts = [Int32Array.of(1, 33, 35, 39, 9, 12), Int32Array.of(1, 32, 32, 36, 17)];
  const batchOf = (rows: readonly Int32Array[]): TokenBatch => {
    const L = Math.max(...rows.map((r) => r.length));
    const tokens = new Int32Array(rows.length * L);
    for (const [b, r] of rows.entries()) tokens.set(r, b * L);
    return { tokens, batchSize: rows.length, length: L, promptLengths: Int32Array.from(rows, (r) => r.length) };
  };

  it("marks image tokens image wherever they are, the rest by position and <think>", () => {
    const markers = { thinkOpen: 3, thinkClose: 4, imageTokens };
    expect([...tokenModalities([1, 33, 35, 9, 3, 38, 4, 20], 4, markers)]).toEqual([
      Modality.prompt,
      Modality.image,
      Modality.image,
      Modality.prompt,
      Modality.reasoning,
      Modality.image,
      Modality.reasoning,
      Modality.answer,
    ]);
  });

  it("gives image tokens their own weights: changing the image FFN changes logits from the first image token on, not before, and not for text", async () => {
    const withPictures = batchOf(picturePrompts);
    const textOnly = batchOf([Int32Array.of(1, 9, 12, 30), Int32Array.of(1, 17, 3, 25)]);
    const [before, textBefore] = [await logitsOf(mot, withPictures), await logitsOf(mot, textOnly)];
    const imageW1 = mot.trainableVariables[mot.variableNames.indexOf("layer0/image/w1")]!;
    const saved = imageW1.clone();
    imageW1.assign(tf.tidy(() => tf.add(imageW1, 0.5)));
    const [after, textAfter] = [await logitsOf(mot, withPictures), await logitsOf(mot, textOnly)];
    imageW1.assign(saved);
    saved.dispose();
    const V = shape.vocabSize;
    const at = (b: number, t: number) => (b * withPictures.length + t) * V;
    for (let b = 0; b < withPictures.batchSize; b++) {
      expect(maxAbsDiff(before.subarray(at(b, 0), at(b, 1)), after.subarray(at(b, 0), at(b, 1)))).toBe(0); // <bos>
      expect(maxAbsDiff(before.subarray(at(b, 1), at(b, 2)), after.subarray(at(b, 1), at(b, 2)))).toBeGreaterThan(1e-4);
    }
    expect(maxAbsDiff(textBefore, textAfter)).toBe(0);
  });

  it("reads the picture in KV-cached decoding as in a full recompute (1e-4)", async () => {
    const session = await mot.beginDecode(picturePrompts);
    const full = await logitsOf(mot, batchOf(picturePrompts));
    const V = shape.vocabSize;
    const L = Math.max(...picturePrompts.map((p) => p.length));
    picturePrompts.forEach((p, b) => {
      const at = (b * L + p.length - 1) * V;
      expect(maxAbsDiff(session.logits.subarray(b * V, (b + 1) * V), full.subarray(at, at + V))).toBeLessThan(1e-4);
    });
    session.dispose();
  });

  it("starts from a dense captioner exactly: the image weights are copies of dense's (logits within 1e-5)", async () => {
    const dense = new DensePolicy(denseConfig({ imageTokens }));
    sharpen(dense);
    const converted = await policyStartingFrom(dense, "mot", "dense captioner", {
      modalities: ["prompt", "reasoning", "answer", "image"],
    });
    expect(converted.config.imageTokens).toEqual(imageTokens);
    const batch = batchOf(picturePrompts);
    expect(maxAbsDiff(await logitsOf(dense, batch), await logitsOf(converted, batch))).toBeLessThan(1e-5);
    converted.dispose();
    dense.dispose();
  });

  it("without an image modality, image tokens share the prompt's weights (and nothing breaks)", async () => {
    const shared = new MotPolicy(motConfig({ imageTokens }));
    expect(shared.variableNames.some((n) => n.includes("/image/"))).toBe(false);
    const logits = await logitsOf(shared, batchOf(picturePrompts));
    expect(logits.every(Number.isFinite)).toBe(true);
    shared.dispose();
  });
});

describe("training", () => {
  it("a tiny MoT's loss falls on a prompt → <think> reasoning </think> answer task", () => {
    const mot = new MotPolicy(motConfig({ initSeed: 2 }));
    // Answer = reasoning copy of the prompt's key token, then its successor: learnable quickly.
    const batch: PromptAnswerBatch = {
      prompts: Array.from({ length: 16 }, (_, i) => Int32Array.of(1, 10 + i)),
      answers: Array.from({ length: 16 }, (_, i) => Int32Array.of(3, 10 + i, 4, 11 + i, 2)),
    };
    const optimizer = tf.train.adam(1e-2);
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const loss = optimizer.minimize(
        () => {
          const { logProbs, mask } = mot.answerLogProbs(batch);
          return tf.div(tf.neg(tf.sum(logProbs)), tf.sum(mask)) as tf.Scalar;
        },
        true,
        mot.trainableVariables as tf.Variable[],
      )!;
      losses.push(loss.dataSync()[0]!);
      loss.dispose();
    }
    optimizer.dispose();
    mot.dispose();
    expect(losses[0]!).toBeGreaterThan(3); // ≈ ln 40 at the start
    // The fixed tokens (<think>, </think>, <eos>) are learnt first; the two copies take longer.
    expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.4);
  });
});

describe("config and weights", () => {
  it("untie granularity sets which groups get per-modality weights", () => {
    const count = (untie: MotUntie) => {
      const policy = new MotPolicy(motConfig({ untie }));
      const names = [...policy.variableNames];
      const n = policy.parameterCount();
      policy.dispose();
      return { names, n };
    };
    const dense = new DensePolicy(denseConfig());
    const denseCount = dense.parameterCount();
    dense.dispose();
    const { dModel: d, dFF, nLayers } = shape;
    const extra = (perModality: number) => 2 * perModality * nLayers; // 3 modalities: 2 extra copies
    const ffn = count("ffn");
    const attention = count("ffn+attention");
    const all = count("all");
    expect(ffn.n).toBe(denseCount + extra(2 * d * dFF));
    expect(attention.n).toBe(denseCount + extra(2 * d * dFF + 4 * d * d));
    expect(all.n).toBe(denseCount + extra(2 * d * dFF + 4 * d * d + 2 * d) + 2 * d);
    expect(ffn.names).toContain("layer0/wq");
    expect(ffn.names).toContain("layer0/answer/w1");
    expect(attention.names).toContain("layer0/prompt/wq");
    expect(attention.names).toContain("layer0/norm1");
    expect(all.names).toContain("layer1/reasoning/norm2");
    expect(all.names).toContain("answer/final_norm");
  });

  it("export → import is exact; a mismatched model or dense file is refused naming the tensor", async () => {
    const source = new MotPolicy(motConfig({ initSeed: 1 }));
    const target = new MotPolicy(motConfig({ initSeed: 2 }));
    const bytes = await source.exportWeights();
    expect(await target.exportWeights()).not.toEqual(bytes);
    await target.importWeights(bytes);
    source.trainableVariables.forEach((v, i) => {
      expect(target.trainableVariables[i]!.dataSync()).toEqual(v.dataSync());
    });
    const ffnOnly = new MotPolicy(motConfig({ untie: "ffn" }));
    await expect(ffnOnly.importWeights(bytes, "mot.bin")).rejects.toThrow(/mot\.bin: .*missing "layer0\/wq"/);
    const wideDense = new DensePolicy(denseConfig({ dFF: 96 }));
    await expect(target.importDenseWeights(await wideDense.exportWeights(), "dense.bin")).rejects.toThrow(
      /dense\.bin: .*"layer0\/w1" has shape \[32,96\], the model needs \[32,64\]/,
    );
    // A refused file changes nothing.
    source.trainableVariables.forEach((v, i) => {
      expect(target.trainableVariables[i]!.dataSync()).toEqual(v.dataSync());
    });
    for (const p of [source, target, ffnOnly, wideDense]) p.dispose();
  });

  it("builds from `backbone: mot` through the registry, and rejects bad configs naming every field", () => {
    const policy = buildPolicy(motConfig());
    expect(policy).toBeInstanceOf(MotPolicy);
    policy.dispose();
    expect(() =>
      buildPolicy(motConfig({ nHeads: 5, untie: "norms" as MotUntie, modalities: ["prompt", "video" as "image"] })),
    ).toThrow(
      /invalid mot model config: nHeads \(5\) must divide dModel \(32\); untie must be one of ffn \| ffn\+attention \| all, got "norms"; modality "video" is not one of .*; modalities must include "reasoning"/,
    );
  });

  it("starts from a dense policy through the registry (same logits); refuses pairs with no mapping", async () => {
    const dense = new DensePolicy(denseConfig({ initSeed: 6 }));
    sharpen(dense);
    const mot = await policyStartingFrom(dense, "mot", "dense.ckpt", { untie: "ffn+attention" });
    expect(mot).toBeInstanceOf(MotPolicy);
    expect((mot as MotPolicy).untie).toBe("ffn+attention");
    const { batch } = rowsAt(continuations[0]!.length);
    expect(maxAbsDiff(await logitsOf(mot, batch), await logitsOf(dense, batch))).toBeLessThanOrEqual(1e-5);
    expect(await policyStartingFrom(dense, "dense", "dense.ckpt")).toBe(dense);
    await expect(policyStartingFrom(dense, "blt", "dense.ckpt")).rejects.toThrow(
      /dense\.ckpt holds a dense policy; a blt policy cannot start from it/,
    );
    await expect(policyStartingFrom(mot, "dense", "mot.ckpt")).rejects.toThrow(/mot\.ckpt holds a mot policy/);
    dense.dispose();
    mot.dispose();
  });

  it("checkpoints with Adam state and resumes exactly, also after batches missing a modality", async () => {
    const original = new MotPolicy(motConfig({ initSeed: 4 }));
    const optimizer = tf.train.adam(1e-2);
    const noReasoning: PromptAnswerBatch = {
      prompts,
      answers: [Int32Array.of(5, 6), Int32Array.of(7), Int32Array.of(8, 9)],
    };
    const step = (policy: Policy, adam: tf.Optimizer, batch: PromptAnswerBatch) =>
      adam.minimize(
        () => {
          const { logProbs, mask } = policy.answerLogProbs(batch);
          return tf.div(tf.neg(tf.sum(logProbs)), tf.sum(mask)) as tf.Scalar;
        },
        false,
        policy.trainableVariables as tf.Variable[],
      );
    step(original, optimizer, noReasoning);
    step(original, optimizer, { prompts, answers: continuations });
    const dir = join(mkdtempSync(join(tmpdir(), "factrl-mot-")), "ckpt");
    await saveCheckpoint(dir, { policy: original, optimizer, step: 2 });
    const restoredOptimizer = tf.train.adam(1e-2);
    const loaded = await loadCheckpoint(dir, { optimizer: restoredOptimizer });
    expect(loaded.policy).toBeInstanceOf(MotPolicy);
    expect(loaded.policy.variableNames).toEqual(original.variableNames);
    step(original, optimizer, noReasoning);
    step(loaded.policy, restoredOptimizer, noReasoning);
    // As dense's checkpoint test: 1e-6, not bit-exact (tfjs recomputes Adam's β^t on restore);
    // a restarted Adam would move every weight by ~lr = 1e-2.
    original.trainableVariables.forEach((v, i) => {
      const expected = v.dataSync();
      for (const [j, x] of loaded.policy.trainableVariables[i]!.dataSync().entries()) {
        expect(Math.abs(x - expected[j]!)).toBeLessThan(1e-6);
      }
    });
    for (const p of [original, loaded.policy]) p.dispose();
    optimizer.dispose();
    restoredOptimizer.dispose();
  });
});
