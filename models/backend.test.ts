// Backend selection. Module imports are injected: a fake "@tensorflow/tfjs-node" does what the real
// one does on import (registers a "tensorflow" backend), so the tensorflow path is exercised here.
import * as tf from "@tensorflow/tfjs";
import { afterEach, describe, expect, it } from "vitest";
import { backendCandidates, initBackend, memoryFigures } from "./backend.ts";
import { loadNativeGemmAddon, nativeGemmInstalled, uninstallNativeGemm } from "./native-gemm.ts";

const notInstalled = (specifier: string) =>
  Object.assign(new Error(`Cannot find package '${specifier}' imported from factrl`), { code: "ERR_MODULE_NOT_FOUND" });

/** Imports real packages except tfjs-node(-gpu), which are "not installed" unless provided. */
function importer(provided: Record<string, () => unknown> = {}) {
  const imported: string[] = [];
  const importModule = async (specifier: string) => {
    imported.push(specifier);
    const fake = provided[specifier];
    if (fake !== undefined) return fake();
    if (specifier.startsWith("@tensorflow/tfjs-node")) throw notInstalled(specifier);
    return import(specifier);
  };
  return { importModule, imported };
}

function recordingLogger() {
  const lines: { fields: Record<string, unknown>; message: string }[] = [];
  return { lines, info: (fields: object, message: string) => lines.push({ fields: { ...fields }, message }) };
}

afterEach(async () => {
  uninstallNativeGemm();
  if (tf.findBackend("tensorflow") != null || tf.findBackendFactory("tensorflow") != null) {
    tf.removeBackend("tensorflow");
  }
});

describe("backendCandidates", () => {
  it("orders auto as tensorflow-gpu > tensorflow > wasm + native GEMM > wasm > cpu", () => {
    expect(backendCandidates("auto")).toEqual(["tensorflow-gpu", "tensorflow", "wasm+native-gemm", "wasm", "cpu"]);
    expect(backendCandidates("tensorflow")).toEqual(["tensorflow-gpu", "tensorflow"]);
    expect(backendCandidates("wasm")).toEqual(["wasm+native-gemm", "wasm"]);
    expect(backendCandidates("cpu")).toEqual(["cpu"]);
  });
});

describe("initBackend", () => {
  it("takes the tensorflow backend when tfjs-node is present, and says tfjs-node-gpu was not", async () => {
    const fakeTfjsNode = () => {
      // What importing @tensorflow/tfjs-node does: register a backend named "tensorflow".
      const cpuFactory = tf.findBackendFactory("cpu");
      if (cpuFactory == null) throw new Error("cpu backend factory missing");
      tf.registerBackend("tensorflow", cpuFactory, 3);
      return { version: { "tfjs-node": "fake" } };
    };
    const { importModule, imported } = importer({ "@tensorflow/tfjs-node": fakeTfjsNode });
    const logger = recordingLogger();
    const info = await initBackend({ importModule, logger, measure: false });
    expect(info.backend).toBe("tensorflow");
    expect(info.path).toBe("tensorflow");
    expect(info.device).toBe("cpu (libtensorflow)");
    expect(tf.getBackend()).toBe("tensorflow");
    expect(imported).toEqual(["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]);
    expect(info.skipped).toEqual([{ path: "tensorflow-gpu", reason: "@tensorflow/tfjs-node-gpu not installed" }]);
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]?.fields).toMatchObject({ backend: "tensorflow", path: "tensorflow", notUsed: info.skipped });
  });

  it("prefers tfjs-node-gpu when both are present", async () => {
    const register = () => {
      tf.registerBackend("tensorflow", tf.findBackendFactory("cpu") as () => tf.KernelBackend, 3);
      return {};
    };
    const { importModule, imported } = importer({
      "@tensorflow/tfjs-node-gpu": register,
      "@tensorflow/tfjs-node": register,
    });
    const info = await initBackend({ importModule, logger: recordingLogger(), measure: false });
    expect(info.path).toBe("tensorflow-gpu");
    expect(info.device).toMatch(/^gpu/);
    expect(info.skipped).toEqual([]);
    expect(imported).toEqual(["@tensorflow/tfjs-node-gpu"]);
  });

  it("reports why an installed tfjs-node cannot load (e.g. libtensorflow missing)", async () => {
    const { importModule } = importer({
      "@tensorflow/tfjs-node": () => {
        throw new Error("libtensorflow.so.2: cannot open shared object file: No such file or directory\n  at …");
      },
    });
    const info = await initBackend({ importModule, logger: recordingLogger(), measure: false });
    expect(info.skipped).toContainEqual({
      path: "tensorflow",
      reason:
        "@tensorflow/tfjs-node not importable: libtensorflow.so.2: cannot open shared object file: No such file or directory",
    });
  });

  it("rejects a module that loads but registers no backend", async () => {
    const { importModule } = importer({ "@tensorflow/tfjs-node-gpu": () => ({}), "@tensorflow/tfjs-node": () => ({}) });
    await expect(initBackend({ backend: "tensorflow", importModule, measure: false })).rejects.toThrow(
      /cannot start the "tensorflow" tfjs backend: tensorflow-gpu: .*registered no "tensorflow" backend; tensorflow: /,
    );
  });

  it("without tfjs-node, auto takes wasm + native GEMM, measures it and logs why tensorflow was skipped", async () => {
    const { importModule } = importer();
    const logger = recordingLogger();
    const info = await initBackend({
      importModule,
      logger,
      threads: 1,
      loadNativeGemm: () => {
        // The kernel itself is tested in native-gemm.test.ts; here the addon is found on disk.
        return { loaded: true, addon: loadRealAddon(), path: "native/build/Release/factrl_gemm.node" };
      },
    });
    expect(info.backend).toBe("wasm");
    expect(info.path).toBe("wasm+native-gemm");
    expect(info.device).toMatch(/wasm SIMD.*OpenBLAS.*1 thread/);
    expect(nativeGemmInstalled()).toBe(true);
    expect(info.skipped.map((s) => s.path)).toEqual(["tensorflow-gpu", "tensorflow"]);
    expect(info.matMulGflops).toBeGreaterThan(0);
    expect(logger.lines[0]?.message).toContain("wasm+native-gemm");
    expect(logger.lines[0]?.fields.matMulGflops).toBeGreaterThan(0);
  });

  it("falls back to plain wasm when the addon is unavailable, giving the reason", async () => {
    const { importModule } = importer();
    const info = await initBackend({
      importModule,
      logger: recordingLogger(),
      measure: false,
      loadNativeGemm: () => ({ loaded: false, reason: "disabled by FACTRL_NATIVE_GEMM=0" }),
    });
    expect(info.path).toBe("wasm");
    expect(info.threads).toBe(1);
    expect(nativeGemmInstalled()).toBe(false);
    expect(info.skipped).toContainEqual({ path: "wasm+native-gemm", reason: "disabled by FACTRL_NATIVE_GEMM=0" });
    // The plain kernels still compute (transposed product of a 2×2 identity-like pair).
    const product = tf.matMul(
      tf.tensor2d([
        [1, 2],
        [3, 4],
      ]),
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
      true,
      false,
    );
    expect(Array.from(product.dataSync())).toEqual([1, 3, 2, 4]);
  });

  it("with the default loader follows FACTRL_NATIVE_GEMM (CI runs this file with it set to 0 too)", async () => {
    const info = await initBackend({ backend: "wasm", logger: recordingLogger(), measure: false });
    const disabled = process.env.FACTRL_NATIVE_GEMM === "0";
    expect(info.path).toBe(disabled ? "wasm" : "wasm+native-gemm");
    expect(nativeGemmInstalled()).toBe(!disabled);
  });

  it("takes the cpu backend when asked", async () => {
    const info = await initBackend({ backend: "cpu", logger: recordingLogger(), measure: false });
    expect(info.path).toBe("cpu");
    expect(tf.getBackend()).toBe("cpu");
  });

  it("fails clearly when tensorflow is required but not installed, and on bad thread counts", async () => {
    const { importModule } = importer();
    await expect(initBackend({ backend: "tensorflow", importModule, measure: false })).rejects.toThrow(
      /cannot start the "tensorflow" tfjs backend: tensorflow-gpu: @tensorflow\/tfjs-node-gpu not installed; tensorflow: @tensorflow\/tfjs-node not installed/,
    );
    await expect(initBackend({ threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
  });
});

function loadRealAddon() {
  const load = loadNativeGemmAddon({ env: {} });
  if (!load.loaded) throw new Error(`the native GEMM addon must be built for this test: ${load.reason}`);
  return load.addon;
}

describe("memoryFigures", () => {
  it("names each figure under the prefix and counts live tensors (no wasm heap on the cpu backend)", async () => {
    await initBackend({ backend: "cpu", logger: recordingLogger(), measure: false });
    const before = memoryFigures("role.memory");
    const held = tf.zeros([256, 256]);
    const after = memoryFigures("role.memory");
    held.dispose();
    expect(Object.keys(after).sort()).toEqual(
      ["role.memory.jsHeapMB", "role.memory.rssMB", "role.memory.tensorMB", "role.memory.tensors"].sort(),
    );
    expect(after["role.memory.tensors"]).toBe(before["role.memory.tensors"]! + 1);
    expect(after["role.memory.tensorMB"]! - before["role.memory.tensorMB"]!).toBeCloseTo(0.25, 6);
    expect(after["role.memory.rssMB"]).toBeGreaterThan(0);
  });
});
