import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCorpus, generateWorld, worldVocabulary } from "../../envs/index.ts";
import { initBackend } from "../backend.ts";
import { DensePolicy } from "../dense.ts";
import { mulberry32 } from "../random.ts";
import { buildPolicy } from "../registry.ts";
import { type BltConfig, BltPolicy, bltConfig, bltConfigForShape, validateBltConfig } from "./model.ts";
import { bltCodec, decodeBytes, EOS, encodeBytes, isValidUtf8, tokensToBytes } from "./tokens.ts";
import { bitsPerByte, prepareEntropyPatching, sampleWindows, trainOnBytes } from "./train.ts";

const tiny = (overrides: Partial<BltConfig> = {}): BltConfig =>
  bltConfig({
    maxSeqLen: 96,
    initSeed: 3,
    local: { dModel: 32, heads: 2, dFF: 64, encoderLayers: 1, decoderLayers: 1, window: 16 },
    global: { dModel: 64, heads: 2, dFF: 128, layers: 1 },
    hash: { ngrams: [3, 4, 5, 6, 7, 8], buckets: 512, functions: 2 },
    entropyModel: { dModel: 16, layers: 1, heads: 2, dFF: 32 },
    ...overrides,
  });
const silent = { info: () => {} };
const text = "Ilo Vam lives in Dareth. Ilo Vam works for Kestrel Guild.";

beforeAll(async () => {
  await initBackend({ backend: "auto", measure: false, logger: silent });
});

/** Larger weights than the init, so logits and entropies vary and differences show. */
function sharpen(variables: readonly tf.Variable[], factor: number) {
  for (const v of variables) v.assign(tf.tidy(() => tf.mul(v, factor)));
}

/** A threshold at the median entropy of `tokens`, so entropy patching cuts patches of mixed lengths. */
function medianThreshold(policy: BltPolicy, tokens: Int32Array): number {
  const sorted = Array.from(policy.entropies(tokens, 1, tokens.length)).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe("BLT policy", () => {
  const probe = new BltPolicy(tiny());
  sharpen(probe.entropyModel.trainableVariables, 6);
  const tokens = encodeBytes(text, { bos: true });
  const threshold = medianThreshold(probe, tokens);
  probe.dispose();
  const modes: [string, BltConfig["patching"]][] = [
    ["entropy", { mode: "entropy", threshold }],
    ["entropy, monotonic + max length", { mode: "entropy", threshold: 0.05, monotonic: true, maxPatchLength: 5 }],
    ["space", { mode: "space" }],
    ["static", { mode: "static", patchSize: 4 }],
  ];

  describe.each(modes)("patching: %s", (_name, patching) => {
    const policy = new BltPolicy(tiny({ patching }));
    sharpen(policy.entropyModel.trainableVariables, 6);
    sharpen(policy.trainableVariables, 3);
    afterAll(() => policy.dispose());

    it("cuts mixed patch lengths, and a prefix's patches are the full sequence's (patching is causal)", () => {
      const full = policy.patchLengths(tokens);
      expect(full.reduce((a, b) => a + b, 0)).toBe(tokens.length + 1);
      expect(new Set(full).size).toBeGreaterThan(1);
      for (const cut of [5, 17, 30, tokens.length - 1]) {
        const prefix = policy.patchLengths(tokens.subarray(0, cut));
        // every patch of the prefix but its last (open) one is a patch of the full sequence
        expect(prefix.slice(0, -1)).toEqual(full.slice(0, prefix.length - 1));
      }
    });

    it("no position sees the future: changing bytes from j on leaves the logits before j unchanged", async () => {
      const j = 23;
      const changed = tokens.slice();
      for (let i = j; i < changed.length; i++) changed[i] = 4 + ((changed[i]! * 7 + i) % 96) + 32;
      const L = tokens.length;
      const both = new Int32Array(2 * L);
      both.set(tokens, 0);
      both.set(changed, L);
      const logits = policy.forward({ tokens: both, batchSize: 2, length: L, promptLengths: Int32Array.of(1, 1) });
      const values = await logits.data();
      logits.dispose();
      const V = policy.config.vocabSize;
      let before = 0;
      let after = 0;
      for (let i = 0; i < L; i++) {
        for (let v = 0; v < V; v++) {
          const diff = Math.abs(values[i * V + v]! - values[(L + i) * V + v]!);
          if (i < j) before = Math.max(before, diff);
          else after = Math.max(after, diff);
        }
      }
      expect(before).toBeLessThan(1e-4);
      expect(after).toBeGreaterThan(1e-2); // the change is visible where it may be
    });

    it("sampled log-probs equal the learner path's (1e-4); the same seed gives the same bytes", async () => {
      const prompts = [encodeBytes("Ilo Vam", { bos: true }), encodeBytes("Who is", { bos: true })];
      const options = { temperature: 0.9, topP: 0.95, maxNewTokens: 10, seed: 5 };
      const result = await policy.sample(prompts, options);
      const scored = policy.answerLogProbs(
        { prompts, answers: result.sequences.map((s) => s.tokens) },
        { temperature: 0.9 },
      );
      const learner = (await scored.logProbs.array()) as number[][];
      tf.dispose([scored.logProbs, scored.mask]);
      let maxDiff = 0;
      result.sequences.forEach((s, b) => {
        expect(s.tokens.length).toBeGreaterThan(0);
        s.logProbs.forEach((lp, t) => {
          maxDiff = Math.max(maxDiff, Math.abs(lp - learner[b]![t]!));
        });
      });
      expect(maxDiff).toBeLessThan(1e-4);
      const tensorsBefore = tf.memory().numTensors;
      const again = await policy.sample(prompts, options);
      expect(again.sequences.map((s) => Array.from(s.tokens))).toEqual(
        result.sequences.map((s) => Array.from(s.tokens)),
      );
      expect(tf.memory().numTensors).toBe(tensorsBefore); // sampling leaves no tensor behind
    });
  });

  it("weights round trip exactly, entropy model included; wrong weights are refused by name", async () => {
    const source = new BltPolicy(tiny({ patching: { mode: "entropy", threshold: 1 } }));
    sharpen(source.entropyModel.trainableVariables, 6);
    sharpen(source.trainableVariables, 3);
    source.calibrateEntropyThreshold([tokens], 3); // the calibrated threshold travels with the weights
    const target = new BltPolicy(tiny({ patching: { mode: "entropy", threshold: 1 }, initSeed: 99 }));
    const bytes = await source.exportWeights();
    await target.importWeights(bytes, "source.bin");
    expect(target.entropyThreshold).toBe(source.entropyThreshold);
    expect(target.patchLengths(tokens)).toEqual(source.patchLengths(tokens));
    const logits = (p: BltPolicy) => p.nextByteLogits([tokens]);
    expect(Array.from(logits(target))).toEqual(Array.from(logits(source)));
    const again = await target.exportWeights();
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);

    const dense = new DensePolicy({
      backbone: "dense",
      vocabSize: 260,
      maxSeqLen: 96,
      specialTokens: { pad: 3, bos: 1, eos: 2, thinkOpen: 0, thinkClose: 0 },
      initSeed: 1,
      dModel: 16,
      nLayers: 1,
      nHeads: 2,
      dFF: 32,
      positions: "rope",
    });
    await expect(target.importWeights(await dense.exportWeights(), "dense.bin")).rejects.toThrow(
      /dense\.bin.*byte_embedding/s,
    );
    expect(Array.from(logits(target))).toEqual(Array.from(logits(source))); // nothing was overwritten
    for (const p of [source, target, dense]) p.dispose();
  });

  it("the registry builds it; bad configs and inputs are refused with every problem named", async () => {
    const built = buildPolicy(tiny());
    expect(built).toBeInstanceOf(BltPolicy);
    built.dispose();
    expect(
      () => new BltPolicy({ ...tiny(), vocabSize: 300, keysPerPatch: 0, patching: { mode: "static", patchSize: 0 } }),
    ).toThrow(/vocabSize must be 260.*keysPerPatch.*patching\.patchSize/);
    const policy = new BltPolicy(tiny());
    expect(() => policy.answerLogProbs({ prompts: [Int32Array.of(1, 300)], answers: [Int32Array.of(5)] })).toThrow(
      /300 outside/,
    );
    await expect(policy.sample([new Int32Array(0)], { maxNewTokens: 3, seed: 1 })).rejects.toThrow(
      /at least one token/,
    );
    policy.dispose();
  });

  it("bytes codec and a config from a dense shape (the experiment's model section)", () => {
    const ids = bltCodec.encode("<think> ü </think>");
    expect(ids[0]).toBe("<".charCodeAt(0) + 4);
    expect(bltCodec.decode([1, ...ids, 2])).toBe("<think> ü </think>");
    const config = bltConfigForShape({ dModel: 128, nLayers: 2, nHeads: 4, dFF: 512, maxSeqLen: 256 }, 5);
    expect(config.global).toEqual({ dModel: 128, heads: 4, dFF: 512, layers: 2 });
    const built = buildPolicy(config);
    expect(built.config.vocabSize).toBe(260);
    built.dispose();
    // an odd width still gives a valid local stack
    expect(() =>
      validateBltConfig(bltConfigForShape({ dModel: 100, nLayers: 1, nHeads: 5, dFF: 64, maxSeqLen: 64 }, 1)),
    ).not.toThrow();
  });

  it("FLOPs per byte: the global part shrinks as 1/(mean patch length), the entropy model is counted", () => {
    const policy = new BltPolicy(tiny());
    const f = (l: number) => policy.flopsPerByte(64, l);
    // per-patch work / l, and the global attention span (64 / l patches) shrinks too: convex, decreasing
    expect(f(1) - f(2)).toBeGreaterThan(f(2) - f(4));
    expect(f(2) - f(4)).toBeGreaterThan(f(4) - f(8));
    expect(f(4) - f(8)).toBeGreaterThan(0);
    const spaced = new BltPolicy(tiny({ patching: { mode: "space" } }));
    expect(f(4) - spaced.flopsPerByte(64, 4)).toBe(policy.entropyModel.flopsPerToken(64));
    policy.dispose();
    spaced.dispose();
  });
});

describe("a tiny BLT on the FactWorld corpus", () => {
  const world = generateWorld({ size: "tiny" });
  const documents = generateCorpus(world, { documents: 300 }).map((d) => encodeBytes(d.text, { bos: true, eos: true }));
  const held = sampleWindows(documents, 24, 64, mulberry32(7));
  const shape = tiny({ entropyModel: { dModel: 32, layers: 1, heads: 2, dFF: 64 } });
  let policy: BltPolicy;
  afterAll(() => policy.dispose());

  it("entropy model, calibrated threshold, then BLT: patches average ≈ 2.5 bytes and bits per byte fall clearly", async () => {
    // The paper's order: train the byte LM, pick a threshold, then train BLT on those patches.
    policy = new BltPolicy(shape);
    const train = { steps: 80, batchSize: 16, windowLength: 64, learningRate: 4e-3, seed: 1, meanPatchLength: 2.5 };
    const threshold = await prepareEntropyPatching(policy, documents, train);
    expect(policy.entropyThreshold).toBe(threshold);
    const patches = held.flatMap((w) => policy.patchLengths(w));
    const meanPatch = patches.reduce((a, b) => a + b, 0) / patches.length;
    expect(meanPatch).toBeGreaterThan(2);
    expect(meanPatch).toBeLessThan(3);
    const before = bitsPerByte(policy, held);
    await trainOnBytes(policy, documents, { steps: 50, batchSize: 8, windowLength: 48, learningRate: 4e-3, seed: 2 });
    const after = bitsPerByte(policy, held);
    expect(before).toBeGreaterThan(7); // ≈ log2(260) at initialisation
    expect(after, `bits per byte ${before.toFixed(2)} → ${after.toFixed(2)}`).toBeLessThan(2);
  }, 300_000); // 130 training steps: ≈ 20 s on a quiet 2-core box, minutes on a loaded one

  it("samples valid UTF-8 made of the world's words", async () => {
    const prompts = documents.slice(0, 4).map((d) => d.subarray(0, 12));
    const result = await policy.sample(prompts, { temperature: 0.5, maxNewTokens: 40, seed: 3 });
    const vocabulary = new Set(worldVocabulary(world));
    let known = 0;
    let words = 0;
    result.sequences.forEach((s, b) => {
      const body = s.tokens.at(-1) === EOS ? s.tokens.subarray(0, -1) : s.tokens;
      expect(isValidUtf8(tokensToBytes(body))).toBe(true);
      // whole words only: drop the first (continues the prompt) and the last (may be cut off)
      const inner = decodeBytes([...prompts[b]!, ...body])
        .split(" ")
        .slice(1, -1);
      for (const w of inner) {
        words++;
        if (vocabulary.has(w.replace(/\.$/, ""))) known++;
      }
    });
    expect(words).toBeGreaterThan(8);
    expect(known / words).toBeGreaterThan(0.6);
  });
});
