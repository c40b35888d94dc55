/**
 * The dense backbone: a decoder-only, pre-norm (RMSNorm), causal transformer with RoPE or learned
 * positions, a SiLU MLP and an untied output projection. Optional fields make it the Llama / Qwen2
 * decoder too (models/huggingface.ts): a SwiGLU MLP, grouped-query attention, q/k/v biases, an
 * output layer tied to the token embedding, and the checkpoint's RMSNorm epsilon.
 *
 * Laid out for the wasm backend's fast paths: every projection is one plain 2-D matMul on
 * [B·T, d]; heads are folded into the batch dimension once per layer with a 4-D transpose. The
 * attention products are batched matMuls (Q·Kᵀ with transposeB), which the native GEMM
 * (models/native-gemm.ts) runs at full speed; plain wasm runs every batched product on its slow
 * path, transposed or not. The KV cache keeps K and V as [B·H, S, dh]; a decode step appends one
 * position to each, a contiguous block per head.
 */
import * as tf from "@tensorflow/tfjs";
import type {
  AnswerLogProbs,
  Policy,
  PolicyConfigBase,
  PromptAnswerBatch,
  SampleResult,
  SamplingOptions,
  TokenBatch,
} from "./policy.ts";
import { mulberry32, normalArray } from "./random.ts";
import { type DecodeSession, sampleBatch } from "./sampling.ts";
import { registerWasmSegmentSum } from "./segment-sum-kernel.ts";
import { assignPolicyWeights, encodePolicyWeights, trainableVariable } from "./weights-file.ts";

export interface DenseConfig extends PolicyConfigBase {
  readonly backbone: "dense";
  /** Width of the residual stream. */
  readonly dModel: number;
  readonly nLayers: number;
  /** Attention heads; must divide dModel (and dModel / nHeads must be even for RoPE). */
  readonly nHeads: number;
  /** Hidden width of the MLP. */
  readonly dFF: number;
  /** "rope": rotary position embedding on Q and K; "learned": an added position embedding table. */
  readonly positions: "rope" | "learned";
  /** RoPE base frequency. Default 10000. */
  readonly ropeBase?: number;
  /** "silu": silu(x·W1)·W2; "swiglu" (Llama): (silu(x·W1) ⊙ x·W3)·W2. Default "silu". */
  readonly mlp?: "silu" | "swiglu";
  /** Key/value heads (grouped-query attention), each serving nHeads / nKvHeads consecutive query heads. Default nHeads. */
  readonly nKvHeads?: number;
  /** Biases on the q, k and v projections (Qwen2). Default false. */
  readonly qkvBias?: boolean;
  /** The output layer is the token embedding, transposed (no `output` variable). Default false. */
  readonly tieEmbeddings?: boolean;
  /** RMSNorm's epsilon. Default 1e-5. */
  readonly normEps?: number;
}

const NORM_EPS = 1e-5;
const MASKED = -1e9; // additive attention bias: exp underflows to exactly 0

let nextInstance = 0;

interface Layer {
  readonly norm1: tf.Variable;
  readonly wq: tf.Variable;
  readonly wk: tf.Variable;
  readonly wv: tf.Variable;
  /** q/k/v biases, with `qkvBias`. */
  readonly bq: tf.Variable | undefined;
  readonly bk: tf.Variable | undefined;
  readonly bv: tf.Variable | undefined;
  readonly wo: tf.Variable;
  readonly norm2: tf.Variable;
  readonly w1: tf.Variable;
  readonly w2: tf.Variable;
  /** SwiGLU's up projection, with `mlp: "swiglu"` (w1 is then the gate). */
  readonly w3: tf.Variable | undefined;
}

/**
 * Per layer: K and V [B·H, S, dh] for every position seen so far. Both grow along S, which is
 * contiguous per head, so appending a position copies whole blocks (K stored transposed,
 * [B·H, dh, S], made every decode step copy B·H·dh runs of S floats: 60 % of sampling time).
 */
export interface LayerCache {
  k: tf.Tensor3D;
  v: tf.Tensor3D;
}

/** Positions and masking of one call to the layer stack (host-side, turned into tensors once). */
export interface Frame {
  readonly batchSize: number;
  /** New positions processed in this call. */
  readonly length: number;
  /** Absolute position of every new token, [B·T]. */
  readonly positions: Int32Array;
  /** Additive bias over keys, [B, 1, T, S] or broadcastable; S = cached + new positions. */
  readonly bias: tf.Tensor;
}

export class DensePolicy implements Policy {
  readonly config: DenseConfig;
  readonly trainableVariables: readonly tf.Variable[];
  readonly variableNames: readonly string[];
  private readonly tokenEmbedding: tf.Variable;
  private readonly positionEmbedding: tf.Variable | undefined;
  private readonly layers: readonly Layer[];
  private readonly finalNorm: tf.Variable;
  /** Absent with `tieEmbeddings`: the logits are then hidden · token_embeddingᵀ. */
  private readonly output: tf.Variable | undefined;
  private readonly headDim: number;
  private readonly normEps: number;

  /** `randomWeights: false` starts every weight at 0 (norms at 1) for a caller that assigns them all next (an import). */
  constructor(config: DenseConfig, options: { readonly randomWeights?: boolean } = {}) {
    validateDenseConfig(config);
    const random = mulberry32(config.initSeed);
    registerWasmSegmentSum();
    this.config = config;
    this.headDim = config.dModel / config.nHeads;
    this.normEps = config.normEps ?? NORM_EPS;
    const { vocabSize: V, dModel: d, dFF, nLayers, maxSeqLen } = config;
    const kvWidth = (config.nKvHeads ?? config.nHeads) * this.headDim;
    const swiglu = config.mlp === "swiglu";
    const prefix = `dense${nextInstance++}/`;
    const names: string[] = [];
    const variables: tf.Variable[] = [];
    const make = (name: string, shape: number[], init: "normal" | "ones" | "zeros", std = 0.02): tf.Variable => {
      const size = shape.reduce((a, b) => a * b, 1);
      const values =
        init === "normal" && options.randomWeights !== false
          ? normalArray(size, std, random)
          : new Float32Array(size).fill(init === "ones" ? 1 : 0);
      const variable = trainableVariable(values, shape, prefix + name);
      names.push(name);
      variables.push(variable);
      return variable;
    };
    const residualStd = 0.02 / Math.sqrt(2 * nLayers); // GPT-2: keep the residual stream's variance flat in depth
    this.tokenEmbedding = make("token_embedding", [V, d], "normal");
    this.positionEmbedding =
      config.positions === "learned" ? make("position_embedding", [maxSeqLen, d], "normal") : undefined;
    this.layers = Array.from({ length: nLayers }, (_, i) => ({
      norm1: make(`layer${i}/norm1`, [d], "ones"),
      wq: make(`layer${i}/wq`, [d, d], "normal"),
      wk: make(`layer${i}/wk`, [d, kvWidth], "normal"),
      wv: make(`layer${i}/wv`, [d, kvWidth], "normal"),
      bq: config.qkvBias ? make(`layer${i}/bq`, [d], "zeros") : undefined,
      bk: config.qkvBias ? make(`layer${i}/bk`, [kvWidth], "zeros") : undefined,
      bv: config.qkvBias ? make(`layer${i}/bv`, [kvWidth], "zeros") : undefined,
      wo: make(`layer${i}/wo`, [d, d], "normal", residualStd),
      norm2: make(`layer${i}/norm2`, [d], "ones"),
      w1: make(`layer${i}/w1`, [d, dFF], "normal"),
      w2: make(`layer${i}/w2`, [dFF, d], "normal", residualStd),
      w3: swiglu ? make(`layer${i}/w3`, [d, dFF], "normal") : undefined,
    }));
    this.finalNorm = make("final_norm", [d], "ones");
    this.output = config.tieEmbeddings ? undefined : make("output", [d, V], "normal");
    this.trainableVariables = variables;
    this.variableNames = names;
  }

  parameterCount(): number {
    return this.trainableVariables.reduce((sum, v) => sum + v.size, 0);
  }

  flopsPerToken(contextLength: number): number {
    return transformerFlopsPerToken(this.config, contextLength);
  }

  forward(batch: TokenBatch): tf.Tensor3D {
    return tf.tidy(() => {
      const hidden = this.hiddenStates(batch).reshape([-1, this.config.dModel]) as tf.Tensor2D;
      return this.logits(hidden).reshape([batch.batchSize, batch.length, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  hiddenStates(batch: TokenBatch): tf.Tensor3D {
    checkBatch(batch, this.config);
    return tf.tidy(() => {
      const frame = trainingFrame(batch.batchSize, batch.length);
      return this.run(batch.tokens, frame).reshape([batch.batchSize, batch.length, this.config.dModel]) as tf.Tensor3D;
    });
  }

  answerLogProbs(batch: PromptAnswerBatch, options: { readonly temperature?: number } = {}): AnswerLogProbs {
    const temperature = options.temperature ?? 1;
    const packed = packPromptAnswers(batch, this.config);
    return tf.tidy(() => {
      const frame = trainingFrame(packed.batchSize, packed.length);
      const hidden = this.run(packed.tokens, frame);
      const { logProbs, mask } = answerLogProbsFromHidden(hidden, packed, (rows) => this.logits(rows), temperature);
      return { logProbs, mask };
    });
  }

  sample(prompts: readonly Int32Array[], options: SamplingOptions): Promise<SampleResult> {
    return sampleBatch(this.config, (rows) => this.beginDecode(rows), prompts, options);
  }

  /**
   * Opens a KV-cached decoding session over `prompts` (left-padded to one length, masked, each
   * row's positions starting at 0), with the logits for every row's next token ready.
   */
  beginDecode(prompts: readonly Int32Array[]): Promise<DecodeSession> {
    return beginCachedDecode(
      {
        dModel: this.config.dModel,
        pad: this.config.specialTokens.pad,
        runCached: (tokens, frame, past) => this.runCached(tokens, frame, past),
        logits: (hidden) => this.logits(hidden),
      },
      prompts,
    );
  }

  exportWeights(): Promise<Uint8Array> {
    return encodePolicyWeights(this.trainableVariables, this.variableNames);
  }

  async importWeights(bytes: Uint8Array, source = "weights"): Promise<void> {
    assignPolicyWeights(this.trainableVariables, this.variableNames, bytes, source);
  }

  dispose(): void {
    for (const v of this.trainableVariables) v.dispose();
  }

  /** Layer stack without a cache (training / scoring): hidden states [B·T, d]. */
  private run(tokens: Int32Array, frame: Frame): tf.Tensor2D {
    return this.runCached(tokens, frame, undefined).hidden;
  }

  /**
   * Embeds `tokens` (the frame's new positions), runs every layer attending over `past` (if any)
   * plus the new positions, and returns final hidden states and the grown cache.
   */
  private runCached(
    tokens: Int32Array,
    frame: Frame,
    past: readonly LayerCache[] | undefined,
  ): { hidden: tf.Tensor2D; cache: LayerCache[] } {
    const { dModel: d } = this.config;
    const ids = tf.tensor1d(tokens, "int32");
    let x = tf.gather(this.tokenEmbedding, ids) as tf.Tensor2D;
    if (this.positionEmbedding) {
      x = tf.add(x, tf.gather(this.positionEmbedding, tf.tensor1d(frame.positions, "int32")));
    }
    const rope =
      this.config.positions === "rope" ? ropeTables(frame, this.headDim, this.config.ropeBase ?? 10000) : undefined;
    const cache: LayerCache[] = [];
    const eps = this.normEps;
    this.layers.forEach((layer, i) => {
      const attended = this.attention(layer, rmsNorm(x, layer.norm1, eps), frame, rope, past?.[i]);
      if (past) cache.push(attended.cache);
      x = tf.add(x, attended.out);
      const h = rmsNorm(x, layer.norm2, eps);
      const gate = tf.matMul(h, layer.w1);
      const activated = tf.mul(gate, tf.sigmoid(gate));
      const hidden = layer.w3 ? tf.mul(activated, tf.matMul(h, layer.w3)) : activated;
      x = tf.add(x, tf.matMul(hidden, layer.w2));
    });
    return { hidden: rmsNorm(x, this.finalNorm, eps).reshape([-1, d]) as tf.Tensor2D, cache };
  }

  private attention(
    layer: Layer,
    h: tf.Tensor2D,
    frame: Frame,
    rope: RopeTables | undefined,
    past: LayerCache | undefined,
  ): { out: tf.Tensor2D; cache: LayerCache } {
    const project = (w: tf.Variable, bias: tf.Variable | undefined) =>
      (bias ? tf.add(tf.matMul(h, w), bias) : tf.matMul(h, w)) as tf.Tensor2D;
    const { nHeads, nKvHeads = nHeads } = this.config;
    const shared = (rows: tf.Tensor2D) => repeatKvHeads(rows, nKvHeads, nHeads / nKvHeads);
    const { context, cache } = attendHeads(
      project(layer.wq, layer.bq),
      shared(project(layer.wk, layer.bk)),
      shared(project(layer.wv, layer.bv)),
      frame,
      rope,
      past,
      this.config.nHeads,
    );
    return { out: tf.matMul(context, layer.wo), cache };
  }

  private logits(hidden: tf.Tensor2D): tf.Tensor2D {
    return this.output ? tf.matMul(hidden, this.output) : tf.matMul(hidden, this.tokenEmbedding, false, true);
  }
}

/**
 * Grouped-query attention's key/value rows [N, nKv·dh] → [N, nKv·groups·dh]: kv head j serves query
 * heads j·groups … j·groups + groups − 1 (Hugging Face's `repeat_kv`). Identity without grouping.
 */
function repeatKvHeads(rows: tf.Tensor2D, nKvHeads: number, groups: number): tf.Tensor2D {
  if (groups === 1) return rows;
  const [n, width] = rows.shape;
  const dh = width / nKvHeads;
  return tf.tile(rows.reshape([n, nKvHeads, 1, dh]), [1, 1, groups, 1]).reshape([n, width * groups]) as tf.Tensor2D;
}

/** Forward FLOPs per token of this decoder shape (multiply-add = 2; also MoT's, one modality per token). */
export function transformerFlopsPerToken(
  config: Pick<DenseConfig, "dModel" | "dFF" | "nLayers" | "vocabSize" | "nHeads" | "nKvHeads" | "mlp">,
  contextLength: number,
): number {
  const { dModel: d, dFF, nLayers, vocabSize: V } = config;
  const kvWidth = (d * (config.nKvHeads ?? config.nHeads)) / config.nHeads;
  const mlpMatrices = config.mlp === "swiglu" ? 3 : 2;
  const projections = 2 * d * d + 2 * d * kvWidth + mlpMatrices * d * dFF;
  const perLayer = 2 * projections + 2 * 2 * contextLength * d; // projections + QKᵀ and AV
  return nLayers * perLayer + 2 * d * V;
}

/**
 * Causal multi-head attention of the frame's new positions over `past` (if any) plus themselves,
 * from projections q, k, v [B·T, nHeads·dh] (heads side by side): the context [B·T, nHeads·dh]
 * before the output projection, and the grown cache.
 */
export function attendHeads(
  qRows: tf.Tensor2D,
  kRows: tf.Tensor2D,
  vRows: tf.Tensor2D,
  frame: Frame,
  rope: RopeTables | undefined,
  past: LayerCache | undefined,
  nHeads: number,
): { context: tf.Tensor2D; cache: LayerCache } {
  const { batchSize: B, length: T } = frame;
  const H = nHeads;
  const dh = qRows.shape[1] / H;
  const split = (rows: tf.Tensor2D) => rows.reshape([B, T, H, dh]) as tf.Tensor4D;
  let q = split(qRows);
  let k = split(kRows);
  if (rope) {
    q = applyRope(q, rope);
    k = applyRope(k, rope);
  }
  const heads = (x: tf.Tensor4D) => x.transpose([0, 2, 1, 3]).reshape([B * H, T, dh]) as tf.Tensor3D;
  // The 1/√dh scale on Q, not on the scores: T·dh elements instead of T·S.
  const qHeads = heads(tf.mul(q, 1 / Math.sqrt(dh)));
  const newK = heads(k);
  const newV = heads(split(vRows));
  const kAll = past ? tf.concat([past.k, newK], 1) : newK;
  const v = past ? tf.concat([past.v, newV], 1) : newV;
  const S = kAll.shape[1];
  const scores = tf.matMul(qHeads, kAll, false, true).reshape([B, H, T, S]);
  const weights = tf.softmax(tf.add(scores, frame.bias)).reshape([B * H, T, S]) as tf.Tensor3D;
  const context = tf
    .matMul(weights, v)
    .reshape([B, H, T, dh])
    .transpose([0, 2, 1, 3])
    .reshape([B * T, H * dh]) as tf.Tensor2D;
  return { context, cache: { k: kAll, v } };
}

export interface RopeTables {
  /** [B, T, 1, dh]: cos and sin of each position's angle per rotated pair, halves duplicated. */
  readonly cos: tf.Tensor4D;
  readonly sin: tf.Tensor4D;
}

export function ropeTables(frame: Frame, dh: number, base: number): RopeTables {
  const n = frame.positions.length;
  let last = 0;
  for (let i = 0; i < n; i++) last = Math.max(last, frame.positions[i]!);
  const rows = ropeRows(dh, base, last);
  const cos = new Float32Array(n * dh);
  const sin = new Float32Array(n * dh);
  for (let i = 0; i < n; i++) {
    const p = frame.positions[i]!;
    cos.set(rows.cos.subarray(p * dh, (p + 1) * dh), i * dh);
    sin.set(rows.sin.subarray(p * dh, (p + 1) * dh), i * dh);
  }
  const shape: [number, number, number, number] = [frame.batchSize, frame.length, 1, dh];
  return { cos: tf.tensor4d(cos, shape), sin: tf.tensor4d(sin, shape) };
}

/**
 * cos/sin of every position up to the largest seen, per head size and base: computed once, not at
 * every decode step (recomputing them was ~4 % of a rollout actor's CPU).
 */
const ropeRowCache = new Map<string, { cos: Float32Array; sin: Float32Array; positions: number }>();

function ropeRows(dh: number, base: number, maxPosition: number): { cos: Float32Array; sin: Float32Array } {
  const key = `${dh}:${base}`;
  const cached = ropeRowCache.get(key);
  if (cached && cached.positions > maxPosition) return cached;
  const positions = Math.max(maxPosition + 1, 2 * (cached?.positions ?? 256));
  const half = dh / 2;
  const cos = new Float32Array(positions * dh);
  const sin = new Float32Array(positions * dh);
  for (let p = 0; p < positions; p++) {
    for (let j = 0; j < half; j++) {
      const angle = p * base ** (-(2 * j) / dh);
      cos[p * dh + j] = cos[p * dh + j + half] = Math.cos(angle);
      sin[p * dh + j] = sin[p * dh + j + half] = Math.sin(angle);
    }
  }
  const rows = { cos, sin, positions };
  ropeRowCache.set(key, rows);
  return rows;
}

/** rotate_half as signed permutations, per head size: x·R = [−x2, x1], and Rᵀ = −R. */
const rotations = new Map<number, { readonly r: Float32Array; readonly rT: Float32Array }>();

function rotation(dh: number): { readonly r: Float32Array; readonly rT: Float32Array } {
  let cached = rotations.get(dh);
  if (cached === undefined) {
    const half = dh / 2;
    const r = new Float32Array(dh * dh);
    for (let j = 0; j < half; j++) {
      r[(j + half) * dh + j] = -1; // out[j] = −x[j + half]
      r[j * dh + j + half] = 1; // out[j + half] = x[j]
    }
    cached = { r, rT: r.map((v) => -v) };
    rotations.set(dh, cached);
  }
  return cached;
}

/**
 * x·cos + rotate_half(x)·sin, rotate_half([x1, x2]) = [−x2, x1] (the GPT-NeoX / Llama layout).
 * rotate_half is one [·, dh]×[dh, dh] product: on wasm, split + concat (and their gradients)
 * cost ≈ 4× more. Its backward pass multiplies by Rᵀ = −R, again a plain (untransposed) product.
 */
export function applyRope(x: tf.Tensor4D, rope: RopeTables): tf.Tensor4D {
  const dh = x.shape[3];
  const { r, rT } = rotation(dh);
  const rotateHalf = tf.customGrad((input) => {
    const rows = (input as tf.Tensor).reshape([-1, dh]) as tf.Tensor2D;
    return {
      value: tf.matMul(rows, tf.tensor2d(r, [dh, dh])).reshape(x.shape) as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor4D) => tf.matMul(dy.reshape([-1, dh]), tf.tensor2d(rT, [dh, dh])).reshape(dy.shape),
    };
  });
  return tf.add(tf.mul(x, rope.cos), tf.mul(rotateHalf(x), rope.sin));
}

export function rmsNorm<T extends tf.Tensor>(x: T, gain: tf.Variable, eps = NORM_EPS): T {
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), gain);
}

/** Rows start at position 0, right padding only: a causal mask is all the masking needed. */
export function trainingFrame(batchSize: number, length: number): Frame {
  const positions = new Int32Array(batchSize * length);
  for (let b = 0; b < batchSize; b++) for (let t = 0; t < length; t++) positions[b * length + t] = t;
  return { batchSize, length, positions, bias: causalBias(length) };
}

function causalBias(length: number): tf.Tensor4D {
  const bias = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) bias[i * length + j] = MASKED;
  return tf.tensor4d(bias, [1, 1, length, length]);
}

/** Causal and no attention to left padding: [B, 1, P, P]. */
function prefillBias(keyValid: Uint8Array, B: number, P: number): tf.Tensor4D {
  const bias = new Float32Array(B * P * P);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < P; i++) {
      for (let j = 0; j < P; j++) {
        bias[(b * P + i) * P + j] = j <= i && keyValid[b * P + j] ? 0 : MASKED;
      }
    }
  }
  return tf.tensor4d(bias, [B, 1, P, P]);
}

export type PackedPromptAnswers = ReturnType<typeof packPromptAnswers>;

/**
 * The learner path's tail: from final hidden states [B·L, d] of packed rows, the log-probs of the
 * answer tokens under softmax(logits / temperature), masked.
 */
export function answerLogProbsFromHidden(
  hidden: tf.Tensor2D,
  packed: PackedPromptAnswers,
  logits: (rows: tf.Tensor2D) => tf.Tensor2D,
  temperature: number,
): AnswerLogProbs {
  // Only positions that predict an answer token go through the V-wide output layer.
  const selected = tf.gather(hidden, tf.tensor1d(packed.predictorRows, "int32"));
  const scaled = logits(selected);
  const picked = targetLogProbs(temperature === 1 ? scaled : tf.div(scaled, temperature), packed.targets);
  const mask = tf.tensor2d(packed.mask, [packed.batchSize, packed.maxAnswer]);
  return {
    logProbs: tf.mul(picked.reshape([packed.batchSize, packed.maxAnswer]), mask) as tf.Tensor2D,
    mask,
  };
}

/**
 * log softmax(x)[r, targets[r]] for every row r of x [N, V], differentiable. Same value as
 * gathering from tf.logSoftmax, at half the cost: one Exp pass over [N, V] forward, whose result
 * the gradient (onehot(target) − softmax) reuses, instead of a second Exp pass backward.
 */
export function targetLogProbs(x: tf.Tensor2D, targets: Int32Array): tf.Tensor1D {
  const [N, V] = x.shape;
  if (targets.length !== N) throw new Error(`targetLogProbs: ${targets.length} targets for ${N} rows`);
  const flat = tf.tensor1d(
    Int32Array.from(targets, (target, row) => row * V + target),
    "int32",
  );
  const pairs = new Int32Array(2 * N);
  targets.forEach((target, row) => {
    pairs[2 * row] = row;
    pairs[2 * row + 1] = target;
  });
  const pick = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const shifted = tf.sub(input, tf.max(input, 1, true));
    const exps = tf.exp(shifted);
    const sums = tf.sum(exps, 1, true);
    save([exps, sums]);
    const value = tf.sub(tf.gather(shifted.reshape([-1]), flat), tf.log(sums).reshape([-1]));
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedExps, savedSums] = saved as [tf.Tensor2D, tf.Tensor2D];
        const atTargets = tf.scatterND(tf.tensor2d(pairs, [N, 2], "int32"), dy, [N, V]);
        return tf.sub(atTargets, tf.mul(tf.div(savedExps, savedSums), dy.reshape([N, 1])));
      },
    };
  });
  return pick(x) as tf.Tensor1D;
}

/**
 * Rows `prompt ++ answer`, right-padded to one length, plus for every answer slot the flat row of
 * the hidden state that predicts it and its target token.
 */
export function packPromptAnswers(batch: PromptAnswerBatch, config: PolicyConfigBase) {
  const B = batch.prompts.length;
  if (batch.answers.length !== B) {
    throw new Error(`answerLogProbs: ${B} prompts but ${batch.answers.length} answers`);
  }
  if (batch.prompts.some((p) => p.length === 0))
    throw new Error("answerLogProbs: every prompt needs at least one token");
  const length = Math.max(...batch.prompts.map((p, b) => p.length + batch.answers[b]!.length));
  if (length > config.maxSeqLen) {
    throw new Error(`answerLogProbs: a prompt + answer has ${length} tokens, maxSeqLen is ${config.maxSeqLen}`);
  }
  const maxAnswer = Math.max(1, ...batch.answers.map((a) => a.length));
  const tokens = new Int32Array(B * length).fill(config.specialTokens.pad);
  const predictorRows = new Int32Array(B * maxAnswer);
  const targets = new Int32Array(B * maxAnswer).fill(config.specialTokens.pad);
  const mask = new Float32Array(B * maxAnswer);
  for (let b = 0; b < B; b++) {
    const prompt = batch.prompts[b]!;
    const answer = batch.answers[b]!;
    tokens.set(prompt, b * length);
    tokens.set(answer, b * length + prompt.length);
    for (let j = 0; j < maxAnswer; j++) {
      // Padding slots point at the row's first position; the mask zeroes them.
      predictorRows[b * maxAnswer + j] = j < answer.length ? b * length + prompt.length + j - 1 : b * length;
      if (j < answer.length) {
        targets[b * maxAnswer + j] = answer[j]!;
        mask[b * maxAnswer + j] = 1;
      }
    }
  }
  return { tokens, batchSize: B, length, maxAnswer, predictorRows, targets, mask };
}

export function checkBatch(batch: TokenBatch, config: PolicyConfigBase): void {
  if (batch.tokens.length !== batch.batchSize * batch.length) {
    throw new Error(`forward: ${batch.tokens.length} tokens for a ${batch.batchSize}×${batch.length} batch`);
  }
  if (batch.length > config.maxSeqLen)
    throw new Error(`forward: length ${batch.length} > maxSeqLen ${config.maxSeqLen}`);
  for (const token of batch.tokens) {
    if (token < 0 || token >= config.vocabSize)
      throw new Error(`forward: token id ${token} outside [0, ${config.vocabSize})`);
  }
}

/**
 * What KV-cached decoding needs from a backbone: its layer stack run on new tokens at a frame over
 * the past caches (returning final hidden states [B·T, dModel] and every layer's grown cache), and
 * its output layer.
 */
export interface CachedStack {
  readonly dModel: number;
  readonly pad: number;
  runCached(
    tokens: Int32Array,
    frame: Frame,
    past: readonly LayerCache[],
  ): { hidden: tf.Tensor2D; cache: LayerCache[] };
  logits(hidden: tf.Tensor2D): tf.Tensor2D;
}

/**
 * Opens a KV-cached decoding session over `prompts` (left-padded to one length, masked, each row's
 * positions starting at 0), with the logits for every row's next token ready.
 */
export async function beginCachedDecode(stack: CachedStack, prompts: readonly Int32Array[]): Promise<DecodeSession> {
  const B = prompts.length;
  const P = Math.max(...prompts.map((p) => p.length));
  const d = stack.dModel;
  const padCounts = prompts.map((p) => P - p.length);
  const tokens = new Int32Array(B * P).fill(stack.pad);
  const positions = new Int32Array(B * P);
  const keyValid = new Uint8Array(B * P);
  prompts.forEach((p, b) => {
    tokens.set(p, b * P + padCounts[b]!);
    for (let t = 0; t < P; t++) {
      positions[b * P + t] = Math.max(0, t - padCounts[b]!);
      keyValid[b * P + t] = t >= padCounts[b]! ? 1 : 0;
    }
  });
  let caches: LayerCache[] = [];
  const logits = tf.tidy(() => {
    const bias = prefillBias(keyValid, B, P);
    const { hidden, cache } = stack.runCached(tokens, { batchSize: B, length: P, positions, bias }, []);
    caches = cache.map(keepCache);
    const last = hidden.reshape([B, P, d]).slice([0, P - 1, 0], [B, 1, d]);
    return stack.logits(last.reshape([B, d]));
  });
  const session = new CachedDecodeSession(
    stack,
    caches,
    keyValid,
    P,
    Int32Array.from(prompts, (p) => p.length),
  );
  await session.setLogits(logits);
  return session;
}

/** The KV cache of a batch being decoded, one position per `advance`. */
class CachedDecodeSession implements DecodeSession {
  logits: Float32Array = new Float32Array(0);
  private keys: number;

  constructor(
    private readonly stack: CachedStack,
    private caches: LayerCache[],
    /** [B, keys]: 1 where a real token sits (left padding is 0). */
    private keyValid: Uint8Array,
    keys: number,
    /** Next absolute position of each row. */
    private readonly nextPosition: Int32Array,
  ) {
    this.keys = keys;
  }

  async setLogits(logits: tf.Tensor2D): Promise<void> {
    try {
      this.logits = (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
    }
  }

  async advance(tokens: Int32Array): Promise<void> {
    const B = tokens.length;
    const keys = this.keys + 1;
    const valid = new Uint8Array(B * keys);
    const bias = new Float32Array(B * keys);
    for (let b = 0; b < B; b++) {
      valid.set(this.keyValid.subarray(b * this.keys, (b + 1) * this.keys), b * keys);
      valid[b * keys + this.keys] = 1;
    }
    for (let i = 0; i < valid.length; i++) bias[i] = valid[i] ? 0 : MASKED;
    const positions = this.nextPosition.slice();
    let grown: LayerCache[] = [];
    const logits = tf.tidy(() => {
      const biasTensor = tf.tensor4d(bias, [B, 1, 1, keys]);
      const { hidden, cache } = this.stack.runCached(
        tokens,
        { batchSize: B, length: 1, positions, bias: biasTensor },
        this.caches,
      );
      grown = cache.map(keepCache);
      return this.stack.logits(hidden);
    });
    this.disposeCaches();
    this.caches = grown;
    this.keyValid = valid;
    this.keys = keys;
    for (let b = 0; b < B; b++) this.nextPosition[b]! += 1;
    await this.setLogits(logits);
  }

  dispose(): void {
    this.disposeCaches();
  }

  private disposeCaches(): void {
    for (const c of this.caches) {
      c.k.dispose();
      c.v.dispose();
    }
  }
}

/** Inside a tidy: keeps a cache that must outlive it. */
export function keepCache(cache: LayerCache): LayerCache {
  return { k: tf.keep(cache.k), v: tf.keep(cache.v) };
}

/** Throws one error naming every bad field. */
export function validateDenseConfig(config: DenseConfig): void {
  const problems = transformerShapeProblems(config);
  if (config.backbone !== "dense") problems.push(`backbone must be "dense", got ${JSON.stringify(config.backbone)}`);
  const { nKvHeads, mlp, normEps } = config;
  if (nKvHeads !== undefined && (!Number.isInteger(nKvHeads) || nKvHeads <= 0 || config.nHeads % nKvHeads !== 0))
    problems.push(`nKvHeads (${nKvHeads}) must be a positive divisor of nHeads (${config.nHeads})`);
  if (mlp !== undefined && mlp !== "silu" && mlp !== "swiglu")
    problems.push(`mlp must be "silu" or "swiglu", got ${JSON.stringify(mlp)}`);
  if (normEps !== undefined && !(normEps > 0)) problems.push(`normEps must be > 0, got ${JSON.stringify(normEps)}`);
  if (problems.length > 0) throw new Error(`invalid dense model config: ${problems.join("; ")}`);
}

/** Every problem with the transformer shape fields of a config (shared with MoT). */
export function transformerShapeProblems(config: Omit<DenseConfig, "backbone">): string[] {
  const problems: string[] = [];
  const positiveInt = (name: keyof Omit<DenseConfig, "backbone">) => {
    const value = config[name];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      problems.push(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
  };
  (["vocabSize", "maxSeqLen", "dModel", "nLayers", "nHeads", "dFF"] as const).forEach(positiveInt);
  if (config.positions !== "rope" && config.positions !== "learned") {
    problems.push(`positions must be "rope" or "learned", got ${JSON.stringify(config.positions)}`);
  }
  if (config.dModel % config.nHeads !== 0)
    problems.push(`nHeads (${config.nHeads}) must divide dModel (${config.dModel})`);
  else if (config.positions === "rope" && (config.dModel / config.nHeads) % 2 !== 0) {
    problems.push(`RoPE needs an even head size, dModel / nHeads = ${config.dModel / config.nHeads}`);
  }
  for (const [name, id] of Object.entries(config.specialTokens ?? {})) {
    if (!Number.isInteger(id) || id < 0 || id >= config.vocabSize) {
      problems.push(`specialTokens.${name} = ${id} is outside [0, vocabSize)`);
    }
  }
  if (config.imageTokens !== undefined) {
    const { first, count } = config.imageTokens;
    if (
      !Number.isInteger(first) ||
      !Number.isInteger(count) ||
      first < 0 ||
      count < 1 ||
      first + count > config.vocabSize
    )
      problems.push(
        `imageTokens ${JSON.stringify(config.imageTokens)} must be a non-empty range of ids in [0, vocabSize)`,
      );
  }
  return problems;
}
