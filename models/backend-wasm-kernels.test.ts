import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installWasmKernels, uninstallWasmKernels } from "./backend-wasm-kernels.ts";

beforeAll(async () => {
  await tf.setBackend("wasm");
});
afterAll(() => uninstallWasmKernels());

describe("shared-data Identity on wasm", () => {
  it("clones without copying, and either tensor outlives the other's disposal", () => {
    installWasmKernels();
    const before = tf.memory().numDataBuffers;
    const x = tf.tensor1d([1, 2, 3, 4]);
    const y = tf.clone(x);
    expect(tf.memory().numDataBuffers - before).toBe(1); // one buffer for both
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3, 4]);
    const z = tf.clone(y);
    y.dispose();
    expect(Array.from(z.dataSync())).toEqual([1, 2, 3, 4]);
    z.dispose();
    expect(tf.memory().numDataBuffers).toBe(before);
  });

  it("keeps string tensors on the original kernel", () => {
    installWasmKernels();
    const s = tf.tensor1d(["a", "bc"], "string");
    const c = tf.clone(s);
    s.dispose();
    expect(c.dataSync()).toEqual(["a", "bc"]);
    c.dispose();
  });

  it("training gives the same losses and gradients as with the copying kernel, without leaking", () => {
    const run = () => {
      const w = tf.variable(tf.randomNormal([8, 8], 0, 0.5, "float32", 1));
      const x = tf.randomNormal([16, 8], 0, 1, "float32", 2);
      const optimizer = tf.train.adam(0.05);
      const losses: number[] = [];
      const start = tf.memory().numTensors;
      for (let step = 0; step < 5; step++) {
        const loss = optimizer.minimize(() => tf.mean(tf.square(tf.sub(tf.tanh(tf.matMul(x, w)), 0.5))), true, [w]);
        losses.push(loss?.dataSync()[0] as number);
        loss?.dispose();
      }
      const leaked = tf.memory().numTensors - start;
      optimizer.dispose();
      tf.dispose([w, x]);
      return { losses, leaked };
    };
    uninstallWasmKernels();
    const copying = run();
    installWasmKernels();
    const shared = run();
    expect(shared.losses).toEqual(copying.losses);
    expect(shared.leaked).toBe(copying.leaked);
    expect(shared.losses[4]).toBeLessThan(shared.losses[0] as number);
  });
});
