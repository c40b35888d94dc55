import * as tf from "@tensorflow/tfjs";
import { beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "./backend.ts";
import { targetLogProbs } from "./dense.ts";

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("targetLogProbs", () => {
  it("equals gathering from tf.logSoftmax, in value and gradient", () => {
    const x = tf.tensor2d([
      [1, 2, 3, 4],
      [10, -5, 0, 2],
      [0.5, 0.5, 0.5, 0.5],
    ]);
    const targets = Int32Array.of(2, 0, 3);
    const weights = tf.tensor1d([0.3, -1.2, 2]); // a non-uniform upstream gradient
    const reference = (input: tf.Tensor) =>
      tf.sum(
        tf.mul(tf.gather(tf.logSoftmax(input as tf.Tensor2D).reshape([-1]), tf.tensor1d([2, 4, 11], "int32")), weights),
      );
    const fast = (input: tf.Tensor) => tf.sum(tf.mul(targetLogProbs(input as tf.Tensor2D, targets), weights));
    // Worked example, row 0: log softmax([1,2,3,4])[2] = 3 − log(e¹+e²+e³+e⁴) = −1.4401897
    expect(targetLogProbs(x, targets).arraySync()[0]).toBeCloseTo(-1.4401897, 5);
    expect(fast(x).arraySync()).toBeCloseTo(reference(x).arraySync() as number, 5);
    const fastGrad = tf.grad(fast)(x).arraySync() as number[][];
    const referenceGrad = tf.grad(reference)(x).arraySync() as number[][];
    fastGrad.forEach((row, r) => {
      for (const [c, g] of row.entries()) expect(g).toBeCloseTo(referenceGrad[r]![c]!, 5);
    });
    expect(() => targetLogProbs(x, Int32Array.of(1))).toThrow(/1 targets for 3 rows/);
  });
});
