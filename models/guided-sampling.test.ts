/**
 * CFG and CD-K in the shared KV-cached sampling loop, for every backbone: the recorded behaviour
 * log-probs are those of the guided distribution built from two *uncached* forward passes (the
 * expert's prompt and the amateur's, each followed by the answer so far), and the recorded policy
 * log-probs are the learner's own (`answerLogProbs` under the expert's prompt).
 */
import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "./backend.ts";
import type { Decoding, GuidedDecoding } from "./decoding.ts";
import type { DenseConfig } from "./dense.ts";
import { tinyBltConfig, tinyShape } from "./fixtures/tiny-models.ts";
import type { MotConfig } from "./mot/mot.ts";
import type { Policy, SamplingOptions } from "./policy.ts";
import { buildPolicy } from "./registry.ts";
import { decodingLogProbs } from "./sampling.ts";

const backbones: [string, () => Policy][] = [
  ["dense", () => buildPolicy({ backbone: "dense", ...tinyShape() } satisfies DenseConfig)],
  ["mot", () => buildPolicy({ backbone: "mot", ...tinyShape() } satisfies MotConfig)],
  ["blt", () => buildPolicy(tinyBltConfig({ dModel: 32, dFF: 64, window: 16, buckets: 128 }, { mode: "space" }))],
];
// Expert prompts carry "evidence" (extra tokens) before the question; the amateur's is the question alone.
const amateur = [Int32Array.of(1, 9, 12, 30), Int32Array.of(1, 17), Int32Array.of(1, 5, 6, 7)];
const expert = [Int32Array.of(1, 33, 34, 35, 9, 12, 30), Int32Array.of(1, 21, 17), Int32Array.of(1, 38, 5, 6, 7)];
const silent = { info: () => {} };

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: silent });
});

/** Larger weights than the init, so the two streams' logits differ visibly. */
function sharpen(policy: Policy) {
  for (const v of policy.trainableVariables) v.assign(tf.tidy(() => tf.mul(v, 4)));
}

/** The next-token logits after `tokens`, by a full forward pass (no cache). */
function nextLogits(policy: Policy, tokens: Int32Array, promptLength: number): Float32Array {
  const logits = policy.forward({
    tokens,
    batchSize: 1,
    length: tokens.length,
    promptLengths: Int32Array.of(promptLength),
  });
  const V = policy.config.vocabSize;
  const all = logits.dataSync() as Float32Array;
  logits.dispose();
  return all.slice((tokens.length - 1) * V, tokens.length * V);
}

const options = (decoding: Decoding): SamplingOptions => ({
  temperature: 0.9,
  maxNewTokens: 6,
  seed: 11,
  stopTokens: [],
  ...(decoding.kind === "plain" ? {} : { guidance: { decoding, unconditioned: amateur } }),
});

describe.each(backbones)("guided sampling, %s", (_, build) => {
  const guided: GuidedDecoding[] = [
    { kind: "cfg", scale: 2.5 },
    { kind: "cd-k", alpha: 0.2, k: 3 },
  ];

  it.each(guided)(
    "$kind: behaviour log-probs are the guided distribution's, from two uncached streams",
    async (decoding) => {
      const policy = build();
      sharpen(policy);
      const V = policy.config.vocabSize;
      const { sequences } = await policy.sample(expert, options(decoding));
      let differs = 0;
      for (const [b, sequence] of sequences.entries()) {
        expect(sequence.tokens.length).toBe(6);
        for (let t = 0; t < sequence.tokens.length; t++) {
          const answer = sequence.tokens.subarray(0, t);
          const cond = nextLogits(policy, Int32Array.from([...expert[b]!, ...answer]), expert[b]!.length);
          const uncond = nextLogits(policy, Int32Array.from([...amateur[b]!, ...answer]), amateur[b]!.length);
          const mu = decodingLogProbs(decoding, cond, uncond, 0.9);
          const token = sequence.tokens[t]!;
          expect(Number.isFinite(mu[token]!)).toBe(true); // CD-K never draws outside its head
          expect(sequence.logProbs[t]!).toBeCloseTo(mu[token]!, 3);
          if (Math.abs(sequence.logProbs[t]! - sequence.policyLogProbs![t]!) > 1e-3) differs++;
        }
        expect(V).toBe(policy.config.vocabSize);
      }
      // Guidance changed the distribution: μ is not π for most tokens.
      expect(differs).toBeGreaterThan(6);
      // The policy log-probs are the learner's, under the expert's prompt.
      const learner = tf.tidy(
        () =>
          policy.answerLogProbs({ prompts: expert, answers: sequences.map((s) => s.tokens) }, { temperature: 0.9 })
            .logProbs,
      );
      const rows = (await learner.array()) as number[][];
      learner.dispose();
      for (const [b, sequence] of sequences.entries())
        for (let t = 0; t < sequence.tokens.length; t++)
          expect(sequence.policyLogProbs![t]!).toBeCloseTo(rows[b]![t]!, 3);
      policy.dispose();
    },
  );

  it("cfg with scale 1 is plain sampling of the expert's prompt, token for token", async () => {
    const policy = build();
    sharpen(policy);
    const plain = await policy.sample(expert, options({ kind: "plain" }));
    const cfg = await policy.sample(expert, options({ kind: "cfg", scale: 1 }));
    for (const [b, sequence] of cfg.sequences.entries()) {
      expect(Array.from(sequence.tokens)).toEqual(Array.from(plain.sequences[b]!.tokens));
      expect(sequence.logProbs).toEqual(sequence.policyLogProbs);
      expect(plain.sequences[b]!.policyLogProbs).toBeUndefined();
    }
    policy.dispose();
  });
});

describe("guided sampling refuses bad parameters", () => {
  it("names the parameter: alpha outside (0, 1], k above the vocabulary, a non-finite scale, a missing amateur", async () => {
    const policy = buildPolicy({ backbone: "dense", ...tinyShape() } satisfies DenseConfig);
    const bad: [GuidedDecoding, RegExp][] = [
      [{ kind: "cd-k", alpha: 0, k: 1 }, /decoding\.alpha must be in \(0, 1\], got 0/],
      [{ kind: "cd-k", alpha: 1.5, k: 1 }, /decoding\.alpha/],
      [
        { kind: "cd-k", alpha: 0.1, k: 41 },
        /decoding\.k must be an integer from 1 to the policy's vocabulary size 40, got 41/,
      ],
      [{ kind: "cd-k", alpha: 0.1, k: 0 }, /decoding\.k/],
      [{ kind: "cfg", scale: Number.NaN }, /decoding\.scale must be a finite number, got NaN/],
    ];
    for (const [decoding, message] of bad)
      await expect(policy.sample(expert, options(decoding))).rejects.toThrow(message);
    await expect(
      policy.sample(expert, {
        ...options({ kind: "plain" }),
        guidance: { decoding: { kind: "cfg", scale: 2 }, unconditioned: [] },
      }),
    ).rejects.toThrow(/0 unconditioned prompts for 3 prompts/);
    policy.dispose();
  });
});
