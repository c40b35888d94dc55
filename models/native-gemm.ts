// Native GEMM for the tfjs wasm backend: OpenBLAS sgemm computed in place on the wasm memory.
//
// The wasm backend's own matMul is fast only for plain 2-D products; transposed and batched
// products (every matMul gradient, attention) run 10–20× slower. The addon in native/ takes the
// backend's WebAssembly.Memory buffer and the tensors' byte offsets, so nothing is copied.
// It replaces the wasm `BatchMatMul` and `_FusedMatMul` kernels; the originals are kept for the
// cases it does not cover and restored by `uninstall()`.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";

/** What the addon (native/gemm.c) exports. */
export interface NativeGemmAddon {
  /**
   * out[i] = op(a[i])·op(b[i]) (+ bias, activation) for i < batch, on float32 data at byte
   * offsets of `heap`; a batch of 1 broadcasts. biasSize: 0 none, 1 scalar, n per column.
   * activation: 0 linear, 1 relu, 2 relu6.
   */
  gemm(
    heap: ArrayBuffer,
    aOffset: number,
    bOffset: number,
    outOffset: number,
    batchA: number,
    batchB: number,
    m: number,
    n: number,
    k: number,
    transposeA: boolean,
    transposeB: boolean,
    biasOffset: number,
    biasSize: number,
    activation: number,
  ): void;
  setThreads(threads: number): void;
  getThreads(): number;
  /** OpenBLAS build description, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64". */
  blasConfig(): string;
}

export const NATIVE_GEMM_ENV = "FACTRL_NATIVE_GEMM";
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL("../native/build/Release/factrl_gemm.node", import.meta.url));

export type AddonLoad =
  | { readonly loaded: true; readonly addon: NativeGemmAddon; readonly path: string }
  | { readonly loaded: false; readonly reason: string };

/**
 * Loads the addon unless disabled (FACTRL_NATIVE_GEMM=0) or missing; never throws: a failure is
 * returned with the reason, so the caller can fall back to the plain wasm kernels and say why.
 */
export function loadNativeGemmAddon(
  options: { readonly path?: string; readonly env?: NodeJS.ProcessEnv } = {},
): AddonLoad {
  const env = options.env ?? process.env;
  const path = options.path ?? DEFAULT_ADDON_PATH;
  const flag = env[NATIVE_GEMM_ENV];
  if (flag !== undefined && ["0", "false", "off", "no"].includes(flag.toLowerCase())) {
    return { loaded: false, reason: `disabled by ${NATIVE_GEMM_ENV}=${flag}` };
  }
  if (!existsSync(path)) {
    return {
      loaded: false,
      reason: `addon not built (${path} missing; needs libopenblas-dev, then: node scripts/build-native.mjs)`,
    };
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeGemmAddon;
    if (typeof addon.gemm !== "function") {
      return { loaded: false, reason: `${path} does not export gemm()` };
    }
    return { loaded: true, addon, path };
  } catch (error) {
    return { loaded: false, reason: `cannot load ${path}: ${(error as Error).message}` };
  }
}

/** The shape of one product as the addon sees it, or null when the fast path does not apply. */
export interface GemmGeometry {
  readonly batchA: number;
  readonly batchB: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly outShape: number[];
}

const product = (dims: readonly number[]): number => dims.reduce((p, d) => p * d, 1);
const dim = (shape: readonly number[], i: number): number => shape[i] as number;

/**
 * Flattens the leading (batch) dimensions of a matMul to one batch per side. Throws like tfjs on
 * mismatched inner or batch dimensions. Returns null for broadcasts that are not "equal batches
 * or one side 1" (e.g. [2,1] vs [1,3]): those keep the original kernel.
 */
export function gemmGeometry(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): GemmGeometry | null {
  const aRank = aShape.length;
  const bRank = bShape.length;
  if (aRank < 2 || bRank < 2) {
    throw new Error(`matMul needs rank ≥ 2 operands, got shapes [${aShape}] and [${bShape}]`);
  }
  // No closures in here: it runs for every matMul, and tsx names each closure it creates.
  const k = transposeA ? dim(aShape, aRank - 2) : dim(aShape, aRank - 1);
  const kB = transposeB ? dim(bShape, bRank - 1) : dim(bShape, bRank - 2);
  const m = transposeA ? dim(aShape, aRank - 1) : dim(aShape, aRank - 2);
  const n = transposeB ? dim(bShape, bRank - 2) : dim(bShape, bRank - 1);
  if (k !== kB) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kB}) of Tensors with shapes ${aShape} and ` +
        `${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const outer = tf.backend_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = product(outer);
  const batchA = product(outerA);
  const batchB = product(outerB);
  // Equal sizes imply equal dims (each broadcast dim is ≥ both), so linear batch order matches.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return null;
  return { batchA, batchB, m, n, k, outShape: [...outer, m, n] };
}

/** The slice of the wasm backend this module relies on (stable across tfjs 4.x). */
interface WasmBackendView {
  readonly wasm: { readonly HEAPU8: Uint8Array };
  readonly dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: "float32"): tf.TensorInfo;
}

const ACTIVATIONS: Readonly<Record<string, number>> = { linear: 0, relu: 1, relu6: 2 };

function offsetOf(backend: WasmBackendView, t: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(t.dataId);
  if (data === undefined) throw new Error("native GEMM: tensor is not on the wasm backend");
  return data.memoryOffset;
}

function runGemm(
  addon: NativeGemmAddon,
  backend: WasmBackendView,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  g: GemmGeometry,
  transposeA: boolean,
  transposeB: boolean,
  bias: tf.TensorInfo | undefined,
  activation: number,
): tf.TensorInfo {
  const out = backend.makeOutput(g.outShape, "float32");
  if (product(g.outShape) === 0) return out;
  // Read the buffer after makeOutput: its malloc may have grown (and so replaced) the memory.
  addon.gemm(
    backend.wasm.HEAPU8.buffer as ArrayBuffer,
    offsetOf(backend, a),
    offsetOf(backend, b),
    offsetOf(backend, out),
    g.batchA,
    g.batchB,
    g.m,
    g.n,
    g.k,
    transposeA,
    transposeB,
    bias === undefined ? 0 : offsetOf(backend, bias),
    bias === undefined ? 0 : product(bias.shape),
    activation,
  );
  return out;
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

function nativeBatchMatMul(addon: NativeGemmAddon, original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== "float32" || b.dtype !== "float32") return original(args);
    const g = gemmGeometry(a.shape, b.shape, transposeA, transposeB);
    if (g === null) return original(args);
    const backend = args.backend as unknown as WasmBackendView;
    return runGemm(addon, backend, a, b, g, transposeA, transposeB, undefined, 0);
  };
}

function nativeFusedMatMul(addon: NativeGemmAddon, original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const { transposeA, transposeB, activation } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation: string;
    };
    const code = ACTIVATIONS[activation];
    if (code === undefined || preluActivationWeights != null) return original(args);
    if (a.dtype !== "float32" || b.dtype !== "float32") return original(args);
    const g = gemmGeometry(a.shape, b.shape, transposeA, transposeB);
    if (g === null) return original(args);
    if (bias != null) {
      const size = product(bias.shape);
      if (bias.dtype !== "float32" || bias.shape.length !== 1 || (size !== 1 && size !== g.n)) {
        return original(args);
      }
    }
    const backend = args.backend as unknown as WasmBackendView;
    return runGemm(addon, backend, a, b, g, transposeA, transposeB, bias ?? undefined, code);
  };
}

export interface NativeGemmInstallation {
  readonly threads: number;
  readonly blas: string;
  /** Puts the wasm backend's own kernels back. */
  uninstall(): void;
}

const REPLACED = [
  { kernelName: tf.BatchMatMul, make: nativeBatchMatMul },
  { kernelName: tf._FusedMatMul, make: nativeFusedMatMul },
] as const;

let current: { originals: tf.KernelConfig[]; installation: NativeGemmInstallation } | undefined;

/**
 * Registers the native kernels in place of the wasm backend's matMul kernels. Requires the wasm
 * backend to be registered (import "@tensorflow/tfjs-backend-wasm"). Installing again only
 * updates the thread count.
 */
export function installNativeGemm(
  addon: NativeGemmAddon,
  options: { readonly threads: number },
): NativeGemmInstallation {
  if (!Number.isInteger(options.threads) || options.threads < 1) {
    throw new Error(`native GEMM: threads must be a positive integer, got ${options.threads}`);
  }
  addon.setThreads(options.threads);
  if (current !== undefined) {
    const installation = { ...current.installation, threads: addon.getThreads() };
    current.installation = installation;
    return installation;
  }
  const originals = REPLACED.map(({ kernelName }) => {
    const config = tf.getKernel(kernelName, "wasm");
    if (config === undefined) {
      throw new Error(
        `native GEMM: no wasm ${kernelName} kernel registered (import "@tensorflow/tfjs-backend-wasm" first)`,
      );
    }
    return config;
  });
  REPLACED.forEach(({ kernelName, make }, i) => {
    const original = originals[i] as tf.KernelConfig;
    tf.unregisterKernel(kernelName, "wasm");
    // Keep the original setup: it prepares the fallback kernel if the backend is re-created.
    tf.registerKernel({ ...original, kernelFunc: make(addon, original.kernelFunc) });
  });
  const installation: NativeGemmInstallation = {
    threads: addon.getThreads(),
    blas: addon.blasConfig(),
    uninstall: uninstallNativeGemm,
  };
  current = { originals, installation };
  return installation;
}

/** Puts the wasm backend's own matMul kernels back; does nothing when they are in place. */
export function uninstallNativeGemm(): void {
  if (current === undefined) return;
  for (const config of current.originals) {
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
  }
  current = undefined;
}

/** True while the native kernels are registered. */
export function nativeGemmInstalled(): boolean {
  return current !== undefined;
}
