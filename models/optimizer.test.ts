import * as tf from "@tensorflow/tfjs";
import { describe, expect, it } from "vitest";
import { createOptimizer, learningRateAt } from "./optimizer.ts";

describe("learning-rate schedule", () => {
  const s = { learningRate: 1, warmupSteps: 10, totalSteps: 110, clipNorm: 0 };
  it("warms up linearly, then decays along a cosine to 10 %", () => {
    expect(learningRateAt(0, s)).toBeCloseTo(0.1);
    expect(learningRateAt(9, s)).toBeCloseTo(1);
    expect(learningRateAt(10, s)).toBeCloseTo(1);
    expect(learningRateAt(60, s)).toBeCloseTo(0.1 + 0.9 * 0.5); // halfway: cos = 0
    expect(learningRateAt(110, s)).toBeCloseTo(0.1);
    expect(learningRateAt(500, s)).toBeCloseTo(0.1);
  });

  it("with decaySteps, a shorter run follows the longer schedule step for step", () => {
    const long = { ...s, totalSteps: 210 };
    const stoppedEarly = { ...s, totalSteps: 110, decaySteps: 210 };
    for (const step of [0, 9, 50, 109]) expect(learningRateAt(step, stoppedEarly)).toBe(learningRateAt(step, long));
  });
});

describe("Adam, one variable at a time", () => {
  const shapes = [[128, 64], [64], [128, 64], [64, 128], [128, 64]];
  const variablesFor = (prefix: string) =>
    shapes.map((shape, i) => tf.variable(tf.randomNormal(shape, 0, 1, "float32", 7 + i), true, `${prefix}${i}`));
  const gradientsFor = (step: number, variables: tf.Variable[]) =>
    variables.map((v, i) => ({ name: v.name, tensor: tf.randomNormal(v.shape, 0, 1, "float32", 100 * step + i + 1) }));
  const bits = (tensors: readonly tf.Tensor[]) => tensors.map((t) => Array.from(new Uint32Array(t.dataSync().buffer)));

  it("updates weights and moments bit-identically to tfjs's Adam, with a lower peak", async () => {
    const ours = createOptimizer({ learningRate: 1e-2, warmupSteps: 0, totalSteps: 10, clipNorm: 0 });
    const stock = tf.train.adam(1e-2, 0.9, 0.95, 1e-8);
    const a = variablesFor("adam-ours/");
    const b = variablesFor("adam-stock/");
    const peaks = { ours: 0, stock: 0 };
    const tensorsAfter: number[] = [];
    for (let step = 0; step < 3; step++) {
      const ga = gradientsFor(step, a);
      const gb = gradientsFor(step, b);
      // Bytes alive at the update's peak beyond what was alive before it (moments exist from step 1 on).
      const transient = async (update: () => void) => {
        const before = tf.memory().numBytes;
        return (await tf.profile(update)).peakBytes - before;
      };
      const [o, st] = [await transient(() => ours.applyGradients(ga)), await transient(() => stock.applyGradients(gb))];
      if (step > 0) peaks.ours = Math.max(peaks.ours, o);
      if (step > 0) peaks.stock = Math.max(peaks.stock, st);
      tf.dispose([...ga, ...gb].map((g) => g.tensor));
      tensorsAfter.push(tf.memory().numTensors);
    }
    // Moments are made at the first step; after that, an update leaves nothing behind.
    expect(tensorsAfter[2]).toBe(tensorsAfter[1]);
    expect(bits(a)).toEqual(bits(b));
    const stateOf = async (optimizer: tf.Optimizer) => (await optimizer.getWeights()).map((w) => w.tensor);
    expect(bits(await stateOf(ours))).toEqual(bits(await stateOf(stock)));
    expect(ours.iterations).toBe(3);
    // tfjs keeps every variable's temporaries until the end of the update; here, one variable's.
    expect(peaks.ours).toBeLessThan(peaks.stock / 2);
    tf.dispose([...a, ...b]);
  });
});
