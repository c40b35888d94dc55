/**
 * The BLT backbone (Byte Latent Transformer, Pagnoni et al. 2024): bytes in, bytes out.
 *
 *   bytes ─► byte + hashed n-gram embeddings ─► local encoder (causal window attention)
 *         ─► patch queries (mean of their bytes) cross-attend to their bytes ─► global transformer
 *            over patches (causal) ─► K key slots per patch ─► local decoder: each byte cross-attends
 *            to the slots of the patch before the one its next byte falls in, then causal window
 *            attention ─► next-byte logits.
 *
 * Patches come from a small byte LM (the entropy model, a dense backbone owned by this policy and
 * frozen: not among `trainableVariables`, but part of the exported weights) or from spaces or a
 * fixed size (models/blt/patcher.ts). Patching is causal — whether byte i + 1 opens a patch is
 * known from bytes ≤ i — so generation patches as it goes, and sampling is KV-cached in every part
 * (models/blt/decode.ts); the weights and the training path are in models/blt/network.ts.
 */
import * as tf from "@tensorflow/tfjs";
import { answerLogProbsFromHidden, type DenseConfig, DensePolicy, packPromptAnswers } from "../dense.ts";
import type {
  AnswerLogProbs,
  Policy,
  PolicyConfigBase,
  PromptAnswerBatch,
  SampleResult,
  SamplingOptions,
  SpecialTokens,
  TokenBatch,
} from "../policy.ts";
import { mixSeed } from "../random.ts";
import { type DecodeSession, sampleBatch } from "../sampling.ts";
import { registerWasmSegmentSum } from "../segment-sum-kernel.ts";
import { checkTensorsMatch, decodeNamedTensors, encodeNamedTensors, POLICY_WEIGHTS_KIND } from "../weights-file.ts";
import { beginBltDecode, RecomputeSession } from "./decode.ts";
import { type BatchLayout, batchLayout } from "./layout.ts";
import { BltNetwork, type BltNetworkShape } from "./network.ts";
import { entropyPatchLengths, spacePatchLengths, staticPatchLengths } from "./patcher.ts";
import { BLT_VOCAB_SIZE, BOE, BOS, EOS, PAD } from "./tokens.ts";

export type BltPatching =
  | {
      readonly mode: "entropy";
      /** Global threshold on next-byte entropy (nats); the monotonic bound when `monotonic`. */
      readonly threshold: number;
      readonly monotonic?: boolean;
      readonly thresholdAdd?: number;
      readonly maxPatchLength?: number;
    }
  | { readonly mode: "space"; readonly maxPatchLength?: number }
  | { readonly mode: "static"; readonly patchSize: number };

/** The network's shape (local layers, global transformer, hashing: `BltNetworkShape`) plus patching. */
export interface BltConfig extends PolicyConfigBase, BltNetworkShape {
  readonly backbone: "blt";
  readonly patching: BltPatching;
  /** The byte LM that measures entropy (a dense backbone; used only by entropy patching). */
  readonly entropyModel: {
    readonly dModel: number;
    readonly layers: number;
    readonly heads: number;
    readonly dFF: number;
  };
}

/** BLT has no think tokens (`<think>` is text): -1 never matches a byte. */
export const BLT_SPECIAL_TOKENS: SpecialTokens = { pad: PAD, bos: BOS, eos: EOS, thinkOpen: -1, thinkClose: -1 };

/** A small BLT with every field set; override what you need. */
export function bltConfig(overrides: Partial<BltConfig> = {}): BltConfig {
  return {
    backbone: "blt",
    vocabSize: BLT_VOCAB_SIZE,
    maxSeqLen: 512,
    specialTokens: BLT_SPECIAL_TOKENS,
    initSeed: 1,
    local: { dModel: 64, heads: 4, dFF: 128, encoderLayers: 1, decoderLayers: 1, window: 64 },
    global: { dModel: 128, heads: 4, dFF: 256, layers: 2 },
    hash: { ngrams: [3, 4, 5, 6, 7, 8], buckets: 4096, functions: 1 },
    keysPerPatch: 2,
    patching: { mode: "entropy", threshold: 1.335442066192627 },
    entropyModel: { dModel: 32, layers: 1, heads: 2, dFF: 64 },
    ...overrides,
  };
}

/** Name of the entropy threshold in the weights: calibrated on data, it must travel with them. */
const THRESHOLD_WEIGHT = "patching/entropy_threshold";

/**
 * A BLT whose global transformer has a dense model's shape (the `model` section's dModel, layers,
 * heads, dFF, maxSeqLen in bytes); local layers at half the width, one each side.
 */
export function bltConfigForShape(
  shape: {
    readonly dModel: number;
    readonly nLayers: number;
    readonly nHeads: number;
    readonly dFF: number;
    readonly maxSeqLen: number;
  },
  initSeed: number,
): BltConfig {
  const localWidth = Math.max(32, 2 * Math.floor(shape.dModel / 4)); // even, so RoPE's head size is
  const localHeads = localWidth % 16 === 0 ? localWidth / 16 : 1;
  return bltConfig({
    maxSeqLen: shape.maxSeqLen,
    initSeed,
    global: { dModel: shape.dModel, heads: shape.nHeads, dFF: shape.dFF, layers: shape.nLayers },
    local: {
      dModel: localWidth,
      heads: localHeads,
      dFF: 2 * localWidth,
      encoderLayers: 1,
      decoderLayers: 1,
      window: 64,
    },
  });
}

interface Frame {
  readonly batchSize: number;
  readonly length: number;
  readonly rowLengths: Int32Array;
}

export class BltPolicy implements Policy {
  readonly config: BltConfig;
  readonly trainableVariables: readonly tf.Variable[];
  readonly variableNames: readonly string[];
  /** The frozen byte LM behind entropy patching (train it with `trainEntropyModel`). */
  readonly entropyModel: DensePolicy;
  private readonly network: BltNetwork;
  private readonly patchCounts = { patches: 0, bytes: 0 };
  /** Entropy patching's global threshold (NaN for other modes, which ignore it). */
  private threshold: number;

  constructor(config: BltConfig) {
    validateBltConfig(config);
    registerWasmSegmentSum();
    this.config = config;
    this.network = new BltNetwork(config);
    this.trainableVariables = this.network.variables;
    this.variableNames = this.network.names;
    this.entropyModel = new DensePolicy(entropyModelConfig(config));
    this.threshold = config.patching.mode === "entropy" ? config.patching.threshold : Number.NaN;
  }

  parameterCount(): number {
    return this.trainableVariables.reduce((sum, v) => sum + v.size, 0);
  }

  /** Mean patch length over every sequence this policy has patched so far (NaN before any). */
  observedMeanPatchLength(): number {
    return this.patchCounts.bytes / this.patchCounts.patches;
  }

  /**
   * Forward FLOPs per byte at `contextLength` bytes, with patches as long as observed so far
   * (before any: the static patch size, else 4.5, the paper's average). Entropy model included.
   */
  flopsPerToken(contextLength: number): number {
    const observed = this.observedMeanPatchLength();
    const fallback = this.config.patching.mode === "static" ? this.config.patching.patchSize : 4.5;
    return this.flopsPerByte(contextLength, Number.isFinite(observed) ? observed : fallback);
  }

  /** Forward FLOPs per byte (multiply-add = 2) given the mean patch length. */
  flopsPerByte(contextLength: number, meanPatchLength: number): number {
    const { local, global, keysPerPatch: K, vocabSize: V } = this.config;
    const dL = local.dModel;
    const dG = global.dModel;
    const localLayer = 2 * (4 * dL * dL + 2 * dL * local.dFF) + 4 * Math.min(contextLength, local.window) * dL;
    const patches = contextLength / meanPatchLength;
    const globalLayer = 2 * (4 * dG * dG + 2 * dG * global.dFF) + 4 * patches * dG;
    const perPatch =
      global.layers * globalLayer +
      2 * dL * dG + // into the global width
      2 * dG * dL * K + // out to K slots
      4 * dL * dL + // encoder cross: query and output projections
      4 * dL * dL * K; // decoder cross: keys and values of the K slots
    const perByte =
      (local.encoderLayers + local.decoderLayers) * localLayer +
      4 * dL * dL + // encoder cross: keys and values of every byte
      4 * dL + // encoder cross: scores and mix (each byte is seen by one patch)
      4 * dL * dL + // decoder cross: query and output projections
      4 * K * dL + // decoder cross: scores and mix over K slots
      2 * dL * V; // next-byte logits
    const entropy = this.config.patching.mode === "entropy" ? this.entropyModel.flopsPerToken(contextLength) : 0;
    return perByte + perPatch / meanPatchLength + entropy;
  }

  forward(batch: TokenBatch): tf.Tensor3D {
    return tf.tidy(() => {
      const hidden = this.hiddenStates(batch);
      const width = hidden.shape[2];
      const logits = this.network.logits(hidden.reshape([-1, width]) as tf.Tensor2D);
      return logits.reshape([batch.batchSize, batch.length, this.config.vocabSize]) as tf.Tensor3D;
    });
  }

  /** The local decoder's final states (after its norm), one per byte; right-padding (PAD) is cut off per row. */
  hiddenStates(batch: TokenBatch): tf.Tensor3D {
    checkTokens(batch.tokens, batch.batchSize * batch.length, this.config, "forward");
    if (batch.length > this.config.maxSeqLen) {
      throw new Error(`forward: length ${batch.length} > maxSeqLen ${this.config.maxSeqLen}`);
    }
    const rowLengths = new Int32Array(batch.batchSize);
    for (let b = 0; b < batch.batchSize; b++) {
      let n = batch.length;
      while (n > 1 && batch.tokens[b * batch.length + n - 1] === PAD) n--;
      rowLengths[b] = n;
    }
    const frame = { batchSize: batch.batchSize, length: batch.length, rowLengths };
    const layout = this.layout(batch.tokens, frame);
    return tf.tidy(() => {
      const { hidden } = this.network.run(batch.tokens, frame, layout);
      return hidden.reshape([batch.batchSize, batch.length, -1]) as tf.Tensor3D;
    });
  }

  answerLogProbs(batch: PromptAnswerBatch, options: { readonly temperature?: number } = {}): AnswerLogProbs {
    if (batch.prompts.length === 0) throw new Error("answerLogProbs: empty batch");
    const packed = packPromptAnswers(batch, this.config);
    checkTokens(packed.tokens, packed.tokens.length, this.config, "answerLogProbs");
    const rowLengths = Int32Array.from(batch.prompts, (p, b) => p.length + batch.answers[b]!.length);
    const frame = { batchSize: packed.batchSize, length: packed.length, rowLengths };
    const layout = this.layout(packed.tokens, frame);
    return tf.tidy(() => {
      const { hidden } = this.network.run(packed.tokens, frame, layout);
      const temperature = options.temperature ?? 1;
      const { logProbs, mask } = answerLogProbsFromHidden(
        hidden,
        packed,
        (rows) => this.network.logits(rows),
        temperature,
      );
      return { logProbs, mask };
    });
  }

  /** Batched sampling, KV-cached (models/blt/decode.ts). */
  sample(prompts: readonly Int32Array[], options: SamplingOptions): Promise<SampleResult> {
    return sampleBatch(this.config, (rows) => this.beginDecode(rows), prompts, options);
  }

  /**
   * `sample` without a cache: every step runs the whole sequence again, the learner's computation
   * exactly and O(n²). The reference the cached path is tested and benchmarked against.
   */
  sampleWithoutCache(prompts: readonly Int32Array[], options: SamplingOptions): Promise<SampleResult> {
    return sampleBatch(
      this.config,
      async (rows) => new RecomputeSession(rows, (r) => this.nextByteLogits(r)),
      prompts,
      options,
    );
  }

  /**
   * Opens a KV-cached decoding session over `prompts` (each ≥ 1 token, shorter than maxSeqLen):
   * next-byte logits ready, one byte per row per `advance`.
   */
  async beginDecode(prompts: readonly Int32Array[]): Promise<DecodeSession> {
    if (prompts.length === 0) throw new Error("beginDecode: no prompts");
    for (const p of prompts) {
      if (p.length === 0) throw new Error("beginDecode: every prompt needs at least one token");
      checkTokens(p, p.length, this.config, "beginDecode");
    }
    const entropy = this.config.patching.mode === "entropy";
    return beginBltDecode(
      {
        network: this.network,
        pad: PAD,
        entropyModel: entropy ? this.entropyModel : undefined,
        entropies: (tokens, batchSize, length) => this.entropies(tokens, batchSize, length),
        patchLengths: (row, entropies) => this.rowPatchLengths(row, entropies),
      },
      prompts,
    );
  }

  /** Logits of the next byte of every row, [B, V] (rows of any lengths ≥ 1). */
  nextByteLogits(rows: readonly Int32Array[]): Float32Array {
    const B = rows.length;
    const N = Math.max(...rows.map((r) => r.length));
    const tokens = new Int32Array(B * N).fill(PAD);
    rows.forEach((r, b) => {
      tokens.set(r, b * N);
    });
    const rowLengths = Int32Array.from(rows, (r) => r.length);
    const frame = { batchSize: B, length: N, rowLengths };
    const layout = this.layout(tokens, frame);
    const logits = tf.tidy(() => {
      const { hidden } = this.network.run(tokens, frame, layout);
      const last = tf.gather(
        hidden,
        tf.tensor1d(
          Int32Array.from(rows, (r, b) => b * N + r.length - 1),
          "int32",
        ),
      );
      return this.network.logits(last);
    });
    try {
      return logits.dataSync() as Float32Array;
    } finally {
      logits.dispose();
    }
  }

  /** Patch lengths of one sequence, as the forward pass cuts it (including the next position). */
  patchLengths(tokens: Int32Array): number[] {
    checkTokens(tokens, tokens.length, this.config, "patchLengths");
    if (tokens.length === 0) throw new Error("patchLengths: empty sequence");
    return this.patchRows(tokens, {
      batchSize: 1,
      length: tokens.length,
      rowLengths: Int32Array.of(tokens.length),
    })[0]!;
  }

  /** Natural-log entropy of the entropy model's next-byte distribution at every position, [B·N]. */
  entropies(tokens: Int32Array, batchSize: number, length: number): Float32Array {
    const result = tf.tidy(() => {
      const logits = this.entropyModel.forward({
        tokens,
        batchSize,
        length,
        promptLengths: new Int32Array(batchSize),
      });
      const logP = tf.logSoftmax(logits);
      return tf.neg(tf.sum(tf.mul(tf.exp(logP), logP), -1));
    });
    try {
      return result.dataSync() as Float32Array;
    } finally {
      result.dispose();
    }
  }

  /** The entropy threshold in use: the config's until calibrated or imported with weights. */
  get entropyThreshold(): number {
    return this.threshold;
  }

  /**
   * Sets the global entropy threshold at which the entropy model cuts `windows` into patches of
   * `meanPatchLength` bytes on average, and returns it: a patch starts where H > threshold, so it
   * is the entropy quantile at 1 − 1/meanPatchLength. The threshold travels with the weights
   * (`patching/entropy_threshold`), so every actor that imports them patches alike.
   */
  calibrateEntropyThreshold(windows: readonly Int32Array[], meanPatchLength: number): number {
    if (this.config.patching.mode !== "entropy")
      throw new Error("calibrateEntropyThreshold: patching is not by entropy");
    if (!(meanPatchLength >= 1)) {
      throw new Error(`calibrateEntropyThreshold: meanPatchLength must be ≥ 1, got ${meanPatchLength}`);
    }
    const all: number[] = [];
    for (const w of windows) all.push(...this.entropies(w, 1, w.length));
    if (all.length === 0) throw new Error("calibrateEntropyThreshold: no bytes");
    all.sort((a, b) => a - b);
    this.threshold = all[Math.min(all.length - 1, Math.floor(all.length * (1 - 1 / meanPatchLength)))]!;
    return this.threshold;
  }

  async exportWeights(): Promise<Uint8Array> {
    const threshold = tf.tensor1d([this.threshold]);
    try {
      return await encodeNamedTensors(POLICY_WEIGHTS_KIND, [
        ...this.allWeights().map(({ name, variable }) => ({ name, tensor: variable })),
        { name: THRESHOLD_WEIGHT, tensor: threshold },
      ]);
    } finally {
      threshold.dispose();
    }
  }

  async importWeights(bytes: Uint8Array, source = "weights"): Promise<void> {
    const decoded = decodeNamedTensors(bytes, POLICY_WEIGHTS_KIND, source);
    const all = this.allWeights();
    try {
      checkTensorsMatch(
        decoded,
        [...all.map(({ name, variable }) => ({ name, shape: variable.shape })), { name: THRESHOLD_WEIGHT, shape: [1] }],
        source,
      );
      for (const { name, variable } of all) variable.assign(decoded.get(name)!);
      this.threshold = decoded.get(THRESHOLD_WEIGHT)!.dataSync()[0]!;
    } finally {
      for (const t of decoded.values()) t.dispose();
    }
  }

  dispose(): void {
    this.network.dispose();
    this.entropyModel.dispose();
  }

  private allWeights(): { name: string; variable: tf.Variable }[] {
    return [
      ...this.trainableVariables.map((variable, i) => ({ name: this.variableNames[i]!, variable })),
      ...this.entropyModel.trainableVariables.map((variable, i) => ({
        name: `entropy_model/${this.entropyModel.variableNames[i]!}`,
        variable,
      })),
    ];
  }

  private patchRows(tokens: Int32Array, frame: Frame): number[][] {
    const { batchSize: B, length: N, rowLengths } = frame;
    const entropies = this.config.patching.mode === "entropy" ? this.entropies(tokens, B, N) : undefined;
    const rows: number[][] = [];
    for (let b = 0; b < B; b++) {
      const n = rowLengths[b]!;
      const lengths = this.rowPatchLengths(tokens.subarray(b * N, b * N + n), entropies?.subarray(b * N, b * N + n));
      this.patchCounts.patches += lengths.length;
      this.patchCounts.bytes += n + 1;
      rows.push(lengths);
    }
    return rows;
  }

  /** Patch lengths of one row including the next position; `entropies` (one per byte) in entropy mode. */
  private rowPatchLengths(row: ArrayLike<number>, entropies: ArrayLike<number> | undefined): number[] {
    const { patching } = this.config;
    if (patching.mode === "entropy") {
      if (entropies === undefined) throw new Error("BLT patching: entropy mode without entropies");
      return entropyPatchLengths(entropies, { ...patching, threshold: this.threshold, includeNextToken: true });
    }
    if (patching.mode === "space") return spacePatchLengths(row, { ...patching, includeNextToken: true });
    // BOS alone, then fixed-size patches, so the first patch is one byte as in the dynamic modes.
    return [1, ...staticPatchLengths(row.length, patching.patchSize, { includeNextToken: false })];
  }

  private layout(tokens: Int32Array, frame: Frame): BatchLayout {
    return batchLayout(frame.rowLengths, frame.length, this.patchRows(tokens, frame), this.config.keysPerPatch);
  }
}

/** The entropy model's dense config: same bytes, the BLT's sequence length. */
function entropyModelConfig(config: BltConfig): DenseConfig {
  const { dModel, layers, heads, dFF } = config.entropyModel;
  return {
    backbone: "dense",
    vocabSize: config.vocabSize,
    maxSeqLen: config.maxSeqLen,
    // Dense wants in-range ids for every special; BOE stands in for the absent think tokens.
    specialTokens: { pad: PAD, bos: BOS, eos: EOS, thinkOpen: BOE, thinkClose: BOE },
    initSeed: mixSeed(config.initSeed, 1),
    dModel,
    nLayers: layers,
    nHeads: heads,
    dFF,
    positions: "rope",
  };
}

function checkTokens(tokens: Int32Array, expected: number, config: BltConfig, caller: string): void {
  if (tokens.length !== expected) throw new Error(`${caller}: ${tokens.length} tokens, expected ${expected}`);
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) {
      throw new Error(`${caller}: token id ${t} outside [0, ${config.vocabSize})`);
    }
  }
}

/** Throws one error naming every bad field. */
export function validateBltConfig(config: BltConfig): void {
  const problems: string[] = [];
  const positiveInt = (name: string, value: unknown) => {
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      problems.push(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
    }
  };
  if (config.backbone !== "blt") problems.push(`backbone must be "blt", got ${JSON.stringify(config.backbone)}`);
  if (config.vocabSize !== BLT_VOCAB_SIZE)
    problems.push(`vocabSize must be ${BLT_VOCAB_SIZE} (256 bytes + 4 specials), got ${config.vocabSize}`);
  positiveInt("maxSeqLen", config.maxSeqLen);
  const { local, global, hash, entropyModel, patching } = config;
  for (const [k, v] of Object.entries(local ?? {})) positiveInt(`local.${k}`, v);
  for (const [k, v] of Object.entries(global ?? {})) positiveInt(`global.${k}`, v);
  for (const [k, v] of Object.entries(entropyModel ?? {})) positiveInt(`entropyModel.${k}`, v);
  positiveInt("keysPerPatch", config.keysPerPatch);
  positiveInt("hash.buckets", hash?.buckets);
  positiveInt("hash.functions", hash?.functions);
  if (hash && hash.functions > 11)
    problems.push(`hash.functions must be ≤ 11 (the reference's primes), got ${hash.functions}`);
  if (!Array.isArray(hash?.ngrams) || hash.ngrams.length === 0) problems.push("hash.ngrams must list at least one n");
  else for (const [i, n] of hash.ngrams.entries()) positiveInt(`hash.ngrams[${i}]`, n);
  const evenHeads = (name: string, d: number, h: number) => {
    if (d % h !== 0 || (d / h) % 2 !== 0)
      problems.push(`${name}: heads (${h}) must divide dModel (${d}) into even head sizes`);
  };
  if (local) evenHeads("local", local.dModel, local.heads);
  if (global) evenHeads("global", global.dModel, global.heads);
  if (entropyModel) evenHeads("entropyModel", entropyModel.dModel, entropyModel.heads);
  if (patching?.mode === "entropy") {
    if (!Number.isFinite(patching.threshold))
      problems.push(`patching.threshold must be a number, got ${patching.threshold}`);
  } else if (patching?.mode === "static") {
    positiveInt("patching.patchSize", patching.patchSize);
  } else if (patching?.mode !== "space") {
    problems.push(
      `patching.mode must be "entropy" | "space" | "static", got ${JSON.stringify((patching as { mode?: unknown })?.mode)}`,
    );
  }
  if (problems.length > 0) throw new Error(`invalid BLT config: ${problems.join("; ")}`);
}
