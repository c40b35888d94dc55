// tfjs backend selection: the fastest path that works here, and a log line saying which and why.
//
// Order: tensorflow-gpu (tfjs-node-gpu), tensorflow (tfjs-node: libtensorflow on the CPU) > wasm + native GEMM (OpenBLAS
// under the wasm backend, see native-gemm.ts) > wasm > cpu. Each path that is skipped records the
// reason, and the chosen one is measured (matMul GFLOP/s) so the start log shows what to expect.
import * as tf from "@tensorflow/tfjs";
import { pino } from "pino";
import { installWasmKernels } from "./backend-wasm-kernels.ts";
import { type AddonLoad, installNativeGemm, loadNativeGemmAddon, uninstallNativeGemm } from "./native-gemm.ts";
import { registerWasmSegmentSum } from "./segment-sum-kernel.ts";

export type BackendRequest = "auto" | "tensorflow" | "wasm" | "cpu";
export type BackendPath = "tensorflow-gpu" | "tensorflow" | "wasm+native-gemm" | "wasm" | "cpu";

/** The packages that provide the "tensorflow" backend, and the device each drives. */
export const TENSORFLOW_PACKAGES = {
  "tensorflow-gpu": { specifier: "@tensorflow/tfjs-node-gpu", device: "gpu (libtensorflow, CUDA)" },
  tensorflow: { specifier: "@tensorflow/tfjs-node", device: "cpu (libtensorflow)" },
} as const;

export interface BackendOptions {
  /** "auto" (default) takes the first path that works; a named backend fails if it cannot start. */
  readonly backend?: BackendRequest;
  /** BLAS threads for the native GEMM (default 1: actors usually share the machine). */
  readonly threads?: number;
  /** Measure the chosen path's matMul rate (default true; ≈ 0.2–0.5 s). */
  readonly measure?: boolean;
  readonly logger?: { info(fields: object, message: string): void };
  /** How a package is imported; tests inject modules here (default: dynamic import). */
  readonly importModule?: (specifier: string) => Promise<unknown>;
  /** How the native GEMM addon is loaded (default: native/build, honouring FACTRL_NATIVE_GEMM). */
  readonly loadNativeGemm?: () => AddonLoad;
}

export interface BackendInfo {
  /** The tfjs backend name now active. */
  readonly backend: "tensorflow" | "wasm" | "cpu";
  readonly path: BackendPath;
  readonly device: string;
  /** Threads the matMuls use (0: decided by libtensorflow). */
  readonly threads: number;
  /** Faster paths that were not used, and why. */
  readonly skipped: readonly { readonly path: BackendPath; readonly reason: string }[];
  /** 2-D float32 matMul rate measured on the chosen path (NaN when measure is false). */
  readonly matMulGflops: number;
}

/** The paths tried for a request, in order. */
export function backendCandidates(request: BackendRequest): readonly BackendPath[] {
  switch (request) {
    case "auto":
      return ["tensorflow-gpu", "tensorflow", "wasm+native-gemm", "wasm", "cpu"];
    case "tensorflow":
      return ["tensorflow-gpu", "tensorflow"];
    case "wasm":
      return ["wasm+native-gemm", "wasm"];
    case "cpu":
      return ["cpu"];
  }
}

type Started = { readonly device: string; readonly threads: number };

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));

async function activate(name: string): Promise<void> {
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend("${name}") failed`);
  await tf.ready();
}

async function startTensorflow(
  packageInfo: { readonly specifier: string; readonly device: string },
  importModule: (s: string) => Promise<unknown>,
): Promise<Started> {
  try {
    await importModule(packageInfo.specifier); // registers the "tensorflow" backend as a side effect
  } catch (error) {
    const missing =
      (error as { code?: string }).code === "ERR_MODULE_NOT_FOUND" && message(error).includes(packageInfo.specifier);
    throw new Error(
      missing
        ? `${packageInfo.specifier} not installed`
        : `${packageInfo.specifier} not importable: ${message(error).split("\n")[0]}`,
    );
  }
  if (tf.findBackendFactory("tensorflow") == null) {
    throw new Error(`${packageInfo.specifier} loaded but registered no "tensorflow" backend`);
  }
  await activate("tensorflow");
  return { device: packageInfo.device, threads: 0 };
}

async function startWasm(
  importModule: (s: string) => Promise<unknown>,
  native: { readonly threads: number; readonly load: () => AddonLoad } | undefined,
): Promise<Started> {
  let addon: AddonLoad | undefined;
  if (native !== undefined) {
    addon = native.load();
    if (!addon.loaded) throw new Error(addon.reason);
  }
  await importModule("@tensorflow/tfjs-backend-wasm");
  await activate("wasm");
  registerWasmSegmentSum();
  installWasmKernels();
  const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) ? "SIMD" : "no SIMD";
  if (addon?.loaded) {
    const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.buffer;
    if (!(heap instanceof ArrayBuffer)) {
      throw new Error("the wasm memory is not a plain ArrayBuffer (threaded wasm build?); the native GEMM needs one");
    }
    const installed = installNativeGemm(addon.addon, { threads: native?.threads ?? 1 });
    return {
      device: `cpu (wasm ${simd}, 1 thread; matMul: ${installed.blas}, ${installed.threads} thread(s))`,
      threads: installed.threads,
    };
  }
  uninstallNativeGemm(); // plain wasm asked for: an earlier start may have installed them
  return { device: `cpu (wasm ${simd}, 1 thread)`, threads: 1 };
}

async function startCpu(): Promise<Started> {
  await activate("cpu"); // @tensorflow/tfjs registers it
  return { device: "cpu (plain JavaScript)", threads: 1 };
}

/**
 * Measures a square float32 matMul on the active backend, in GFLOP/s (best of a few runs).
 * Sized so that the measurement takes well under a second even on the cpu backend.
 */
/**
 * What this process holds, in MB (tensors: a count): live tensors and their bytes (tf.memory), the
 * wasm backend's heap (it grows and never shrinks), the JS heap and the resident set. A leaked tensor
 * grows the first two; a heap fragmented by changing shapes grows only the wasm heap.
 */
export function memoryFigures(prefix: string): Record<string, number> {
  const { numTensors, numBytes } = tf.memory();
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  const MB = 1024 * 1024;
  return {
    [`${prefix}.tensors`]: numTensors,
    [`${prefix}.tensorMB`]: numBytes / MB,
    ...(heap === undefined ? {} : { [`${prefix}.wasmHeapMB`]: heap.byteLength / MB }),
    [`${prefix}.jsHeapMB`]: process.memoryUsage().heapUsed / MB,
    [`${prefix}.rssMB`]: process.memoryUsage.rss() / MB,
  };
}

export function measureMatMulGflops(size = tf.getBackend() === "cpu" ? 192 : 512, seconds = 0.25): number {
  const a = tf.randomUniform([size, size]);
  const b = tf.randomUniform([size, size]);
  let best = Number.POSITIVE_INFINITY;
  const deadline = performance.now() + seconds * 1000;
  for (let run = 0; run < 20 && (run < 2 || performance.now() < deadline); run++) {
    const start = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    const elapsed = performance.now() - start;
    c.dispose();
    if (run > 0) best = Math.min(best, elapsed); // the first run warms up
  }
  a.dispose();
  b.dispose();
  return (2 * size ** 3) / (best / 1000) / 1e9;
}

/**
 * Activates the best tfjs backend the request allows and logs the chosen path, its device, the
 * faster paths not used (with why) and its measured matMul rate. A named backend that cannot
 * start is an error naming every cause; "auto" always ends on cpu at worst.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const request = options.backend ?? "auto";
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`backend threads must be a positive integer, got ${threads}`);
  }
  const importModule = options.importModule ?? ((specifier: string) => import(specifier));
  const loadNative = options.loadNativeGemm ?? (() => loadNativeGemmAddon());
  const startPath = (path: BackendPath): Promise<Started> => {
    switch (path) {
      case "tensorflow-gpu":
      case "tensorflow":
        return startTensorflow(TENSORFLOW_PACKAGES[path], importModule);
      case "wasm+native-gemm":
        return startWasm(importModule, { threads, load: loadNative });
      case "wasm":
        return startWasm(importModule, undefined);
      case "cpu":
        return startCpu();
    }
  };
  const skipped: { path: BackendPath; reason: string }[] = [];
  for (const path of backendCandidates(request)) {
    let started: Started;
    try {
      started = await startPath(path);
    } catch (error) {
      skipped.push({ path, reason: message(error) });
      continue;
    }
    const info: BackendInfo = {
      backend: tf.getBackend() as BackendInfo["backend"],
      path,
      device: started.device,
      threads: started.threads,
      skipped,
      matMulGflops: options.measure === false ? Number.NaN : measureMatMulGflops(),
    };
    const logger = options.logger ?? pino({ name: "factrl.models.backend" });
    logger.info(
      {
        backend: info.backend,
        path: info.path,
        device: info.device,
        threads: info.threads,
        matMulGflops: Number(info.matMulGflops.toFixed(1)),
        notUsed: skipped,
      },
      `tfjs backend: ${path} on ${info.device}`,
    );
    return info;
  }
  throw new Error(
    `cannot start the "${request}" tfjs backend: ${skipped.map((s) => `${s.path}: ${s.reason}`).join("; ")}`,
  );
}
