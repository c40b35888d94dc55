/**
 * Transformer pieces BLT's three stacks share (local encoder, global, local decoder): pre-norm
 * blocks with RMSNorm, RoPE self-attention under an additive bias, masked cross-attention and a
 * SiLU MLP. Laid out as the dense backbone is, for the wasm fast paths: projections are plain 2-D
 * matMuls on [B·T, d]; heads are folded into the batch dimension with K transposed once, so the
 * attention products are plain batched matMuls.
 */
import * as tf from "@tensorflow/tfjs";
import { applyRope, type RopeTables, rmsNorm, ropeTables, trainingFrame } from "../dense.ts";
import { normalArray, type Random } from "../random.ts";

export { rmsNorm };
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
    const variable = tf.variable(tf.tensor(values, shape), true, this.prefix + name);
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

/** One pre-norm self-attention block over [B·T, d]. */
export function runBlock(
  block: Block,
  x: tf.Tensor2D,
  shape: { readonly batch: number; readonly length: number; readonly heads: number },
  bias: tf.Tensor,
  rope: RopeTables,
): tf.Tensor2D {
  const h = rmsNorm(x, block.attention.norm);
  const dims = { batch: shape.batch, queries: shape.length, keys: shape.length, heads: shape.heads };
  const attended = tf.add(x, attend(block.attention, h, h, dims, bias, rope)) as tf.Tensor2D;
  const up = tf.matMul(rmsNorm(attended, block.norm2), block.w1);
  return tf.add(attended, tf.matMul(tf.mul(up, tf.sigmoid(up)), block.w2));
}

/** Causal bias [1, 1, T, T] letting position i see keys i − window < j ≤ i (window ≥ T: fully causal). */
export function windowCausalBias(length: number, window: number): tf.Tensor4D {
  const bias = new Float32Array(length * length).fill(MASKED);
  for (let i = 0; i < length; i++) for (let j = Math.max(0, i - window + 1); j <= i; j++) bias[i * length + j] = 0;
  return tf.tensor4d(bias, [1, 1, length, length]);
}
