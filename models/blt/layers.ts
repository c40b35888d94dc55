/**
 * Transformer pieces BLT's three stacks share (local encoder, global, local decoder): pre-norm
 * blocks with RMSNorm, RoPE self-attention under an additive bias, masked cross-attention and a
 * SiLU MLP. Laid out as the dense backbone is, for the wasm fast paths: projections are plain 2-D
 * matMuls on [B·T, d], heads folded into the batch dimension. Self-attention is the dense
 * backbone's `attendHeads` (cache [B·H, S, dh]), so KV-cached decoding runs the training path's code.
 */
import * as tf from "@tensorflow/tfjs";
import {
  applyRope,
  attendHeads,
  type LayerCache,
  type RopeTables,
  rmsNorm,
  ropeTables,
  trainingFrame,
} from "../dense.ts";
import { normalArray, type Random } from "../random.ts";
import { trainableVariable } from "../weights-file.ts";

export { type LayerCache, rmsNorm };
/** Additive attention bias for a hidden key: exp underflows to exactly 0. */
export const MASKED = -1e9;

/** Creates named, seeded variables in a fixed order (the policy's variable order). */
export class ParameterSet {
  readonly variables: tf.Variable[] = [];
  readonly names: string[] = [];
  constructor(
    private readonly prefix: string,
    private readonly random: Random,
  ) {}

  make(name: string, shape: number[], init: "normal" | "ones", std = 0.02): tf.Variable {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = init === "ones" ? new Float32Array(size).fill(1) : normalArray(size, std, this.random);
    const variable = trainableVariable(values, shape, this.prefix + name);
    this.names.push(name);
    this.variables.push(variable);
    return variable;
  }
}

export interface AttentionWeights {
  readonly norm: tf.Variable;
  readonly wq: tf.Variable;
  readonly wk: tf.Variable;
  readonly wv: tf.Variable;
  readonly wo: tf.Variable;
}

export interface Block {
  readonly attention: AttentionWeights;
  readonly norm2: tf.Variable;
  readonly w1: tf.Variable;
  readonly w2: tf.Variable;
}

export function makeAttention(params: ParameterSet, name: string, d: number, residualStd: number): AttentionWeights {
  return {
    norm: params.make(`${name}/norm`, [d], "ones"),
    wq: params.make(`${name}/wq`, [d, d], "normal"),
    wk: params.make(`${name}/wk`, [d, d], "normal"),
    wv: params.make(`${name}/wv`, [d, d], "normal"),
    wo: params.make(`${name}/wo`, [d, d], "normal", residualStd),
  };
}

export function makeBlock(params: ParameterSet, name: string, d: number, dFF: number, residualStd: number): Block {
  return {
    attention: makeAttention(params, `${name}/attention`, d, residualStd),
    norm2: params.make(`${name}/norm2`, [d], "ones"),
    w1: params.make(`${name}/w1`, [d, dFF], "normal"),
    w2: params.make(`${name}/w2`, [dFF, d], "normal", residualStd),
  };
}

/** RoPE tables [1, T, 1, dh] for positions 0 … T−1 (every row starts at 0), as the dense backbone's. */
export function positionTables(length: number, dh: number): RopeTables {
  return ropeTables(trainingFrame(1, length), dh, 10000);
}

/**
 * Multi-head attention of queries `q` [B·Tq, d] over keys/values `kv` [B·Tk, d] (both already
 * normed), under `bias` broadcastable to [B, H, Tq, Tk]; RoPE when given (self-attention only).
 */
export function attend(
  w: AttentionWeights,
  q: tf.Tensor2D,
  kv: tf.Tensor2D,
  shape: { readonly batch: number; readonly queries: number; readonly keys: number; readonly heads: number },
  bias: tf.Tensor,
  rope?: RopeTables,
): tf.Tensor2D {
  const { batch: B, queries: Tq, keys: Tk, heads: H } = shape;
  const d = q.shape[1];
  const dh = d / H;
  let qh = tf.matMul(q, w.wq).reshape([B, Tq, H, dh]) as tf.Tensor4D;
  let kh = tf.matMul(kv, w.wk).reshape([B, Tk, H, dh]) as tf.Tensor4D;
  if (rope) {
    qh = applyRope(qh, rope);
    kh = applyRope(kh, rope);
  }
  const qHeads = qh.transpose([0, 2, 1, 3]).reshape([B * H, Tq, dh]) as tf.Tensor3D;
  const kT = kh.transpose([0, 2, 3, 1]).reshape([B * H, dh, Tk]) as tf.Tensor3D;
  const v = tf
    .matMul(kv, w.wv)
    .reshape([B, Tk, H, dh])
    .transpose([0, 2, 1, 3])
    .reshape([B * H, Tk, dh]) as tf.Tensor3D;
  const scores = tf.mul(tf.matMul(qHeads, kT), 1 / Math.sqrt(dh)).reshape([B, H, Tq, Tk]);
  const weights = tf.softmax(tf.add(scores, bias)).reshape([B * H, Tq, Tk]) as tf.Tensor3D;
  const context = tf
    .matMul(weights, v)
    .reshape([B, H, Tq, dh])
    .transpose([0, 2, 1, 3])
    .reshape([B * Tq, d]) as tf.Tensor2D;
  return tf.matMul(context, w.wo);
}

/** Rows of one call to a self-attention stack: T new positions per row, under an additive bias. */
export interface BlockFrame {
  readonly batch: number;
  readonly length: number;
  readonly heads: number;
  /** Broadcastable to [B, 1, T, S], S = cached + new positions. */
  readonly bias: tf.Tensor;
}

/**
 * One pre-norm self-attention block over [B·T, d]: the new positions attend over `past` (keys
 * already rotated, [B·H, S, dh]) plus themselves. Returns the output and the grown cache, so the
 * training path and KV-cached decoding run the same code.
 */
export function runBlock(
  block: Block,
  x: tf.Tensor2D,
  frame: BlockFrame,
  rope: RopeTables,
  past?: LayerCache,
): { out: tf.Tensor2D; cache: LayerCache } {
  const h = rmsNorm(x, block.attention.norm);
  const project = (w: tf.Variable) => tf.matMul(h, w) as tf.Tensor2D;
  // attendHeads reads only the shape and the bias of its frame; positions come in `rope`.
  const { context, cache } = attendHeads(
    project(block.attention.wq),
    project(block.attention.wk),
    project(block.attention.wv),
    { batchSize: frame.batch, length: frame.length, positions: NO_POSITIONS, bias: frame.bias },
    rope,
    past,
    frame.heads,
  );
  const attended = tf.add(x, tf.matMul(context, block.attention.wo)) as tf.Tensor2D;
  const up = tf.matMul(rmsNorm(attended, block.norm2), block.w1);
  return { out: tf.add(attended, tf.matMul(tf.mul(up, tf.sigmoid(up)), block.w2)), cache };
}

const NO_POSITIONS = new Int32Array(0);

/** RoPE tables [B, 1, 1, dh] for one new position per row (rows at different positions). */
export function positionTablesAt(positions: Int32Array, dh: number): RopeTables {
  // ropeTables reads only the positions and the shape of its frame.
  return ropeTables({ batchSize: positions.length, length: 1, positions, bias: tf.scalar(0) }, dh, 10000);
}

/** Causal bias [1, 1, T, T] letting position i see keys i − window < j ≤ i (window ≥ T: fully causal). */
export function windowCausalBias(length: number, window: number): tf.Tensor4D {
  const bias = new Float32Array(length * length).fill(MASKED);
  for (let i = 0; i < length; i++) for (let j = Math.max(0, i - window + 1); j <= i; j++) bias[i * length + j] = 0;
  return tf.tensor4d(bias, [1, 1, length, length]);
}
