import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "../backend.ts";
import type { SampleResult, SamplingOptions } from "../policy.ts";
import { type BltConfig, BltPolicy, bltConfig } from "./model.ts";
import { BYTE_OFFSET, encodeBytes, PAD } from "./tokens.ts";

/** Small, but every part is exercised: 2 encoder layers, a window shorter than the sequences, 2 global layers. */
const shape = (patching: BltConfig["patching"], window = 8): BltConfig =>
  bltConfig({
    maxSeqLen: 128,
    initSeed: 5,
    local: { dModel: 32, heads: 2, dFF: 64, encoderLayers: 2, decoderLayers: 1, window },
    global: { dModel: 64, heads: 2, dFF: 128, layers: 2 },
    hash: { ngrams: [3, 4, 5, 6, 7, 8], buckets: 512, functions: 2 },
    keysPerPatch: 2,
    entropyModel: { dModel: 16, layers: 1, heads: 2, dFF: 32 },
    patching,
  });

const text = "Ilo Vam lives in Dareth. Ilo Vam works for Kestrel Guild. Who is Mafe?";
/** Prompts of 1, 5, 18 and 31 tokens in one batch. */
const prompts = [
  Int32Array.of(1),
  encodeBytes("Ilo ", { bos: true }),
  encodeBytes("Mafe is a sculpture", { bos: true }),
];
prompts.push(encodeBytes("Ilo Vam works for Kestrel Guil", { bos: true }));
/** Every tenth byte stops a row: rows finish at different steps. */
const STOPS = Array.from({ length: 26 }, (_, i) => BYTE_OFFSET + 10 * i);

/** Larger weights than the init, so logits and entropies vary and differences show. */
function sharpen(variables: readonly tf.Variable[], factor: number) {
  for (const v of variables) v.assign(tf.tidy(() => tf.mul(v, factor)));
}

/** A policy whose entropy model is sharpened, so entropy patches come in mixed lengths. */
function makePolicy(patching: BltConfig["patching"], window?: number): BltPolicy {
  const policy = new BltPolicy(shape(patching, window));
  sharpen(policy.entropyModel.trainableVariables, 6);
  sharpen(policy.trainableVariables, 3);
  return policy;
}

/** Midway between the entropies at quantile q of `text` and the next one up: no entropy sits on it. */
function entropyQuantile(q: number): number {
  const probe = makePolicy({ mode: "entropy", threshold: 0 });
  const tokens = encodeBytes(text, { bos: true });
  const sorted = Array.from(probe.entropies(tokens, 1, tokens.length)).sort((a, b) => a - b);
  probe.dispose();
  const i = Math.floor(q * (sorted.length - 1));
  return (sorted[i]! + sorted[i + 1]!) / 2;
}

beforeAll(async () => {
  await initBackend({ backend: "auto", measure: false, logger: { info: () => {} } });
});

describe("BLT KV-cached sampling", () => {
  const median = entropyQuantile(0.5);
  const modes: [string, BltConfig["patching"]][] = [
    ["entropy (global threshold)", { mode: "entropy", threshold: median }],
    ["entropy, monotonic, max length 4", { mode: "entropy", threshold: 0.05, monotonic: true, maxPatchLength: 4 }],
    ["entropy, global + monotonic", { mode: "entropy", threshold: entropyQuantile(0.3), thresholdAdd: 0.01 }],
    ["space, max length 6", { mode: "space", maxPatchLength: 6 }],
    ["static, 3 bytes", { mode: "static", patchSize: 3 }],
  ];
  const settings: [string, SamplingOptions][] = [
    ["seed 1, temperature 1", { seed: 1, temperature: 1, maxNewTokens: 40 }],
    ["seed 2, temperature 0.7, top-p 0.9", { seed: 2, temperature: 0.7, topP: 0.9, maxNewTokens: 40 }],
    [
      "seed 3, temperature 1.3, top-p 0.95, a tenth of the bytes stop",
      { seed: 3, temperature: 1.3, topP: 0.95, maxNewTokens: 40, stopTokens: STOPS },
    ],
  ];

  describe.each(modes)("patching: %s", (_name, patching) => {
    const policy = makePolicy(patching);
    afterAll(() => policy.dispose());

    it.each(settings)(
      "%s: the recompute path's bytes and log-probs (≤ 1e-4), and the learner's log-probs of them",
      async (_setting, options) => {
        const tensors = tf.memory().numTensors;
        const cached = await policy.sample(prompts, options);
        expect(tf.memory().numTensors).toBe(tensors); // the session leaves no tensor behind
        const recomputed = await policy.sampleWithoutCache(prompts, options);
        expect(cached.sequences.map((s) => Array.from(s.tokens))).toEqual(
          recomputed.sequences.map((s) => Array.from(s.tokens)),
        );
        expect(cached.sequences.map((s) => s.finishReason)).toEqual(recomputed.sequences.map((s) => s.finishReason));
        expect(
          maxLogProbDiff(
            cached,
            recomputed.sequences.map((s) => Array.from(s.logProbs)),
          ),
        ).toBeLessThan(1e-4);

        const scored = policy.answerLogProbs(
          { prompts, answers: cached.sequences.map((s) => s.tokens) },
          { temperature: options.temperature },
        );
        const learner = (await scored.logProbs.array()) as number[][];
        tf.dispose([scored.logProbs, scored.mask]);
        expect(maxLogProbDiff(cached, learner)).toBeLessThan(1e-4);

        // The comparison covers multi-byte patches, and with a stop token rows that finish early
        // (and are fed padding) next to rows that go on.
        const full = Int32Array.from([...prompts[3]!, ...cached.sequences[3]!.tokens]);
        expect(Math.max(...policy.patchLengths(full))).toBeGreaterThan(1);
        if (options.stopTokens) {
          const lengths = cached.sequences.map((s) => s.tokens.length);
          expect(cached.sequences.some((s) => s.finishReason === "stop")).toBe(true);
          expect(Math.min(...lengths)).toBeLessThan(Math.max(...lengths));
        }
      },
    );

    it("step by step over forced bytes, the session's logits are nextByteLogits' (≤ 1e-4), padding rows included", async () => {
      const session = await policy.beginDecode(prompts);
      const rows = prompts.map((p) => Array.from(p));
      const source = encodeBytes(text);
      let worst = 0;
      try {
        for (let step = 0; step < 45; step++) {
          const expected = policy.nextByteLogits(rows.map((r) => Int32Array.from(r)));
          for (let i = 0; i < expected.length; i++)
            worst = Math.max(worst, Math.abs(expected[i]! - session.logits[i]!));
          // row 1 "finishes" after 10 steps and gets padding, as the sampling loop feeds it
          const next = Int32Array.from(rows, (_, b) =>
            b === 1 && step >= 10 ? PAD : source[(step * (b + 1) + b) % source.length]!,
          );
          next.forEach((t, b) => {
            rows[b]!.push(t);
          });
          await session.advance(next);
        }
      } finally {
        session.dispose();
      }
      expect(worst).toBeLessThan(1e-4);
    });
  });

  const edges: [string, number, BltConfig["patching"]][] = [
    [
      "a 1-byte local window (nothing cached), every byte its own patch (the global cache outgrows its first buffers)",
      1,
      { mode: "static", patchSize: 1 },
    ],
    ["a 2-byte local window (one cached byte)", 2, { mode: "entropy", threshold: median, maxPatchLength: 3 }],
  ];
  it.each(edges)("%s: the recompute path's bytes and log-probs", async (_name, window, patching) => {
    const policy = makePolicy(patching, window);
    const options = { seed: 4, temperature: 0.8, maxNewTokens: 40 };
    const cached = await policy.sample(prompts, options);
    const recomputed = await policy.sampleWithoutCache(prompts, options);
    expect(cached.sequences.map((s) => Array.from(s.tokens))).toEqual(
      recomputed.sequences.map((s) => Array.from(s.tokens)),
    );
    expect(
      maxLogProbDiff(
        cached,
        recomputed.sequences.map((s) => Array.from(s.logProbs)),
      ),
    ).toBeLessThan(1e-4);
    policy.dispose();
  });

  it("refuses bad prompts before touching any state", async () => {
    const policy = makePolicy({ mode: "space" });
    await expect(policy.beginDecode([Int32Array.of(1), new Int32Array(0)])).rejects.toThrow(/at least one token/);
    await expect(policy.beginDecode([Int32Array.of(1, 999)])).rejects.toThrow(/999 outside/);
    await expect(policy.beginDecode([])).rejects.toThrow(/no prompts/);
    policy.dispose();
  });
});

/** Largest |difference| between each sequence's recorded log-probs and `other[b][t]`. */
function maxLogProbDiff(result: SampleResult, other: readonly (readonly number[])[]): number {
  let worst = 0;
  result.sequences.forEach((s, b) => {
    s.logProbs.forEach((lp, t) => {
      worst = Math.max(worst, Math.abs(lp - other[b]![t]!));
    });
  });
  return worst;
}
