// Kernels that make the tfjs wasm backend cheaper to train on, whatever computes its matMuls.
//
// Identity: the wasm kernel copies its input, and the engine runs Identity on every tensor a
// kernel saves for the backward pass — ≈ 100 full copies per training step of the default model.
// The cpu and webgl backends share the data and count a reference instead; so does this one.
import * as tf from "@tensorflow/tfjs";

interface WasmBackendRefs {
  incRef(dataId: object): void;
}

function sharedIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === "string") return original(args); // string tensors keep their own storage
    (args.backend as unknown as WasmBackendRefs).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

const REPLACED = [{ kernelName: tf.Identity, make: sharedIdentity }] as const;

let originals: tf.KernelConfig[] | undefined;

/** Registers the kernels above for the wasm backend (idempotent). */
export function installWasmKernels(): void {
  if (originals !== undefined) return;
  const saved: tf.KernelConfig[] = [];
  for (const { kernelName, make } of REPLACED) {
    const original = tf.getKernel(kernelName, "wasm");
    if (original === undefined) throw new Error(`no wasm ${kernelName} kernel to replace`);
    saved.push(original);
    tf.unregisterKernel(kernelName, "wasm");
    tf.registerKernel({ ...original, kernelFunc: make(original.kernelFunc) });
  }
  originals = saved;
}

/** Puts the wasm backend's own kernels back. */
export function uninstallWasmKernels(): void {
  if (originals === undefined) return;
  for (const config of originals) {
    tf.unregisterKernel(config.kernelName, "wasm");
    tf.registerKernel(config);
  }
  originals = undefined;
}
