/**
 * Text embeddings from any policy: the mean of its final hidden states over a sequence's tokens,
 * L2-normalised — written once over `Policy.hiddenStates`, so dense, MoT, BLT and imported Hugging
 * Face models embed alike. CiT's curator compares prompts to metadata with them (cosine = dot).
 */
import * as tf from "@tensorflow/tfjs";
import type { Policy } from "./policy.ts";
import type { TextFormat } from "./prompt-format.ts";

/** Sequences per forward pass: bounds the activations' memory, not the result. */
const EMBED_BATCH = 32;

/**
 * One unit vector per sequence (each cut to the policy's `maxSeqLen`): the mean of its hidden states
 * over its own tokens, divided by its norm (a zero mean stays zero). Sequences are right-padded per
 * batch; a causal policy's states before the padding do not see it, so the result does not depend on
 * which others share the batch.
 */
export function embedSequences(policy: Policy, sequences: readonly Int32Array[]): Float32Array[] {
  const { maxSeqLen, specialTokens } = policy.config;
  const out: Float32Array[] = [];
  for (let start = 0; start < sequences.length; start += EMBED_BATCH) {
    const rows = sequences.slice(start, start + EMBED_BATCH).map((s) => s.subarray(0, maxSeqLen));
    const empty = rows.findIndex((row) => row.length === 0);
    if (empty >= 0) throw new Error(`embedSequences: sequence ${start + empty} is empty`);
    const length = Math.max(...rows.map((row) => row.length));
    const tokens = new Int32Array(rows.length * length).fill(specialTokens.pad);
    const mask = new Float32Array(rows.length * length);
    rows.forEach((row, b) => {
      tokens.set(row, b * length);
      mask.fill(1, b * length, b * length + row.length);
    });
    const pooled = tf.tidy(() => {
      const hidden = policy.hiddenStates({
        tokens,
        batchSize: rows.length,
        length,
        promptLengths: Int32Array.from(rows, (row) => row.length),
      });
      const weights = tf.tensor3d(mask, [rows.length, length, 1]);
      const mean = tf.div(tf.sum(tf.mul(hidden, weights), 1), tf.sum(weights, 1));
      const norm = tf.maximum(tf.norm(mean, "euclidean", 1, true), 1e-12);
      return tf.div(mean, norm) as tf.Tensor2D;
    });
    const values = pooled.dataSync() as Float32Array;
    const width = pooled.shape[1];
    pooled.dispose();
    for (let b = 0; b < rows.length; b++) out.push(values.slice(b * width, (b + 1) * width));
  }
  return out;
}

/** `embedSequences` of texts read as prompts through the policy's own text format (its tokenizer). */
export const embedTexts = (policy: Policy, format: TextFormat, texts: readonly string[]): Float32Array[] =>
  embedSequences(
    policy,
    texts.map((text) => format.promptTokens(text)),
  );
