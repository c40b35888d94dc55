/**
 * The Mixture-of-Transformers backbone (Liang et al. 2024): the dense decoder with every
 * non-embedding parameter — Q, K, V, O, the FFN, the norms — owned per modality. Each token is
 * projected by its own modality's weights; attention stays global over the whole causal sequence.
 * Token embedding, position embedding and output layer are shared (one vocabulary). Which groups
 * are untied is config, as in the paper's ablation. Same FLOPs per token as dense of equal shape.
 *
 * Layout: the residual stream lives grouped by modality (routing.ts), so each modality's
 * projections are one plain 2-D matMul on a contiguous block of rows. Only attention runs in
 * sequence order: Q, K and V are gathered back into it, dense's attention runs (RoPE, causal mask,
 * KV cache), and its context is gathered into groups again — two row gathers per layer, whose
 * gradient is the UnsortedSegmentSum kernel. Modalities come from the tokens (`tokenModalities`),
 * never from variables.
 */
import * as tf from "@tensorflow/tfjs";
import {
  answerLogProbsFromHidden,
  attendHeads,
  beginCachedDecode,
  checkBatch,
  type DenseConfig,
  type Frame,
  type LayerCache,
  packPromptAnswers,
  rmsNorm,
  ropeTables,
  trainingFrame,
  transformerFlopsPerToken,
  transformerShapeProblems,
} from "../dense.ts";
import {
  type AnswerLogProbs,
  batchModalities,
  isImageToken,
  Modality,
  type ModalityMarkers,
  modalityMarkers,
  type Policy,
  type PromptAnswerBatch,
  type SampleResult,
  type SamplingOptions,
  type TokenBatch,
  tokenModalities,
} from "../policy.ts";
import { mulberry32, normalArray } from "../random.ts";
import { type DecodeSession, sampleBatch } from "../sampling.ts";
import { registerWasmSegmentSum } from "../segment-sum-kernel.ts";
import { assignPolicyWeights, encodePolicyWeights, trainableVariable } from "../weights-file.ts";
import { type Grouping, groupBySlot } from "./routing.ts";

export type ModalityName = keyof typeof Modality;

/** Parameter groups owned per modality: the FFN; the FFN and attention (Q, K, V, O); everything. */
export type MotUntie = "ffn" | "ffn+attention" | "all";
export const MOT_UNTIE_CHOICES: readonly MotUntie[] = ["ffn", "ffn+attention", "all"];

/** Every text token is prompt, reasoning or answer (`tokenModalities`), so these always have weights. */
export const TEXT_MODALITIES: readonly ModalityName[] = ["prompt", "reasoning", "answer"];

export interface MotConfig extends Omit<DenseConfig, "backbone"> {
  readonly backbone: "mot";
  /** Which groups are owned per modality; default "all" (the paper's MoT: norms too). */
  readonly untie?: MotUntie;
  /**
   * Modalities with weights of their own, in order; default prompt, reasoning, answer. Must hold
   * those three; add "image" for an environment with image features.
   */
  readonly modalities?: readonly ModalityName[];
}

/**
 * One layer's weights. A list holds one variable per configured modality when its group is untied,
 * else a single shared one (`pick` hides the difference).
 */
interface MotLayer {
  readonly norm1: readonly tf.Variable[];
  readonly wq: readonly tf.Variable[];
  readonly wk: readonly tf.Variable[];
  readonly wv: readonly tf.Variable[];
  readonly wo: readonly tf.Variable[];
  readonly norm2: readonly tf.Variable[];
  readonly w1: readonly tf.Variable[];
  readonly w2: readonly tf.Variable[];
}

const pick = (weights: readonly tf.Variable[], slot: number): tf.Variable =>
  weights.length === 1 ? weights[0]! : weights[slot]!;

let nextInstance = 0;

export class MotPolicy implements Policy {
  readonly config: MotConfig;
  readonly trainableVariables: readonly tf.Variable[];
  readonly variableNames: readonly string[];
  readonly modalities: readonly ModalityName[];
  readonly untie: MotUntie;
  private readonly untied: { readonly norms: boolean; readonly attention: boolean };
  /** Modality id (`Modality.*`) → weight slot (index in `modalities`); image falls back to prompt's. */
  private readonly slotOf: Int32Array;
  private readonly markers: ModalityMarkers;
  /** A variable's name → the name its tensor has in a dense model of the same shape. */
  private readonly denseNames: ReadonlyMap<string, string>;
  /** Each slot's own (untied) variables. */
  private readonly slotVariables: readonly (readonly tf.Variable[])[];
  private readonly tokenEmbedding: tf.Variable;
  private readonly positionEmbedding: tf.Variable | undefined;
  private readonly layers: readonly MotLayer[];
  private readonly finalNorm: readonly tf.Variable[];
  private readonly output: tf.Variable;

  constructor(config: MotConfig) {
    validateMotConfig(config);
    registerWasmSegmentSum();
    this.config = config;
    this.modalities = config.modalities ?? TEXT_MODALITIES;
    this.untie = config.untie ?? "all";
    this.untied = { norms: this.untie === "all", attention: this.untie !== "ffn" };
    this.slotOf = new Int32Array(Object.keys(Modality).length).fill(-1);
    this.modalities.forEach((name, slot) => {
      this.slotOf[Modality[name]] = slot;
    });
    // Image tokens without weights of their own are read by the prompt's (they are part of the prompt).
    if (this.slotOf[Modality.image] === -1) this.slotOf[Modality.image] = this.slotOf[Modality.prompt]!;
    this.markers = modalityMarkers(config);
    const { vocabSize: V, dModel: d, dFF, nLayers, maxSeqLen } = config;
    const random = mulberry32(config.initSeed);
    const prefix = `mot${nextInstance++}/`;
    const names: string[] = [];
    const variables: tf.Variable[] = [];
    const denseNames = new Map<string, string>();
    const slotVariables = this.modalities.map(() => [] as tf.Variable[]);
    const make = (name: string, denseName: string, shape: number[], init: "normal" | "ones", std: number) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const values = init === "ones" ? new Float32Array(size).fill(1) : normalArray(size, std, random);
      const variable = trainableVariable(values, shape, prefix + name);
      names.push(name);
      variables.push(variable);
      denseNames.set(name, denseName);
      return variable;
    };
    /** `scope/leaf` shared, or `scope/<modality>/leaf` once per modality (own initial draws each). */
    const owned = (
      scope: string,
      leaf: string,
      untied: boolean,
      shape: number[],
      init: "normal" | "ones",
      std = 0.02,
    ) => {
      const denseName = scope + leaf;
      if (!untied) return [make(denseName, denseName, shape, init, std)];
      return this.modalities.map((m, slot) => {
        const variable = make(`${scope}${m}/${leaf}`, denseName, shape, init, std);
        slotVariables[slot]!.push(variable);
        return variable;
      });
    };
    const residualStd = 0.02 / Math.sqrt(2 * nLayers); // as dense: flat residual variance in depth
    const { norms, attention } = this.untied;
    this.tokenEmbedding = make("token_embedding", "token_embedding", [V, d], "normal", 0.02);
    this.positionEmbedding =
      config.positions === "learned"
        ? make("position_embedding", "position_embedding", [maxSeqLen, d], "normal", 0.02)
        : undefined;
    this.layers = Array.from({ length: nLayers }, (_, i) => {
      const scope = `layer${i}/`;
      return {
        norm1: owned(scope, "norm1", norms, [d], "ones"),
        wq: owned(scope, "wq", attention, [d, d], "normal"),
        wk: owned(scope, "wk", attention, [d, d], "normal"),
        wv: owned(scope, "wv", attention, [d, d], "normal"),
        wo: owned(scope, "wo", attention, [d, d], "normal", residualStd),
        norm2: owned(scope, "norm2", norms, [d], "ones"),
        w1: owned(scope, "w1", true, [d, dFF], "normal"),
        w2: owned(scope, "w2", true, [dFF, d], "normal", residualStd),
      };
    });
    this.finalNorm = owned("", "final_norm", norms, [d], "ones");
    this.output = make("output", "output", [d, V], "normal", 0.02);
    this.trainableVariables = variables;
    this.variableNames = names;
    this.denseNames = denseNames;
    this.slotVariables = slotVariables;
  }

  parameterCount(): number {
    return this.trainableVariables.reduce((sum, v) => sum + v.size, 0);
  }

  /** Each token goes through one modality's weights: the same compute as dense of equal shape. */
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
    const slots = this.slotsOf(batchModalities(batch, this.markers));
    return tf.tidy(() => {
      const frame = trainingFrame(batch.batchSize, batch.length);
      const { hidden } = this.runCached(batch.tokens, slots, frame, undefined);
      return hidden.reshape([batch.batchSize, batch.length, this.config.dModel]) as tf.Tensor3D;
    });
  }

  answerLogProbs(batch: PromptAnswerBatch, options: { readonly temperature?: number } = {}): AnswerLogProbs {
    const packed = packPromptAnswers(batch, this.config);
    const rows = {
      tokens: packed.tokens,
      batchSize: packed.batchSize,
      length: packed.length,
      promptLengths: Int32Array.from(batch.prompts, (p) => p.length),
    };
    const slots = this.slotsOf(batchModalities(rows, this.markers));
    return tf.tidy(() => {
      const frame = trainingFrame(packed.batchSize, packed.length);
      const { hidden } = this.runCached(packed.tokens, slots, frame, undefined);
      const scored = answerLogProbsFromHidden(hidden, packed, (h) => this.logits(h), options.temperature ?? 1);
      return { logProbs: scored.logProbs, mask: scored.mask };
    });
  }

  sample(prompts: readonly Int32Array[], options: SamplingOptions): Promise<SampleResult> {
    return sampleBatch(this.config, (rows) => this.beginDecode(rows), prompts, options);
  }

  /**
   * KV-cached decoding (see dense's `beginCachedDecode`). The prefill is all prompt; each decoded
   * token's modality follows from what its row generated so far (`<think>` … `</think>` reasoning,
   * the rest answer).
   */
  beginDecode(prompts: readonly Int32Array[]): Promise<DecodeSession> {
    const generated = prompts.map(() => [] as number[]);
    const { imageTokens } = this.markers;
    const [promptSlot, imageSlot] = [this.slotOf[Modality.prompt]!, this.slotOf[Modality.image]!];
    return beginCachedDecode(
      {
        dModel: this.config.dModel,
        pad: this.config.specialTokens.pad,
        runCached: (tokens, frame, past) => {
          const prefill = past.length === 0;
          const slots = prefill
            ? Int32Array.from(tokens, (token) => (isImageToken(token, imageTokens) ? imageSlot : promptSlot))
            : Int32Array.from(tokens, (token, b) => {
                const row = generated[b]!;
                row.push(token);
                return this.slotOf[tokenModalities(row, 0, this.markers)[row.length - 1]!]!;
              });
          return this.runCached(tokens, slots, frame, past);
        },
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

  /**
   * Loads a dense policy's weights (same shape) into every modality's copy: the MoT then computes
   * exactly what that dense model computes, and training lets the modalities drift apart.
   */
  async importDenseWeights(bytes: Uint8Array, source = "dense weights"): Promise<void> {
    assignPolicyWeights(
      this.trainableVariables,
      this.variableNames,
      bytes,
      source,
      (name) => this.denseNames.get(name)!,
    );
  }

  dispose(): void {
    for (const v of this.trainableVariables) v.dispose();
  }

  /** Weight slot of every token from its modality id. */
  private slotsOf(modalities: Int32Array): Int32Array {
    return modalities.map((m) => this.slotOf[m]!);
  }

  /**
   * Embeds `tokens` (the frame's new positions, each with its weight slot) and runs every layer
   * attending over `past` (if any) plus the new positions: final hidden states in sequence order
   * [B·T, d], and the grown cache when `past` is given.
   */
  private runCached(
    tokens: Int32Array,
    slots: Int32Array,
    frame: Frame,
    past: readonly LayerCache[] | undefined,
  ): { hidden: tf.Tensor2D; cache: LayerCache[] } {
    const { nHeads } = this.config;
    const grouping = groupBySlot(slots, this.modalities.length);
    const order = grouping.identity ? undefined : tf.tensor1d(grouping.order, "int32");
    const inverse = grouping.identity ? undefined : tf.tensor1d(grouping.inverse, "int32");
    const toGroups = (rows: tf.Tensor2D) => (order ? (tf.gather(rows, order) as tf.Tensor2D) : rows);
    const toSequence = (rows: tf.Tensor2D) => (inverse ? (tf.gather(rows, inverse) as tf.Tensor2D) : rows);
    // Embedding straight into grouped order: gather the grouped token ids and positions.
    const groupedIds = grouping.order.map((row) => tokens[row]!);
    let x = tf.gather(this.tokenEmbedding, tf.tensor1d(groupedIds, "int32")) as tf.Tensor2D;
    if (this.positionEmbedding) {
      const groupedPositions = grouping.order.map((row) => frame.positions[row]!);
      x = tf.add(x, tf.gather(this.positionEmbedding, tf.tensor1d(groupedPositions, "int32")));
    }
    const rope =
      this.config.positions === "rope"
        ? ropeTables(frame, this.config.dModel / nHeads, this.config.ropeBase ?? 10000)
        : undefined;
    const { norms, attention } = this.untied;
    const cache: LayerCache[] = [];
    this.layers.forEach((layer, i) => {
      const [q, k, v] = byModality(x, grouping, norms || attention, (rows, slot) => {
        const h = rmsNorm(rows, pick(layer.norm1, slot));
        return [
          tf.matMul(h, pick(layer.wq, slot)),
          tf.matMul(h, pick(layer.wk, slot)),
          tf.matMul(h, pick(layer.wv, slot)),
        ];
      }).map(toSequence) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      const attended = attendHeads(q, k, v, frame, rope, past?.[i], nHeads);
      if (past) cache.push(attended.cache);
      const [out] = byModality(toGroups(attended.context), grouping, attention, (rows, slot) => [
        tf.matMul(rows, pick(layer.wo, slot)),
      ]);
      x = tf.add(x, out!);
      const [ffn] = byModality(x, grouping, true, (rows, slot) => {
        const up = tf.matMul(rmsNorm(rows, pick(layer.norm2, slot)), pick(layer.w1, slot));
        return [tf.matMul(tf.mul(up, tf.sigmoid(up)), pick(layer.w2, slot))];
      });
      x = tf.add(x, ffn!);
    });
    const [normed] = byModality(x, grouping, norms, (rows, slot) => [rmsNorm(rows, pick(this.finalNorm, slot))]);
    const hidden = toSequence(normed!);
    return { hidden: past ? hidden : this.connectAbsentModalities(hidden, grouping), cache };
  }

  /**
   * Training path: adds 0·Σ(weights of modalities absent from the batch), so every variable gets a
   * gradient (zeros for those) as with dense — optimisers and gradient clipping that expect one
   * gradient per variable work unchanged (tfjs leaves unconnected variables out).
   */
  private connectAbsentModalities(hidden: tf.Tensor2D, grouping: Grouping): tf.Tensor2D {
    const present = new Set(grouping.groups.map((g) => g.slot));
    const absent = this.slotVariables.filter((_, slot) => !present.has(slot)).flat();
    if (absent.length === 0) return hidden;
    return tf.add(hidden, tf.mul(tf.addN(absent.map((v) => tf.sum(v))), 0));
  }

  private logits(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(hidden, this.output);
  }
}

/**
 * Runs `block` on each modality's contiguous rows of the grouped matrix with that modality's slot
 * and stacks each of its outputs back in grouped order; shared weights (`untied` false) run once on
 * all rows.
 */
function byModality(
  rows: tf.Tensor2D,
  grouping: Grouping,
  untied: boolean,
  block: (rows: tf.Tensor2D, slot: number) => tf.Tensor2D[],
): tf.Tensor2D[] {
  const { groups } = grouping;
  if (!untied || groups.length === 1) return block(rows, groups[0]?.slot ?? 0);
  const parts = tf
    .split(
      rows,
      groups.map((g) => g.rows),
      0,
    )
    .map((part, i) => block(part as tf.Tensor2D, groups[i]!.slot));
  return parts[0]!.map((_, output) =>
    tf.concat(
      parts.map((p) => p[output]!),
      0,
    ),
  );
}

/** Throws one error naming every bad field. */
export function validateMotConfig(config: MotConfig): void {
  const problems = transformerShapeProblems(config);
  if (config.backbone !== "mot") problems.push(`backbone must be "mot", got ${JSON.stringify(config.backbone)}`);
  if (config.untie !== undefined && !MOT_UNTIE_CHOICES.includes(config.untie)) {
    problems.push(`untie must be one of ${MOT_UNTIE_CHOICES.join(" | ")}, got ${JSON.stringify(config.untie)}`);
  }
  const modalities = config.modalities ?? TEXT_MODALITIES;
  const known = Object.keys(Modality);
  for (const name of modalities) {
    if (!known.includes(name)) problems.push(`modality "${name}" is not one of ${known.join(", ")}`);
  }
  if (new Set(modalities).size !== modalities.length) problems.push(`modalities repeat: ${modalities.join(", ")}`);
  for (const name of TEXT_MODALITIES) {
    if (!modalities.includes(name)) problems.push(`modalities must include "${name}" (text tokens are ${name} tokens)`);
  }
  if (problems.length > 0) throw new Error(`invalid mot model config: ${problems.join("; ")}`);
}
