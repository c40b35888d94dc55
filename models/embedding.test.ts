import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "./backend.ts";
import { encodeBytes } from "./blt/tokens.ts";
import { embedSequences } from "./embedding.ts";
import { tinyBltConfig, tinyShape } from "./fixtures/tiny-models.ts";
import type { Policy } from "./policy.ts";
import { buildPolicy } from "./registry.ts";

const shape = tinyShape({ maxSeqLen: 24, initSeed: 5, dModel: 16, nHeads: 2, dFF: 32 });
const wordRows = [Int32Array.of(1, 9, 12, 30), Int32Array.of(1, 17, 5, 6, 7, 8, 21, 22, 23), Int32Array.of(1, 17)];
const byteRows = ["Ilo Vam", "Ilo Vam works for Kestrel Guild.", "Dareth"].map((t) => encodeBytes(t));

const policies: [string, () => Policy, readonly Int32Array[]][] = [
  ["dense", () => buildPolicy({ backbone: "dense", ...shape }), wordRows],
  ["mot", () => buildPolicy({ backbone: "mot", ...shape }), wordRows],
  ["blt", () => buildPolicy(tinyBltConfig({ dModel: 16, dFF: 32, window: 8, buckets: 64 })), byteRows],
];

/** The definition, by hand: one row alone, mean over its positions, divided by the norm. */
function byHand(policy: Policy, row: Int32Array): number[] {
  const hidden = policy.hiddenStates({
    tokens: row,
    batchSize: 1,
    length: row.length,
    promptLengths: Int32Array.of(row.length),
  });
  const states = hidden.arraySync()[0]!;
  hidden.dispose();
  const mean = states[0]!.map((_, j) => states.reduce((sum, s) => sum + s[j]!, 0) / states.length);
  const norm = Math.hypot(...mean);
  return mean.map((v) => v / norm);
}

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe.each(policies)("embedSequences (%s)", (_name, make, rows) => {
  it("is the L2-normalised mean of the row's own final hidden states, whatever else shares its batch", () => {
    const policy = make();
    const before = tf.memory().numTensors;
    const together = embedSequences(policy, rows);
    expect(tf.memory().numTensors).toBe(before);
    expect(together).toHaveLength(rows.length);
    rows.forEach((row, i) => {
      const expected = byHand(policy, row);
      expect(Math.hypot(...together[i]!)).toBeCloseTo(1, 5);
      // Batched with longer rows (right-padded) or alone: the same vector.
      const largest = Math.max(...expected.map((v, j) => Math.abs(v - together[i]![j]!)));
      expect(largest).toBeLessThan(1e-4);
    });
    // Different texts point different ways (the check could fail for a constant embedding).
    const cosine = together[0]!.reduce((sum, v, j) => sum + v * together[1]![j]!, 0);
    expect(cosine).toBeLessThan(0.9999);
    policy.dispose();
  });

  it("refuses an empty sequence, naming it", () => {
    const policy = make();
    expect(() => embedSequences(policy, [rows[0]!, new Int32Array(0)])).toThrow(/sequence 1 is empty/);
    policy.dispose();
  });
});
