import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "./backend.ts";
import { type DenseConfig, DensePolicy, ropeTables } from "./dense.ts";
import { Modality, tokenModalities } from "./policy.ts";

const special = { pad: 0, bos: 1, eos: 2, thinkOpen: 3, thinkClose: 4 };
const tiny = (overrides: Partial<DenseConfig> = {}): DenseConfig => ({
  backbone: "dense",
  vocabSize: 40,
  maxSeqLen: 48,
  specialTokens: special,
  initSeed: 7,
  dModel: 32,
  nLayers: 2,
  nHeads: 4,
  dFF: 64,
  positions: "rope",
  ...overrides,
});
const prompts = [Int32Array.of(1, 9, 12, 30), Int32Array.of(1, 17), Int32Array.of(1, 5, 6, 7, 8, 21, 22)];
const silent = { info: () => {} };

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: silent });
});

/** Larger weights than the init, so the logits are far from uniform and differences show. */
function sharpen(policy: DensePolicy) {
  for (const v of policy.trainableVariables) v.assign(tf.tidy(() => tf.mul(v, 4)));
}

describe.each(["rope", "learned"] as const)("dense policy (%s positions)", (positions) => {
  const policy = new DensePolicy(tiny({ positions }));
  sharpen(policy);
  afterAll(() => policy.dispose());

  it("KV-cache decoding gives the logits of a full recompute (1e-4), with prompts of different lengths", async () => {
    const continuation = [Int32Array.of(11, 3, 25, 4, 19), Int32Array.of(6, 6, 2, 0, 0), Int32Array.of(3, 4, 38, 2, 0)];
    const session = await policy.beginDecode(prompts);
    const V = policy.config.vocabSize;
    let maxDiff = 0;
    for (let step = 0; step <= continuation[0]!.length; step++) {
      const rows = prompts.map((p, b) => Int32Array.from([...p, ...continuation[b]!.subarray(0, step)]));
      const L = Math.max(...rows.map((r) => r.length));
      const tokens = new Int32Array(rows.length * L);
      for (const [b, r] of rows.entries()) tokens.set(r, b * L);
      const full = policy.forward({
        tokens,
        batchSize: rows.length,
        length: L,
        promptLengths: Int32Array.from(prompts, (p) => p.length),
      });
      const fullValues = await full.data();
      full.dispose();
      rows.forEach((r, b) => {
        for (let v = 0; v < V; v++) {
          const cached = session.logits[b * V + v]!;
          const recomputed = fullValues[(b * L + r.length - 1) * V + v]!;
          maxDiff = Math.max(maxDiff, Math.abs(cached - recomputed));
        }
      });
      if (step < continuation[0]!.length) await session.advance(Int32Array.from(continuation, (c) => c[step]!));
    }
    session.dispose();
    expect(maxDiff).toBeLessThan(1e-4);
    expect(maxDiff).toBeGreaterThanOrEqual(0);
  });

  it("behaviour log-probs recorded while sampling equal the learner path's (1e-4)", async () => {
    const options = { temperature: 0.8, topP: 0.9, maxNewTokens: 12, seed: 3 };
    const result = await policy.sample(prompts, options);
    const answers = result.sequences.map((s) => s.tokens);
    const scored = policy.answerLogProbs({ prompts, answers }, { temperature: 0.8 });
    const learner = (await scored.logProbs.array()) as number[][];
    const mask = (await scored.mask.array()) as number[][];
    tf.dispose([scored.logProbs, scored.mask]);
    result.sequences.forEach((s, b) => {
      expect(s.tokens.length).toBeGreaterThan(0);
      expect(mask[b]!.reduce((a, m) => a + m, 0)).toBe(s.tokens.length);
      s.logProbs.forEach((lp, j) => {
        expect(lp).toBeLessThanOrEqual(0);
        expect(Math.abs(lp - learner[b]![j]!)).toBeLessThan(1e-4);
      });
    });
  });
});

describe("sampling", () => {
  const policy = new DensePolicy(tiny());
  sharpen(policy);
  afterAll(() => policy.dispose());

  it("is reproducible from its seed, and a row does not depend on its batch mates", async () => {
    const options = { temperature: 1, maxNewTokens: 10, seed: 42 };
    const a = await policy.sample(prompts, options);
    const b = await policy.sample(prompts, options);
    const alone = await policy.sample([prompts[0]!], options);
    const other = await policy.sample(prompts, { ...options, seed: 43 });
    expect(a.sequences.map((s) => [...s.tokens])).toEqual(b.sequences.map((s) => [...s.tokens]));
    expect([...alone.sequences[0]!.tokens]).toEqual([...a.sequences[0]!.tokens]);
    expect(other.sequences.map((s) => [...s.tokens])).not.toEqual(a.sequences.map((s) => [...s.tokens]));
    expect(a.timings.generatedTokens).toBe(a.sequences.reduce((n, s) => n + s.tokens.length, 0));
    expect(a.timings.totalMs).toBeGreaterThanOrEqual(a.timings.prefillMs);
  });

  it("with row seeds, a row's tokens follow its own seed wherever it sits in the batch", async () => {
    const options = { temperature: 1, maxNewTokens: 10, seed: 0 };
    const [p, q] = [prompts[0]!, prompts[1]!];
    const pair = await policy.sample([p, q], { ...options, rowSeeds: [7, 8] });
    const swapped = await policy.sample([q, p], { ...options, rowSeeds: [8, 7] });
    const alone = await policy.sample([p], { ...options, rowSeeds: [7] });
    expect([...swapped.sequences[1]!.tokens]).toEqual([...pair.sequences[0]!.tokens]);
    expect([...alone.sequences[0]!.tokens]).toEqual([...pair.sequences[0]!.tokens]);
    await expect(policy.sample([p, q], { ...options, rowSeeds: [7] })).rejects.toThrow(/1 row seeds for 2 prompts/);
  });

  it("stops at a stop token (kept) or at the token budget", async () => {
    const result = await policy.sample(prompts, { maxNewTokens: 30, seed: 1, stopTokens: [5, 6, 7, 8, 9, 10] });
    for (const s of result.sequences) {
      const last = s.tokens[s.tokens.length - 1]!;
      if (s.finishReason === "stop") expect(last).toBeGreaterThanOrEqual(5);
      else expect(s.tokens.length).toBe(30);
      expect([...s.tokens.subarray(0, -1)].every((t) => t < 5 || t > 10)).toBe(true);
    }
    const capped = await policy.sample(prompts, { maxNewTokens: 3, seed: 1, stopTokens: [] });
    expect(capped.sequences.every((s) => s.tokens.length === 3 && s.finishReason === "length")).toBe(true);
  });

  it("greedy-like low temperature with top-p picks the mode", async () => {
    const result = await policy.sample([prompts[0]!], { temperature: 1e-3, topP: 0.5, maxNewTokens: 1, seed: 9 });
    const logits = policy.forward({ tokens: prompts[0]!, batchSize: 1, length: 4, promptLengths: Int32Array.of(4) });
    const mode = tf.tidy(() => logits.slice([0, 3, 0], [1, 1, 40]).reshape([40]).argMax().dataSync()[0]);
    logits.dispose();
    expect(result.sequences[0]!.tokens[0]).toBe(mode);
  });

  it("rejects bad input with a clear error", async () => {
    await expect(policy.sample([Int32Array.of()], { maxNewTokens: 2, seed: 0 })).rejects.toThrow(/at least one token/);
    await expect(policy.sample([Int32Array.of(1, 99)], { maxNewTokens: 2, seed: 0 })).rejects.toThrow(/token id 99/);
    await expect(policy.sample(prompts, { maxNewTokens: 2, seed: 0, temperature: 0 })).rejects.toThrow(/temperature/);
    expect(() => policy.answerLogProbs({ prompts, answers: [] })).toThrow(/3 prompts but 0 answers/);
    expect(() => new DensePolicy(tiny({ nHeads: 5 }))).toThrow(/nHeads \(5\) must divide dModel \(32\)/);
  });
});

describe("weights", () => {
  it("export → import is exact, and a mismatched model is refused naming the tensor", async () => {
    const source = new DensePolicy(tiny({ initSeed: 1 }));
    const target = new DensePolicy(tiny({ initSeed: 2 }));
    const bytes = await source.exportWeights();
    await target.importWeights(bytes);
    source.trainableVariables.forEach((v, i) => {
      expect(target.trainableVariables[i]!.dataSync()).toEqual(v.dataSync());
    });
    expect(source.parameterCount()).toBe(target.parameterCount());
    const wider = new DensePolicy(tiny({ dFF: 96 }));
    await expect(wider.importWeights(bytes, "policy.bin")).rejects.toThrow(
      /policy\.bin: "layer0\/w1" has shape \[32,64\], the model needs \[32,96\]/,
    );
    await expect(target.importWeights(bytes.subarray(0, bytes.length - 10), "cut.bin")).rejects.toThrow(
      /cut\.bin: data is .* bytes.*truncated or corrupted/,
    );
    for (const p of [source, target, wider]) p.dispose();
  });

  it("same config and seed build the same weights", async () => {
    const a = new DensePolicy(tiny());
    const b = new DensePolicy(tiny());
    expect(await a.exportWeights()).toEqual(await b.exportWeights());
    a.dispose();
    b.dispose();
  });
});

describe("tokenModalities", () => {
  it("marks prompt, reasoning (think tags included) and answer tokens", () => {
    const tokens = [1, 9, 9, 3, 20, 21, 4, 30, 31, 2];
    expect([...tokenModalities(tokens, 3, special)]).toEqual([
      Modality.prompt,
      Modality.prompt,
      Modality.prompt,
      Modality.reasoning,
      Modality.reasoning,
      Modality.reasoning,
      Modality.reasoning,
      Modality.answer,
      Modality.answer,
      Modality.answer,
    ]);
  });
});

describe("ropeTables", () => {
  it("gives cos(p·base^(−2j/d)) and sin for any positions, before and after its row cache grows", () => {
    const dh = 8;
    const base = 10_000;
    // 0 and 5 fill the first cache; 700 is past it and makes it grow.
    const positions = Int32Array.of(5, 0, 700, 5);
    const frame = { batchSize: 1, length: positions.length, positions, bias: tf.scalar(0) };
    const { cos, sin } = ropeTables(frame, dh, base);
    const cosValues = cos.dataSync();
    const sinValues = sin.dataSync();
    expect(cos.shape).toEqual([1, 4, 1, dh]);
    for (const [i, p] of positions.entries()) {
      for (let j = 0; j < dh; j++) {
        const angle = p * base ** (-(2 * (j % (dh / 2))) / dh);
        expect(cosValues[i * dh + j]).toBeCloseTo(Math.cos(angle), 6);
        expect(sinValues[i * dh + j]).toBeCloseTo(Math.sin(angle), 6);
      }
    }
    tf.dispose([cos, sin, frame.bias]);
  });
});
