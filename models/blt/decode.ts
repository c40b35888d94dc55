/**
 * BLT sampling sessions for the shared sampling loop (models/sampling.ts).
 *
 * `beginBltDecode` is KV-cached: a prefill runs the training path over the prompts and keeps what
 * decoding continues from; then each step runs one byte per row through every part:
 * - local encoder and decoder: per layer, K and V of each row's last window − 1 bytes,
 *   [B·H, S, dh], rows aligned on their newest byte (a row with fewer bytes has masked columns);
 *   hashed n-grams from each row's last max(n) bytes;
 * - patching: the entropy model advances with its own KV cache (entropy mode), and each row is
 *   re-patched on the host with the reference patcher after every byte (cheap next to the tensor
 *   work, and no second copy of the rules). At most one patch completes per row per step;
 * - a completed patch pools the encoder outputs of its bytes (kept on the host while it is open)
 *   and cross-attends to them; the global transformer then advances one position for the rows
 *   that completed a patch — batched, over each row's K and V of its earlier patches (kept on the
 *   host: rows differ in patch count) — and yields the patch's K key slots;
 * - the decoder reads the slots of the row's last complete patch: by the layout rule (layout.ts)
 *   that is the patch before the one the next byte falls in.
 * Per step: local layers for B bytes, the global layers for the rows completing a patch, and host
 * copies of O(B·(window + patch length)) floats.
 *
 * `RecomputeSession` runs the whole sequence again at every step (the learner's computation
 * exactly): the reference the cached path is tested and benchmarked against.
 */
import * as tf from "@tensorflow/tfjs";
import type { DensePolicy } from "../dense.ts";
import { type DecodeSession, logSoftmax } from "../sampling.ts";
import { type Block, type BlockFrame, type LayerCache, MASKED, positionTablesAt, runBlock } from "./layers.ts";
import { batchLayout } from "./layout.ts";
import type { BltNetwork } from "./network.ts";

/** What cached decoding needs from the policy besides its network. */
export interface BltDecodeParts {
  readonly network: BltNetwork;
  readonly pad: number;
  /** Entropy patching only: the entropy model. */
  readonly entropyModel: DensePolicy | undefined;
  /** Next-byte entropies of right-padded rows, [B·N] (entropy patching only). */
  entropies(tokens: Int32Array, batchSize: number, length: number): Float32Array;
  /** Patch lengths of one row (summing to its length + 1); `entropies` in entropy mode. */
  patchLengths(row: ArrayLike<number>, entropies: ArrayLike<number> | undefined): number[];
}

/** Opens a KV-cached session over `prompts` (each ≥ 1 token), the next-byte logits ready. */
export async function beginBltDecode(parts: BltDecodeParts, prompts: readonly Int32Array[]): Promise<DecodeSession> {
  const { network } = parts;
  const { local, global, keysPerPatch: K } = network.shape;
  const B = prompts.length;
  const N = Math.max(...prompts.map((p) => p.length));
  const dL = local.dModel;
  const tokens = new Int32Array(B * N).fill(parts.pad);
  prompts.forEach((p, b) => {
    tokens.set(p, b * N);
  });
  const rowLengths = Int32Array.from(prompts, (p) => p.length);
  const allEntropies = parts.entropyModel ? parts.entropies(tokens, B, N) : undefined;
  const entropies = allEntropies
    ? prompts.map((p, b) => Array.from(allEntropies.subarray(b * N, b * N + p.length)))
    : undefined;
  const rows = prompts.map((p) => Array.from(p));
  const lengths = rows.map((r, b) => parts.patchLengths(r, entropies?.[b]));
  const layout = batchLayout(rowLengths, N, lengths, K);
  const G = layout.globalLength;
  const complete = lengths.map((l) => l.length - 1);

  // Local caches keep each row's last min(window − 1, N) bytes, aligned on its newest byte.
  const S = Math.min(local.window - 1, N);
  const localValid = new Uint8Array(B * S);
  const gatherRows = new Int32Array(B * local.heads * S);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const position = rowLengths[b]! - S + s;
      localValid[b * S + s] = position >= 0 ? 1 : 0;
      for (let h = 0; h < local.heads; h++) {
        gatherRows[(b * local.heads + h) * S + s] = (b * local.heads + h) * N + Math.max(0, position);
      }
    }
  }
  const keepLocal = (cache: LayerCache): LayerCache | undefined => {
    if (S === 0) return undefined;
    const dh = cache.k.shape[2];
    const pick = (t: tf.Tensor3D) =>
      tf.keep(tf.gather(t.reshape([-1, dh]), tf.tensor1d(gatherRows, "int32")).reshape([-1, S, dh]) as tf.Tensor3D);
    return { k: pick(cache.k), v: pick(cache.v) };
  };

  let encoderCaches: (LayerCache | undefined)[] = [];
  let decoderCaches: (LayerCache | undefined)[] = [];
  const globalCaches: PatchCache[] = [];
  const openPatches: Float32Array[][] = [];
  const lastSlots = new Float32Array(B * K * dL);
  const logits = tf.tidy(() => {
    const { hidden, state } = network.run(tokens, { batchSize: B, length: N }, layout, true);
    const last = tf.tensor1d(
      Int32Array.from(prompts, (p, b) => b * N + p.length - 1),
      "int32",
    );
    encoderCaches = state!.encoder.map(keepLocal);
    decoderCaches = state!.decoder.map(keepLocal);
    for (const cache of state!.global) globalCaches.push(PatchCache.fromRun(cache, B, global.heads, G, complete));
    const encoded = state!.encoded.dataSync() as Float32Array;
    const slots = state!.slots.dataSync() as Float32Array;
    for (let b = 0; b < B; b++) {
      const n = rowLengths[b]!;
      const openBytes = lengths[b]!.at(-1)! - 1; // the open patch also holds the next, unseen position
      openPatches.push(
        Array.from({ length: openBytes }, (_, j) =>
          encoded.slice((b * N + n - openBytes + j) * dL, (b * N + n - openBytes + j + 1) * dL),
        ),
      );
      const slotStart = (b * G + complete[b]! - 1) * K * dL;
      lastSlots.set(slots.subarray(slotStart, slotStart + K * dL), b * K * dL);
    }
    return network.logits(tf.gather(hidden, last));
  });
  const entropySession = parts.entropyModel ? await parts.entropyModel.beginDecode(prompts) : undefined;
  const session = new CachedBltSession(parts, {
    rows,
    entropies,
    entropySession,
    complete,
    encoderCaches,
    decoderCaches,
    localValid,
    localColumns: S,
    globalCaches,
    openPatches,
    lastSlots,
  });
  await session.setLogits(logits);
  return session;
}

interface SessionState {
  /** Every row's tokens so far, and its entropies (entropy mode). */
  readonly rows: number[][];
  readonly entropies: number[][] | undefined;
  readonly entropySession: DecodeSession | undefined;
  /** Complete patches of each row; the open patch is number `complete[b]`. */
  readonly complete: number[];
  encoderCaches: (LayerCache | undefined)[];
  decoderCaches: (LayerCache | undefined)[];
  /** [B, localColumns]: 1 where a cached local column holds a byte of the row. */
  localValid: Uint8Array;
  localColumns: number;
  readonly globalCaches: PatchCache[];
  /** Encoder outputs of the bytes of each row's open patch. */
  readonly openPatches: Float32Array[][];
  /** [B, K, dL]: key slots of each row's last complete patch. */
  readonly lastSlots: Float32Array;
}

class CachedBltSession implements DecodeSession {
  logits: Float32Array = new Float32Array(0);
  private readonly scratch: Float64Array<ArrayBuffer>;

  constructor(
    private readonly parts: BltDecodeParts,
    private readonly state: SessionState,
  ) {
    this.scratch = new Float64Array(parts.network.shape.vocabSize);
  }

  async setLogits(logits: tf.Tensor): Promise<void> {
    try {
      this.logits = (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
    }
  }

  async advance(tokens: Int32Array): Promise<void> {
    const { network } = this.parts;
    const { local, keysPerPatch: K, vocabSize: V } = network.shape;
    const state = this.state;
    const B = tokens.length;
    if (B !== state.rows.length) throw new Error(`BLT decode: ${B} tokens for ${state.rows.length} rows`);
    for (let b = 0; b < B; b++) state.rows[b]!.push(tokens[b]!);
    if (state.entropySession && state.entropies) {
      await state.entropySession.advance(tokens);
      for (let b = 0; b < B; b++) {
        const logProbs = logSoftmax(state.entropySession.logits.subarray(b * V, (b + 1) * V), 1, this.scratch);
        let entropy = 0;
        for (const lp of logProbs) entropy -= Math.exp(lp) * lp;
        state.entropies[b]!.push(entropy);
      }
    }
    const completing: number[] = [];
    for (let b = 0; b < B; b++) {
      const complete = this.parts.patchLengths(state.rows[b]!, state.entropies?.[b]).length - 1;
      if (complete === state.complete[b]! + 1) completing.push(b);
      else if (complete !== state.complete[b]) {
        throw new Error(`BLT decode: row ${b} went from ${state.complete[b]} to ${complete} complete patches`);
      }
    }

    const S = state.localColumns;
    const kept = Math.min(S + 1, local.window - 1);
    const bias = new Float32Array(B * (S + 1));
    for (let b = 0; b < B; b++)
      for (let s = 0; s < S; s++) bias[b * (S + 1) + s] = state.localValid[b * S + s] ? 0 : MASKED;
    const positions = Int32Array.from(state.rows, (r) => r.length - 1);
    const encoderCaches: (LayerCache | undefined)[] = [];
    const decoderCaches: (LayerCache | undefined)[] = [];
    const logits = tf.tidy(() => {
      const frame: BlockFrame = { batch: B, length: 1, heads: local.heads, bias: tf.tensor4d(bias, [B, 1, 1, S + 1]) };
      const rope = positionTablesAt(positions, local.dModel / local.heads);
      /** One local block over the new bytes; its grown cache is cut back to the last `kept` columns. */
      const step = (block: Block, x: tf.Tensor2D, past: LayerCache | undefined, caches: (LayerCache | undefined)[]) => {
        const { out, cache } = runBlock(block, x, frame, rope, past);
        const trim = (t: tf.Tensor3D) => tf.keep(t.slice([0, S + 1 - kept, 0], [-1, kept, -1]));
        caches.push(kept === 0 ? undefined : { k: trim(cache.k), v: trim(cache.v) });
        return out;
      };
      let x = network.embed(tokens, network.lastHashIds(state.rows));
      network.encoder.forEach((block, l) => {
        x = step(block, x, state.encoderCaches[l], encoderCaches);
      });
      const encoded = x.dataSync() as Float32Array;
      for (let b = 0; b < B; b++) {
        state.openPatches[b]!.push(encoded.slice(b * local.dModel, (b + 1) * local.dModel));
      }
      if (completing.length > 0) this.completePatches(completing);
      const slots = tf.tensor2d(state.lastSlots, [B * K, local.dModel]);
      let y = network.readSlots(x, slots, K, tf.zeros([1, 1, 1, K]));
      network.decoder.forEach((block, l) => {
        y = step(block, y, state.decoderCaches[l], decoderCaches);
      });
      return network.logits(network.finish(y));
    });
    this.disposeLocal();
    state.encoderCaches = encoderCaches;
    state.decoderCaches = decoderCaches;
    const valid = new Uint8Array(B * kept);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < kept; s++) {
        const column = S + 1 - kept + s; // in the grown cache: old columns, then the new byte
        valid[b * kept + s] = column === S ? 1 : state.localValid[b * S + column]!;
      }
    }
    state.localValid = valid;
    state.localColumns = kept;
    await this.setLogits(logits);
  }

  dispose(): void {
    this.disposeLocal();
    this.state.entropySession?.dispose();
  }

  /**
   * Inside the step's tidy: the open patches of rows `completing` are complete (their last byte
   * just encoded). Their queries run through the global transformer at once, each over its row's
   * earlier patches, and their slots become the ones the rows' next bytes read.
   */
  private completePatches(completing: readonly number[]): void {
    const { network } = this.parts;
    const { local, global, keysPerPatch: K } = network.shape;
    const state = this.state;
    const R = completing.length;
    const dL = local.dModel;
    const M = Math.max(...completing.map((b) => state.openPatches[b]!.length));
    const bytes = new Float32Array(R * M * dL);
    const pool = new Float32Array(R * M);
    const bias = new Float32Array(R * M).fill(MASKED);
    completing.forEach((b, r) => {
      const patch = state.openPatches[b]!;
      patch.forEach((encoded, j) => {
        bytes.set(encoded, (r * M + j) * dL);
        pool[r * M + j] = 1 / patch.length;
        bias[r * M + j] = 0;
      });
    });
    const queries = network.patchQueries(
      tf.tensor3d(pool, [R, 1, M]),
      tf.tensor2d(bytes, [R * M, dL]),
      tf.tensor4d(bias, [R, 1, 1, M]),
    );
    // A row's new patch sits at global position = its count of complete patches so far.
    const positions = Int32Array.from(completing, (b) => state.complete[b]!);
    const rope = positionTablesAt(positions, global.dModel / global.heads);
    let g = network.toGlobalWidth(queries);
    network.global.forEach((block, l) => {
      const cache = state.globalCaches[l]!;
      const past = cache.gather(completing);
      const { out, cache: grown } = runBlock(
        block,
        g,
        { batch: R, length: 1, heads: global.heads, bias: past.bias },
        rope,
        past.columns > 0 ? past.cache : undefined,
      );
      const newest = (t: tf.Tensor3D) => t.slice([0, past.columns, 0], [-1, 1, -1]).dataSync() as Float32Array;
      cache.append(completing, newest(grown.k), newest(grown.v));
      g = out;
    });
    const slots = network.slots(g).dataSync() as Float32Array;
    completing.forEach((b, r) => {
      state.lastSlots.set(slots.subarray(r * K * dL, (r + 1) * K * dL), b * K * dL);
      state.openPatches[b] = [];
      state.complete[b]! += 1;
    });
  }

  private disposeLocal(): void {
    for (const cache of [...this.state.encoderCaches, ...this.state.decoderCaches]) {
      cache?.k.dispose();
      cache?.v.dispose();
    }
  }
}

/**
 * One global layer's K and V of every complete patch, per row, on the host: rows complete patches
 * at different steps, so each row keeps its own buffers, [H, capacity, dh] (a head's patches
 * contiguous, as in the [B·H, S, dh] tensors), and a step copies out the rows it needs.
 */
class PatchCache {
  private constructor(
    private readonly keys: Float32Array[],
    private readonly values: Float32Array[],
    private readonly counts: number[],
    private readonly capacities: number[],
    private readonly heads: number,
    private readonly headSize: number,
  ) {}

  /** From a run's cache [B·H, G, dh] over right-padded patches: row b's first `counts[b]`. */
  static fromRun(cache: LayerCache, B: number, H: number, G: number, counts: readonly number[]): PatchCache {
    const dh = cache.k.shape[2];
    const capacities = counts.map((count) => Math.max(16, 2 * count));
    const split = (data: Float32Array) =>
      counts.map((count, b) => {
        const buffer = new Float32Array(H * capacities[b]! * dh);
        for (let h = 0; h < H; h++) {
          const from = (b * H + h) * G * dh;
          buffer.set(data.subarray(from, from + count * dh), h * capacities[b]! * dh);
        }
        return buffer;
      });
    if (counts.length !== B) throw new Error(`BLT decode: ${counts.length} patch counts for ${B} rows`);
    const keys = split(cache.k.dataSync() as Float32Array);
    const values = split(cache.v.dataSync() as Float32Array);
    return new PatchCache(keys, values, [...counts], capacities, H, dh);
  }

  /**
   * The cache of `rows` as tensors [R·H, S, dh] (S = the most patches among them; shorter rows
   * masked), and the bias [R, 1, 1, S + 1] over those columns plus the new position.
   */
  gather(rows: readonly number[]): { cache: LayerCache; bias: tf.Tensor4D; columns: number } {
    const H = this.heads;
    const dh = this.headSize;
    const R = rows.length;
    const S = Math.max(...rows.map((b) => this.counts[b]!));
    const k = new Float32Array(R * H * S * dh);
    const v = new Float32Array(R * H * S * dh);
    const bias = new Float32Array(R * (S + 1));
    rows.forEach((b, r) => {
      const count = this.counts[b]!;
      const capacity = this.capacities[b]!;
      for (let s = count; s < S; s++) bias[r * (S + 1) + s] = MASKED;
      for (let h = 0; h < H; h++) {
        const from = h * capacity * dh;
        k.set(this.keys[b]!.subarray(from, from + count * dh), (r * H + h) * S * dh);
        v.set(this.values[b]!.subarray(from, from + count * dh), (r * H + h) * S * dh);
      }
    });
    return {
      cache: { k: tf.tensor3d(k, [R * H, S, dh]), v: tf.tensor3d(v, [R * H, S, dh]) },
      bias: tf.tensor4d(bias, [R, 1, 1, S + 1]),
      columns: S,
    };
  }

  /** Appends one patch to each of `rows` from K and V [R·H, 1, dh]. */
  append(rows: readonly number[], k: Float32Array, v: Float32Array): void {
    const H = this.heads;
    const dh = this.headSize;
    rows.forEach((b, r) => {
      if (this.counts[b] === this.capacities[b]) this.grow(b);
      const capacity = this.capacities[b]!;
      for (let h = 0; h < H; h++) {
        const to = (h * capacity + this.counts[b]!) * dh;
        this.keys[b]!.set(k.subarray((r * H + h) * dh, (r * H + h + 1) * dh), to);
        this.values[b]!.set(v.subarray((r * H + h) * dh, (r * H + h + 1) * dh), to);
      }
      this.counts[b]! += 1;
    });
  }

  /** Doubles row b's capacity. */
  private grow(b: number): void {
    const H = this.heads;
    const dh = this.headSize;
    const old = this.capacities[b]!;
    const capacity = 2 * old;
    const move = (buffer: Float32Array) => {
      const grown = new Float32Array(H * capacity * dh);
      for (let h = 0; h < H; h++)
        grown.set(buffer.subarray(h * old * dh, (h * old + this.counts[b]!) * dh), h * capacity * dh);
      return grown;
    };
    this.keys[b] = move(this.keys[b]!);
    this.values[b] = move(this.values[b]!);
    this.capacities[b] = capacity;
  }
}

/** Sampling without a cache: every step runs the whole prefix again (exactly the learner's path). */
export class RecomputeSession implements DecodeSession {
  logits: Float32Array;
  private readonly rows: number[][];

  constructor(
    prompts: readonly Int32Array[],
    private readonly nextByteLogits: (rows: readonly Int32Array[]) => Float32Array,
  ) {
    this.rows = prompts.map((p) => Array.from(p));
    this.logits = nextByteLogits(prompts);
  }

  async advance(tokens: Int32Array): Promise<void> {
    tokens.forEach((t, b) => {
      this.rows[b]!.push(t);
    });
    this.logits = this.nextByteLogits(this.rows.map((r) => Int32Array.from(r)));
  }

  dispose(): void {}
}
