// The native GEMM kernels against the wasm backend's own kernels, on the same inputs.
// The addon is loaded from its path regardless of FACTRL_NATIVE_GEMM: this file tests the kernel.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import "@tensorflow/tfjs-backend-wasm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_ADDON_PATH,
  gemmGeometry,
  installNativeGemm,
  loadNativeGemmAddon,
  type NativeGemmAddon,
  nativeGemmInstalled,
  uninstallNativeGemm,
} from "./native-gemm.ts";

let addon: NativeGemmAddon;

beforeAll(async () => {
  await tf.setBackend("wasm");
  const load = loadNativeGemmAddon({ env: {} });
  if (!load.loaded) throw new Error(`the native GEMM addon must be built for this test: ${load.reason}`);
  addon = load.addon;
});

afterAll(() => uninstallNativeGemm());

/** Runs f with the wasm backend's own kernels and with the native ones; returns both results. */
function bothPaths(f: () => tf.Tensor): { reference: Float32Array; native: Float32Array; shape: number[] } {
  uninstallNativeGemm();
  const ref = tf.tidy(f);
  installNativeGemm(addon, { threads: 1 });
  const nat = tf.tidy(f);
  uninstallNativeGemm();
  expect(nat.shape).toEqual(ref.shape);
  const out = { reference: ref.dataSync() as Float32Array, native: nat.dataSync() as Float32Array, shape: ref.shape };
  ref.dispose();
  nat.dispose();
  return out;
}

/** max |x − y| / max |y|: relative to the result's scale, so entries near zero do not blow up. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return scale === 0 ? diff : diff / scale;
}

const operand = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, "float32", seed);
const stored = (batch: number[], rows: number, cols: number, transposed: boolean) =>
  transposed ? [...batch, cols, rows] : [...batch, rows, cols];

describe("native BatchMatMul equals the wasm kernel", () => {
  const transposes = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const;
  // [batch dims of a, batch dims of b, m, n, k]
  const shapes: [string, number[], number[], number, number, number][] = [
    ["rank 2, odd sizes", [], [], 7, 13, 5],
    ["rank 2, one column", [], [], 33, 1, 17],
    ["rank 3, one row per batch (a decode step's attention)", [8], [8], 1, 13, 6],
    ["rank 3, one row, shared right operand", [5], [], 1, 9, 7],
    ["rank 3", [3], [3], 9, 11, 6],
    ["rank 3, a batch 1 vs b batch 4", [1], [4], 5, 7, 3],
    ["rank 3, a batch 4 vs b batch 1", [4], [1], 5, 7, 3],
    ["rank 3 vs rank 2 (shared weight)", [4], [], 6, 10, 8],
    ["rank 2 vs rank 3", [], [3], 6, 10, 8],
    ["rank 4", [2, 3], [2, 3], 4, 5, 6],
    ["large enough for BLAS blocking", [2], [2], 67, 129, 65],
  ];
  for (const [name, batchA, batchB, m, n, k] of shapes) {
    for (const [ta, tb] of transposes) {
      it(`${name}, transposeA=${ta} transposeB=${tb}`, () => {
        const { reference, native, shape } = bothPaths(() =>
          tf.matMul(operand(stored(batchA, m, k, ta), 1), operand(stored(batchB, k, n, tb), 2), ta, tb),
        );
        expect(shape.slice(-2)).toEqual([m, n]);
        expect(relativeError(native, reference)).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it.each([
    ["m = 0", [2, 0, 4], [2, 4, 3], [2, 0, 3]],
    ["n = 0", [2, 3, 4], [2, 4, 0], [2, 3, 0]],
    ["batch = 0", [0, 3, 4], [0, 4, 5], [0, 3, 5]],
  ])("empty dimension: %s gives an empty result", (_name, aShape, bShape, outShape) => {
    const { native, shape } = bothPaths(() => tf.matMul(tf.ones(aShape), tf.ones(bShape)));
    expect(shape).toEqual(outShape);
    expect(native.length).toBe(0);
  });

  it("empty inner dimension (k = 0) gives zeros, like the wasm kernel", () => {
    for (const [ta, tb] of transposes) {
      const { reference, native, shape } = bothPaths(() =>
        tf.matMul(tf.ones(stored([2], 3, 0, ta)), tf.ones(stored([2], 0, 4, tb)), ta, tb),
      );
      expect(shape).toEqual([2, 3, 4]);
      expect(Array.from(native)).toEqual(new Array(24).fill(0));
      expect(Array.from(native)).toEqual(Array.from(reference));
    }
  });

  it("a general batch broadcast ([2,1] vs [1,3]) keeps the original kernel's result", () => {
    expect(gemmGeometry([2, 1, 4, 5], [1, 3, 5, 6], false, false)).toBeNull();
    const { reference, native } = bothPaths(() => tf.matMul(operand([2, 1, 4, 5], 3), operand([1, 3, 5, 6], 4)));
    expect(Array.from(native)).toEqual(Array.from(reference));
  });

  it("rejects mismatched inner dimensions with tfjs's message", () => {
    installNativeGemm(addon, { threads: 1 });
    try {
      expect(() => tf.matMul(tf.ones([2, 3]), tf.ones([4, 5]))).toThrow(/inner shapes \(3\) and \(4\)/);
    } finally {
      uninstallNativeGemm();
    }
  });

  it("survives wasm memory growth between output allocation and the product", () => {
    // A product whose output is large enough to force the heap to grow inside makeOutput.
    const { reference, native } = bothPaths(() => tf.matMul(operand([512, 64], 5), operand([64, 8192], 6)));
    expect(relativeError(native, reference)).toBeLessThanOrEqual(1e-5);
  });
});

describe("native _FusedMatMul equals matMul + bias + activation on the wasm kernels", () => {
  // Not compared with the wasm _FusedMatMul kernel itself: with a batch > 1 and a bias it is wrong
  // in tfjs-backend-wasm 4.22 (max error ≈ 2 on unit-normal inputs), while the unfused ops agree.
  const activate = { linear: (x: tf.Tensor) => x, relu: tf.relu, relu6: tf.relu6 } as const;
  const cases: [string, number, keyof typeof activate, boolean, boolean][] = [
    ["bias per column, linear", 11, "linear", false, false],
    ["bias per column, relu, transposeA", 11, "relu", true, false],
    ["scalar bias, relu6, transposeB", 1, "relu6", false, true],
    ["no bias, relu, both transposed", 0, "relu", true, true],
  ];
  for (const [name, biasSize, activation, ta, tb] of cases) {
    it(name, () => {
      const a = tf.mul(operand(stored([3], 9, 7, ta), 7), 3);
      const b = operand(stored([3], 7, 11, tb), 8);
      const bias = biasSize === 0 ? undefined : operand([biasSize], 9);
      uninstallNativeGemm();
      const reference = tf.tidy(() => {
        const product = tf.matMul(a, b, ta, tb);
        return activate[activation](bias === undefined ? product : tf.add(product, bias));
      });
      installNativeGemm(addon, { threads: 1 });
      const native = tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation });
      uninstallNativeGemm();
      expect(native.shape).toEqual([3, 9, 11]);
      expect(
        relativeError(native.dataSync() as Float32Array, reference.dataSync() as Float32Array),
      ).toBeLessThanOrEqual(1e-5);
      tf.dispose([a, b, bias, reference, native]);
    });
  }

  it("leaves activations it does not implement (elu) to the wasm kernel", () => {
    const { reference, native } = bothPaths(() =>
      tf.fused.matMul({ a: operand([1, 9, 7], 7), b: operand([1, 7, 11], 8), activation: "elu" }),
    );
    expect(Array.from(native)).toEqual(Array.from(reference));
  });
});

describe("gradients through the native kernel", () => {
  it("equal the wasm kernel's for every transpose combination", () => {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const a = operand(stored([2], 6, 5, ta), 10);
      const b = operand(stored([2], 5, 4, tb), 11);
      const w = operand([2, 6, 4], 12);
      const grads = () => {
        const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w)))([a, b]);
        return tf.concat([(ga as tf.Tensor).flatten(), (gb as tf.Tensor).flatten()]);
      };
      const { reference, native } = bothPaths(grads);
      expect(relativeError(native, reference)).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe("a short training run", () => {
  /** A tiny attention block + MLP trained with Adam for a few steps; returns the losses. */
  function train(): number[] {
    const d = 16;
    const t = 6;
    const batch = 4;
    const seeded = (shape: number[], seed: number) => tf.variable(tf.mul(operand(shape, seed), 0.3));
    const params = {
      wq: seeded([d, d], 20),
      wk: seeded([d, d], 21),
      wv: seeded([d, d], 22),
      w1: seeded([d, 2 * d], 23),
      b1: tf.variable(tf.zeros([2 * d])),
      w2: seeded([2 * d, d], 24),
    };
    const x = operand([batch, t, d], 25);
    const target = operand([batch, t, d], 26);
    const optimizer = tf.train.adam(0.01);
    const losses: number[] = [];
    for (let step = 0; step < 8; step++) {
      const loss = optimizer.minimize(() => {
        const flat = x.reshape([batch * t, d]);
        const q = tf.matMul(flat, params.wq).reshape([batch, t, d]);
        const k = tf.matMul(flat, params.wk).reshape([batch, t, d]);
        const v = tf.matMul(flat, params.wv).reshape([batch, t, d]);
        const attention = tf.softmax(tf.div(tf.matMul(q, k, false, true), Math.sqrt(d)));
        const mixed = tf.add(x, tf.matMul(attention, v)).reshape([batch * t, d]);
        const hidden = tf.fused.matMul({ a: mixed, b: params.w1, bias: params.b1, activation: "relu" });
        const out = tf.add(mixed, tf.matMul(hidden, params.w2)).reshape([batch, t, d]);
        return tf.mean(tf.square(tf.sub(out, target)));
      }, true) as tf.Scalar;
      losses.push(loss.dataSync()[0] as number);
      loss.dispose();
    }
    optimizer.dispose();
    for (const p of Object.values(params)) p.dispose();
    x.dispose();
    target.dispose();
    return losses;
  }

  it("gives the same losses on both paths (1e-4), and the loss falls", () => {
    uninstallNativeGemm();
    const reference = train();
    installNativeGemm(addon, { threads: 1 });
    const native = train();
    uninstallNativeGemm();
    expect(native).toHaveLength(reference.length);
    for (const [i, loss] of native.entries()) {
      expect(Math.abs(loss - (reference[i] as number))).toBeLessThanOrEqual(1e-4);
    }
    expect(native[native.length - 1]).toBeLessThan((native[0] as number) * 0.9);
  });
});

describe("installation and fallback", () => {
  it("replaces the wasm kernels and puts the originals back", () => {
    const original = tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc;
    installNativeGemm(addon, { threads: 2 });
    expect(nativeGemmInstalled()).toBe(true);
    expect(addon.getThreads()).toBe(2);
    expect(tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc).not.toBe(original);
    // Installing again only changes the thread count, it does not wrap the wrapper.
    const wrapped = tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc;
    expect(installNativeGemm(addon, { threads: 1 }).threads).toBe(1);
    expect(tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc).toBe(wrapped);
    uninstallNativeGemm();
    expect(nativeGemmInstalled()).toBe(false);
    expect(tf.getKernel(tf.BatchMatMul, "wasm")?.kernelFunc).toBe(original);
  });

  it("is disabled by FACTRL_NATIVE_GEMM=0 and reports a missing addon, without throwing", () => {
    const disabled = loadNativeGemmAddon({ env: { FACTRL_NATIVE_GEMM: "0" } });
    expect(disabled).toEqual({ loaded: false, reason: "disabled by FACTRL_NATIVE_GEMM=0" });
    const missing = loadNativeGemmAddon({ env: {}, path: "/nonexistent/factrl_gemm.node" });
    expect(missing.loaded).toBe(false);
    expect(!missing.loaded && missing.reason).toMatch(/not built.*nonexistent.*libopenblas-dev/);
    const broken = loadNativeGemmAddon({ env: {}, path: new URL(import.meta.url).pathname });
    expect(broken.loaded).toBe(false);
    expect(!broken.loaded && broken.reason).toMatch(/^cannot load /);
    expect(loadNativeGemmAddon({ env: { FACTRL_NATIVE_GEMM: "1" } }).loaded).toBe(true);
    expect(DEFAULT_ADDON_PATH).toMatch(/native\/build\/Release\/factrl_gemm\.node$/);
  });

  it("the install-time build never fails the install: disabled, it exits 0 and says why", () => {
    const script = fileURLToPath(new URL("../scripts/build-native.mjs", import.meta.url));
    const run = spawnSync(process.execPath, [script], {
      encoding: "utf8",
      env: { ...process.env, FACTRL_NATIVE_GEMM: "0" },
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("not built: disabled by FACTRL_NATIVE_GEMM=0");
    expect(run.stdout).toContain("plain wasm");
  });

  it("rejects bad thread counts and operands outside the heap with clear errors", () => {
    expect(() => installNativeGemm(addon, { threads: 0 })).toThrow(/threads must be a positive integer/);
    const heap = new ArrayBuffer(64);
    expect(() => addon.gemm(heap, 0, 0, 1024, 1, 1, 2, 2, 2, false, false, 0, 0, 0)).toThrow(
      /operand outside the heap/,
    );
    expect(() => addon.gemm(heap, 0, 16, 32, 2, 3, 1, 1, 1, false, false, 0, 0, 0)).toThrow(
      /batch sizes must be equal or one of them 1/,
    );
    expect(() => addon.gemm(heap, -4, 0, 0, 1, 1, 1, 1, 1, false, false, 0, 0, 0)).toThrow(/non-negative integers/);
  });
});
