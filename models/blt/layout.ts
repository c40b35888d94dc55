/**
 * Host-side layout of a BLT batch: which patch every byte belongs to, on the encoder side and on
 * the decoder side, as pooling weights and attention biases (reference: `patch_ids_from_lengths`,
 * `decoder_patch_ids_from_lengths`, `cross_attn_mask` in facebookresearch/blt
 * `bytelatent/model/blt.py`).
 *
 * Patch lengths include the next, unseen position (they sum to rowLength + 1) and the first patch
 * is the single BOS byte. Encoder patch k holds its bytes. Byte i *predicts* byte i + 1, so on the
 * decoder side byte i reads the global state of the patch *before* the one byte i + 1 falls in:
 * decoder patch id(i) = encoder patch id(i + 1) − 1. The global transformer therefore only needs
 * the first P − 1 patches of a row with P patches, and every one of those is complete.
 */
import { MASKED } from "./layers.ts";

export interface BatchLayout {
  readonly batchSize: number;
  /** Byte positions per row (padded). */
  readonly length: number;
  /** Global positions (patches fed to the global transformer) per row (padded). */
  readonly globalLength: number;
  /** Patch lengths of every row (summing to its length + 1). */
  readonly patchLengths: readonly number[][];
  /** [B, G, N]: 1/len over the bytes of patch g, for mean pooling. */
  readonly pool: Float32Array;
  /** [B, 1, G, N]: patch g attends to its own bytes. */
  readonly encoderBias: Float32Array;
  /** [B, 1, N, G·K]: byte i attends to the K key slots of its decoder patch. */
  readonly decoderBias: Float32Array;
}

/**
 * `rowLengths[b]` real bytes in row b (≥ 1) and that row's patch lengths; `keysPerPatch` = K.
 */
export function batchLayout(
  rowLengths: Int32Array,
  length: number,
  patchLengths: readonly number[][],
  keysPerPatch: number,
): BatchLayout {
  const B = rowLengths.length;
  const N = length;
  const K = keysPerPatch;
  const G = Math.max(1, ...patchLengths.map((p) => p.length - 1));
  const pool = new Float32Array(B * G * N);
  const encoderBias = new Float32Array(B * G * N).fill(MASKED);
  const decoderBias = new Float32Array(B * N * G * K).fill(MASKED);
  for (let b = 0; b < B; b++) {
    const n = rowLengths[b]!;
    const lengths = patchLengths[b]!;
    const total = lengths.reduce((a, l) => a + l, 0);
    if (total !== n + 1 || lengths[0] !== 1) {
      throw new Error(
        `BLT layout: row ${b} has ${n} bytes but patches [${lengths.join(", ")}] (need sum ${n + 1}, first 1)`,
      );
    }
    // encoder patch of every position 0 … n (n = the next, unseen byte)
    const patchOf = new Int32Array(n + 1);
    let position = 0;
    lengths.forEach((l, k) => {
      for (let j = 0; j < l; j++) patchOf[position++] = k;
    });
    for (let i = 0; i < n; i++) {
      const k = patchOf[i]!;
      if (k < G && k < lengths.length - 1) {
        pool[(b * G + k) * N + i] = 1 / lengths[k]!;
        encoderBias[(b * G + k) * N + i] = 0;
      }
      const decoderPatch = patchOf[i + 1]! - 1;
      for (let s = 0; s < K; s++) decoderBias[(b * N + i) * G * K + decoderPatch * K + s] = 0;
    }
    // Padding bytes read patch 0, so no softmax row is all-masked on the decoder side.
    for (let i = n; i < N; i++) for (let s = 0; s < K; s++) decoderBias[(b * N + i) * G * K + s] = 0;
  }
  return { batchSize: B, length: N, globalLength: G, patchLengths, pool, encoderBias, decoderBias };
}
