import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installWasmKernels, uninstallWasmKernels } from "./backend-wasm-kernels.ts";
import { registerWasmSegmentSum } from "./segment-sum-kernel.ts";

beforeAll(async () => {
  await tf.setBackend("wasm");
  registerWasmSegmentSum(); // the gradient of gather
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

  it("shares data in a cast to the same dtype, and still converts other casts", () => {
    installWasmKernels();
    const before = tf.memory().numDataBuffers;
    const x = tf.tensor1d([1.5, -2.5, 3]);
    const same = tf.cast(x, "float32");
    expect(tf.memory().numDataBuffers - before).toBe(1);
    x.dispose();
    expect(Array.from(same.dataSync())).toEqual([1.5, -2.5, 3]);
    const ints = tf.cast(same, "int32");
    expect(ints.dtype).toBe("int32");
    expect(Array.from(ints.dataSync())).toEqual([1, -2, 3]);
    tf.dispose([same, ints]);
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

describe("row-copy GatherV2 on wasm", () => {
  /** The same gather through the wasm backend's kernel and through ours. */
  function both(f: () => tf.Tensor) {
    uninstallWasmKernels();
    const reference = f();
    installWasmKernels();
    const ours = f();
    expect(ours.shape).toEqual(reference.shape);
    expect(ours.dtype).toBe(reference.dtype);
    if (ours.size > 0) {
      // Compared on the backend: element arrays of the 20 MB case would take seconds in expect.
      const mismatches = tf.tidy(() => tf.sum(tf.cast(tf.notEqual(ours, reference), "int32")));
      expect(mismatches.dataSync()[0]).toBe(0);
      expect(tf.tidy(() => tf.any(tf.notEqual(ours, 0))).dataSync()[0]).toBe(1); // not trivially all zeros
      mismatches.dispose();
    }
    tf.dispose([reference, ours]);
  }
  let table: tf.Tensor3D;
  beforeAll(() => {
    table = tf.tensor3d(
      Float32Array.from({ length: 5 * 6 * 9 }, (_, i) => i * 0.5 - 7),
      [5, 6, 9],
    );
  });
  afterAll(() => table.dispose());

  it.each([
    ["axis 0, 1-D indices (embedding lookup)", 0, [7]],
    ["axis 0, 2-D indices", 0, [2, 3]],
    ["axis 1 (rows inside a batch)", 1, [4]],
    ["axis 2 (single elements)", 2, [11]],
    ["negative axis", -1, [3]],
    ["no indices", 0, [0]],
  ])("%s equals the wasm kernel", (_name, axis, indexShape) => {
    const dim = table.shape.at(axis as number) as number;
    const size = indexShape.reduce((a, b) => a * b, 1);
    const indices = tf.tensor(
      Int32Array.from({ length: size }, (_, i) => (i * 5 + 2) % dim),
      indexShape,
      "int32",
    );
    both(() => tf.gather(table, indices, axis));
    indices.dispose();
  });

  it("handles int32 and bool tables and grows the heap safely", () => {
    const ints = tf.tensor2d(
      Int32Array.from({ length: 40 }, (_, i) => i * 3),
      [10, 4],
      "int32",
    );
    const flags = tf.tensor2d(
      Uint8Array.from({ length: 40 }, (_, i) => i % 3),
      [10, 4],
      "bool",
    );
    const idx = tf.tensor1d([9, 0, 4, 4], "int32");
    both(() => tf.gather(ints, idx));
    both(() => tf.gather(flags, idx));
    const big = tf.randomNormal([64, 256], 0, 1, "float32", 4);
    const many = tf.tensor1d(
      Int32Array.from({ length: 20_000 }, (_, i) => (i * 13) % 64),
      "int32",
    );
    both(() => tf.gather(big, many)); // a 20 MB output: makeOutput grows the wasm memory
    tf.dispose([ints, flags, idx, big, many]);
  });

  it("rejects out-of-range indices with the wasm kernel's message", () => {
    installWasmKernels();
    const idx = tf.tensor1d([1, 5], "int32");
    expect(() => tf.gather(table, idx)).toThrow("GatherV2: the index value 5 is not in [0, 4]");
    idx.dispose();
  });

  it("gives embedding gradients equal to the wasm kernel's path", () => {
    const weights = tf.randomNormal([12, 4], 0, 1, "float32", 5);
    const ids = tf.tensor1d([3, 3, 0, 11, 7], "int32");
    both(() => tf.grad((w: tf.Tensor) => tf.sum(tf.square(tf.gather(w, ids))))(weights));
    tf.dispose([weights, ids]);
  });
});
