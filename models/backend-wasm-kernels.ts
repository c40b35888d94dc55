// Kernels that make the tfjs wasm backend cheaper to train on, whatever computes its matMuls.
//
// Identity: the wasm kernel copies its input, and the engine runs Identity on every tensor a
// kernel saves for the backward pass — ≈ 100 full copies per training step of the default model.
// The cpu and webgl backends share the data and count a reference instead; so does this one.
// Likewise Cast to the dtype a tensor already has (the gradient of Multiply casts both operands).
//
// GatherV2: the wasm kernel copies element by element (≈ 24 ms for an embedding lookup of 6144
// rows of 128); copying whole rows with TypedArray.set takes ≈ 1 ms.
import * as tf from "@tensorflow/tfjs";

interface WasmBackendRefs {
  incRef(dataId: object): void;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function sharedIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === "string") return original(args); // string tensors keep their own storage
    (args.backend as unknown as WasmBackendRefs).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

function sharedSameTypeCast(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === "string" || (args.attrs as { dtype: tf.DataType }).dtype !== x.dtype) return original(args);
    (args.backend as unknown as WasmBackendRefs).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

const ROW_COPY_MIN = 8; // below this many elements per row, a plain loop beats subarray + set

function rowGather(original: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const indices = args.inputs.indices as tf.TensorInfo;
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    if (batchDims !== 0 || indices.dtype !== "int32" || x.dtype === "string" || x.dtype === "complex64") {
      return original(args);
    }
    const backend = args.backend as unknown as WasmBackendRefs;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const dim = x.shape[ax] as number;
    const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
    const row = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    const count = tf.util.sizeFromShape(indices.shape);
    const ids = backend.typedArrayFromHeap(indices);
    for (let i = 0; i < count; i++) {
      const id = ids[i] as number;
      if (id < 0 || id >= dim) throw new Error(`GatherV2: the index value ${id} is not in [0, ${dim - 1}]`);
    }
    const out = backend.makeOutput([...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)], x.dtype);
    // Views after makeOutput: its allocation may have grown (and so replaced) the wasm memory.
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    const at = backend.typedArrayFromHeap(indices);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < count; i++) {
        const from = (o * dim + (at[i] as number)) * row;
        const to = (o * count + i) * row;
        if (row >= ROW_COPY_MIN) dst.set(src.subarray(from, from + row), to);
        else for (let j = 0; j < row; j++) dst[to + j] = src[from + j] as number;
      }
    }
    return out;
  };
}

const REPLACED = [
  { kernelName: tf.Identity, make: sharedIdentity },
  { kernelName: tf.Cast, make: sharedSameTypeCast },
  { kernelName: tf.GatherV2, make: rowGather },
] as const;

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
