/**
 * The wasm backend lacks `UnsortedSegmentSum`, which the gradient of `tf.gather` needs (embedding
 * lookups). This registers a plain-JS implementation over the backend's heap, so embeddings train
 * on wasm without the V-wide oneHot·matMul detour. Other backends keep their own kernel.
 */
import * as tf from "@tensorflow/tfjs";

interface WasmTensorInfo {
  readonly dataId: object;
  readonly shape: number[];
  readonly dtype: tf.DataType;
}

/** The slice of the wasm backend's API this kernel uses. */
interface WasmBackendHeap {
  makeOutput(shape: number[], dtype: tf.DataType): WasmTensorInfo;
  typedArrayFromHeap(info: WasmTensorInfo): Float32Array | Int32Array;
}

function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendHeap;
  const x = args.inputs.x as unknown as WasmTensorInfo;
  const segmentIds = args.inputs.segmentIds as unknown as WasmTensorInfo;
  const numSegments = args.attrs?.numSegments as number;
  const idCount = segmentIds.shape.reduce((a, b) => a * b, 1);
  const innerShape = x.shape.slice(segmentIds.shape.length);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  // makeOutput may grow the heap and detach earlier views: take the input views after it.
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const outValues = backend.typedArrayFromHeap(out);
  const xValues = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  outValues.fill(0);
  for (let i = 0; i < idCount; i++) {
    const segment = ids[i]!;
    if (segment < 0 || segment >= numSegments) continue; // TF semantics: out-of-range ids are dropped
    const src = i * inner;
    const dst = segment * inner;
    for (let j = 0; j < inner; j++) outValues[dst + j]! += xValues[src + j]!;
  }
  return out as unknown as tf.TensorInfo;
}

/** Idempotent; call after the wasm backend is registered (importing tfjs-backend-wasm does that). */
export function registerWasmSegmentSum(): void {
  if (tf.getKernel("UnsortedSegmentSum", "wasm") !== undefined) return;
  tf.registerKernel({ kernelName: "UnsortedSegmentSum", backendName: "wasm", kernelFunc: unsortedSegmentSum });
}
