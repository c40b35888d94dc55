/**
 * BLT's network: its weights, created in the policy's variable order, and the computations over
 * them — the whole training path (`run`), which can also hand back what a decoder continues from,
 * and the pieces KV-cached decoding (decode.ts) runs one byte at a time. dL is the local width,
 * dG the global width, K the key slots per patch.
 */
import * as tf from "@tensorflow/tfjs";
import type { RopeTables } from "../dense.ts";
import { mulberry32 } from "../random.ts";
import { hashNgramIdsInto } from "./hash.ts";
import {
  type AttentionWeights,
  attend,
  type Block,
  type BlockFrame,
  type LayerCache,
  makeAttention,
  makeBlock,
  ParameterSet,
  positionTables,
  rmsNorm,
  runBlock,
  windowCausalBias,
} from "./layers.ts";
import type { BatchLayout } from "./layout.ts";

/** The fields of a BLT config the network is built from. */
export interface BltNetworkShape {
  readonly vocabSize: number;
  readonly initSeed: number;
  /** Byte-level local encoder and decoder. */
  readonly local: {
    readonly dModel: number;
    readonly heads: number;
    readonly dFF: number;
    readonly encoderLayers: number;
    readonly decoderLayers: number;
    /** Causal attention window in bytes. */
    readonly window: number;
  };
  /** The global transformer over patches. */
  readonly global: { readonly dModel: number; readonly heads: number; readonly dFF: number; readonly layers: number };
  /** Hashed n-gram embeddings added to the byte embedding (reference: n = 3…8). */
  readonly hash: { readonly ngrams: readonly number[]; readonly buckets: number; readonly functions: number };
  /** Key/value slots each patch offers the decoder's cross-attention (reference: cross_attn_k). */
  readonly keysPerPatch: number;
}

/** What `run` hands back for a decoder to continue from (tensors owned by the caller's tidy). */
export interface RunState {
  /** Self-attention caches, one per layer, rows right-padded: [B·H, N, dh] local, [B·H, G, dh] global. */
  readonly encoder: LayerCache[];
  readonly global: LayerCache[];
  readonly decoder: LayerCache[];
  /** Local encoder output of every byte, [B·N, dL]. */
  readonly encoded: tf.Tensor2D;
  /** Key slots of every global position, [B·G·K, dL]. */
  readonly slots: tf.Tensor2D;
}

let nextInstance = 0;

export class BltNetwork {
  readonly variables: readonly tf.Variable[];
  readonly names: readonly string[];
  readonly encoder: readonly Block[];
  readonly global: readonly Block[];
  readonly decoder: readonly Block[];
  private readonly byteEmbedding: tf.Variable;
  private readonly hashEmbedding: tf.Variable;
  private readonly encoderCross: AttentionWeights;
  private readonly toGlobal: tf.Variable;
  private readonly globalNorm: tf.Variable;
  private readonly toSlots: tf.Variable;
  private readonly decoderCross: AttentionWeights;
  private readonly slotNorm: tf.Variable;
  private readonly finalNorm: tf.Variable;
  private readonly output: tf.Variable;

  constructor(readonly shape: BltNetworkShape) {
    const { local, global, hash, keysPerPatch: K } = shape;
    const params = new ParameterSet(`blt${nextInstance++}/`, mulberry32(shape.initSeed));
    const localStd = 0.02 / Math.sqrt(2 * (local.encoderLayers + local.decoderLayers + 2));
    const globalStd = 0.02 / Math.sqrt(2 * global.layers);
    this.byteEmbedding = params.make("byte_embedding", [shape.vocabSize, local.dModel], "normal");
    this.hashEmbedding = params.make("hash_embedding", [this.hashTables * hash.buckets, local.dModel], "normal");
    this.encoder = Array.from({ length: local.encoderLayers }, (_, i) =>
      makeBlock(params, `encoder${i}`, local.dModel, local.dFF, localStd),
    );
    this.encoderCross = makeAttention(params, "encoder_cross", local.dModel, localStd);
    this.toGlobal = params.make("to_global", [local.dModel, global.dModel], "normal");
    this.global = Array.from({ length: global.layers }, (_, i) =>
      makeBlock(params, `global${i}`, global.dModel, global.dFF, globalStd),
    );
    this.globalNorm = params.make("global_norm", [global.dModel], "ones");
    this.toSlots = params.make("to_slots", [global.dModel, local.dModel * K], "normal");
    this.slotNorm = params.make("slot_norm", [local.dModel], "ones");
    this.decoderCross = makeAttention(params, "decoder_cross", local.dModel, localStd);
    this.decoder = Array.from({ length: local.decoderLayers }, (_, i) =>
      makeBlock(params, `decoder${i}`, local.dModel, local.dFF, localStd),
    );
    this.finalNorm = params.make("final_norm", [local.dModel], "ones");
    this.output = params.make("output", [local.dModel, shape.vocabSize], "normal");
    this.variables = params.variables;
    this.names = params.names;
  }

  /** Hash tables: one per (function, n). */
  get hashTables(): number {
    return this.shape.hash.functions * this.shape.hash.ngrams.length;
  }

  /**
   * Encoder → patches → global → decoder over right-padded rows: final hidden states [B·N, dL]
   * (inside a tidy), and with `capture` every cache and intermediate a decoder continues from.
   */
  run(
    tokens: Int32Array,
    frame: { readonly batchSize: number; readonly length: number },
    layout: BatchLayout,
    capture = false,
  ): { hidden: tf.Tensor2D; state?: RunState } {
    const { local, global, keysPerPatch: K } = this.shape;
    const { batchSize: B, length: N } = frame;
    const G = layout.globalLength;
    const dL = local.dModel;
    const dG = global.dModel;
    const stack = (
      blocks: readonly Block[],
      x: tf.Tensor2D,
      frame: BlockFrame,
      rope: RopeTables,
      caches: LayerCache[],
    ) => {
      for (const block of blocks) {
        const { out, cache } = runBlock(block, x, frame, rope);
        caches.push(cache);
        x = out;
      }
      return x;
    };

    const localFrame = { batch: B, length: N, heads: local.heads, bias: windowCausalBias(N, local.window) };
    const localRope = positionTables(N, dL / local.heads);
    const encoderCaches: LayerCache[] = [];
    const x = this.embed(tokens, this.hashIds(tokens, B, N));
    const encoded = stack(this.encoder, x, localFrame, localRope, encoderCaches);

    const patches = this.patchQueries(
      tf.tensor3d(layout.pool, [B, G, N]),
      encoded,
      tf.tensor4d(layout.encoderBias, [B, 1, G, N]),
    );
    const globalFrame = { batch: B, length: G, heads: global.heads, bias: windowCausalBias(G, G) };
    const globalCaches: LayerCache[] = [];
    const g = stack(
      this.global,
      this.toGlobalWidth(patches),
      globalFrame,
      positionTables(G, dG / global.heads),
      globalCaches,
    );
    const slots = this.slots(g);

    const decoderCaches: LayerCache[] = [];
    const read = this.readSlots(encoded, slots, G * K, tf.tensor4d(layout.decoderBias, [B, 1, N, G * K]));
    const y = stack(this.decoder, read, localFrame, localRope, decoderCaches);
    const hidden = this.finish(y);
    return capture
      ? { hidden, state: { encoder: encoderCaches, global: globalCaches, decoder: decoderCaches, encoded, slots } }
      : { hidden };
  }

  /** Byte embedding plus the sum of the hashed n-gram embeddings, [T, dL] for T tokens. */
  embed(tokens: Int32Array, hashIds: Int32Array): tf.Tensor2D {
    const dL = this.shape.local.dModel;
    const hashed = tf.sum(
      tf.gather(this.hashEmbedding, tf.tensor1d(hashIds, "int32")).reshape([tokens.length, this.hashTables, dL]),
      1,
    );
    return tf.add(tf.gather(this.byteEmbedding, tf.tensor1d(tokens, "int32")), hashed) as tf.Tensor2D;
  }

  /** Offset hash ids [B·N·tables] of right-padded rows: table t = function f, n-gram size ngrams[j]. */
  hashIds(tokens: Int32Array, B: number, N: number): Int32Array {
    const out = new Int32Array(B * N * this.hashTables);
    const scratch = new Int32Array(N);
    for (let b = 0; b < B; b++) this.rowHashIds(tokens.subarray(b * N, (b + 1) * N), scratch, out, b * N, N);
    return out;
  }

  /**
   * Offset hash ids [B·tables] of the last token of each row (rows of any lengths ≥ 1); only the
   * last max(n) tokens of a row matter.
   */
  lastHashIds(rows: readonly ArrayLike<number>[]): Int32Array {
    const span = Math.max(...this.shape.hash.ngrams);
    const out = new Int32Array(rows.length * this.hashTables);
    const tail = new Int32Array(span);
    const ids = new Int32Array(span * this.hashTables);
    const scratch = new Int32Array(span);
    rows.forEach((row, b) => {
      const length = Math.min(span, row.length);
      for (let i = 0; i < length; i++) tail[i] = row[row.length - length + i]!;
      this.rowHashIds(tail.subarray(0, length), scratch, ids, 0, length);
      out.set(ids.subarray((length - 1) * this.hashTables, length * this.hashTables), b * this.hashTables);
    });
    return out;
  }

  /**
   * Patch queries [P·G, dL]: each the mean of its bytes (`pool` [P, G, M] over `bytes` [P·M, dL])
   * plus its cross-attention to them (`bias` [P, 1, G, M] shows each query only its own bytes).
   */
  patchQueries(pool: tf.Tensor3D, bytes: tf.Tensor2D, bias: tf.Tensor4D): tf.Tensor2D {
    const [P, G, M] = pool.shape;
    const dL = this.shape.local.dModel;
    const pooled = tf.matMul(pool, bytes.reshape([P, M, dL]) as tf.Tensor3D).reshape([P * G, dL]) as tf.Tensor2D;
    const heads = this.shape.local.heads;
    const norm = this.encoderCross.norm;
    return tf.add(
      pooled,
      attend(
        this.encoderCross,
        rmsNorm(pooled, norm),
        rmsNorm(bytes, norm),
        { batch: P, queries: G, keys: M, heads },
        bias,
      ),
    ) as tf.Tensor2D;
  }

  /** Patch queries [·, dL] into the global width. */
  toGlobalWidth(patches: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(patches, this.toGlobal);
  }

  /** Global outputs [P, dG] → K normed key slots each, [P·K, dL]. */
  slots(g: tf.Tensor2D): tf.Tensor2D {
    const dL = this.shape.local.dModel;
    const flat = tf.matMul(rmsNorm(g, this.globalNorm), this.toSlots).reshape([-1, dL]) as tf.Tensor2D;
    return rmsNorm(flat, this.slotNorm);
  }

  /**
   * Decoder cross-attention: bytes [B·T, dL] plus their attention over `slotsPerRow` slots of their
   * row ([B·S, dL]) under `bias` (broadcastable to [B, H, T, S]).
   */
  readSlots(bytes: tf.Tensor2D, slots: tf.Tensor2D, slotsPerRow: number, bias: tf.Tensor): tf.Tensor2D {
    const B = slots.shape[0] / slotsPerRow;
    const shape = { batch: B, queries: bytes.shape[0] / B, keys: slotsPerRow, heads: this.shape.local.heads };
    const norm = this.decoderCross.norm;
    return tf.add(bytes, attend(this.decoderCross, rmsNorm(bytes, norm), slots, shape, bias)) as tf.Tensor2D;
  }

  /** Final norm of the decoder's output: the hidden states the output layer reads. */
  finish(y: tf.Tensor2D): tf.Tensor2D {
    return rmsNorm(y, this.finalNorm);
  }

  logits(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(hidden, this.output);
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }

  private rowHashIds(row: Int32Array, scratch: Int32Array, out: Int32Array, offset: number, N: number): void {
    const { ngrams, buckets, functions } = this.shape.hash;
    const tables = this.hashTables;
    for (let f = 0; f < functions; f++) {
      ngrams.forEach((n, j) => {
        const table = f * ngrams.length + j;
        hashNgramIdsInto(row, n, buckets, f, scratch);
        for (let i = 0; i < N; i++) out[(offset + i) * tables + table] = table * buckets + scratch[i]!;
      });
    }
  }
}
