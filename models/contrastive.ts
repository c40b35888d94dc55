/**
 * A CLIP-style dual encoder, small enough to train in minutes on two cores: an image tower over a
 * picture's VQ tokens, a text tower over a caption's words, each projected into one shared space and
 * L2-normalised, trained with CLIP's symmetric InfoNCE loss at a learned temperature (Radford et al.
 * 2021). The retrieval bi-encoder (models/retrieval/dense.ts) is text–text with a fixed temperature;
 * this one is image–text and learns its temperature.
 *
 * Image tower: x = reshape(E_img[token_p] + P[p], p = 1…T) → ReLU(x·W1 + b1) → ·W2. Position-aware
 * (a red cap and a red coat are the same code at different places), one hidden layer: a step on a
 * batch of 128 is a few milliseconds of matMuls.
 * Text tower: h = mean of E_txt over the text's known words → h + ReLU(h·U1 + c1) → ·U2. A bag of
 * words: captions here are short and their order carries little (a name, a colour, a noun).
 */
import * as tf from "@tensorflow/tfjs";
import type { Policy } from "./policy.ts";
import { mixSeed, mulberry32, normalArray } from "./random.ts";
import { retrievalWords } from "./retrieval/words.ts";
import { assignPolicyWeights, encodePolicyWeights, trainableVariable } from "./weights-file.ts";

/** What builds an encoder; saved in its checkpoint's manifest. */
export interface ContrastiveConfig {
  readonly backbone: "contrastive";
  /** Codes of the VQ codebook the image tower reads (token ids 0 … imageVocab − 1). */
  readonly imageVocab: number;
  /** Tokens per picture (the codebook's patches). */
  readonly imageTokens: number;
  /** The text tower's words (lower-cased, `retrievalWords`); other words are skipped. */
  readonly words: readonly string[];
  /** Width of the token and word embeddings. */
  readonly embedding: number;
  /** Hidden width of both towers. */
  readonly hidden: number;
  /** Width of the shared space. */
  readonly shared: number;
  /** Initial temperature τ₀ (CLIP: 0.07); the loss learns log(1/τ), capped at log 100. */
  readonly initialTemperature: number;
  readonly initSeed: number;
}

/** CLIP caps the learned logit scale 1/τ at 100, so the temperature cannot collapse. */
export const MAX_LOGIT_SCALE = 100;

/** L2-normalised rows. */
export const normalizeRows = (x: tf.Tensor2D): tf.Tensor2D =>
  tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));

/**
 * CLIP's loss for B matched (image, text) pairs, row i of each the same pair: with u, v the
 * L2-normalised embeddings and s = min(exp(logScale), 100), logits = s·u·vᵀ (B×B); the loss is the
 * mean of the cross-entropy of each image against the B texts (its own is the label) and of each text
 * against the B images. Pure and differentiable in all three inputs.
 */
export function clipLoss(images: tf.Tensor2D, texts: tf.Tensor2D, logScale: tf.Scalar): tf.Scalar {
  return tf.tidy(() => {
    const [b] = images.shape;
    const scale = tf.minimum(tf.exp(logScale), MAX_LOGIT_SCALE);
    const logits = tf.mul(tf.matMul(normalizeRows(images), normalizeRows(texts), false, true), scale) as tf.Tensor2D;
    const labels = tf.oneHot(tf.range(0, b, 1, "int32"), b);
    const imageToText = tf.losses.softmaxCrossEntropy(labels, logits);
    const textToImage = tf.losses.softmaxCrossEntropy(labels, tf.transpose(logits));
    return tf.mul(tf.add(imageToText, textToImage), 0.5) as tf.Scalar;
  });
}

export class ContrastiveEncoderError extends Error {
  override readonly name = "ContrastiveEncoderError";
}

let nextInstance = 0;

/** The image and text towers and the learned temperature; owns its variables (`dispose`). */
export class ContrastiveEncoder implements Pick<Policy, "trainableVariables" | "variableNames" | "dispose"> {
  readonly config: ContrastiveConfig;
  readonly trainableVariables: tf.Variable[];
  readonly variableNames: string[];
  private readonly wordIds: ReadonlyMap<string, number>;
  private readonly v: Record<string, tf.Variable>;

  constructor(config: ContrastiveConfig) {
    const { imageVocab, imageTokens, words, embedding, hidden, shared } = config;
    for (const [name, value] of Object.entries({ imageVocab, imageTokens, embedding, hidden, shared }))
      if (!Number.isInteger(value) || value < 1)
        throw new ContrastiveEncoderError(`${name}: ${value}; expected an integer ≥ 1`);
    if (words.length === 0) throw new ContrastiveEncoderError("words: the text tower needs at least one word");
    if (!(config.initialTemperature > 1 / MAX_LOGIT_SCALE && config.initialTemperature <= 1))
      throw new ContrastiveEncoderError(
        `initialTemperature: ${config.initialTemperature}; expected a number in (0.01, 1]`,
      );
    this.config = config;
    this.wordIds = new Map(words.map((w, i) => [w, i]));
    const random = mulberry32(mixSeed(config.initSeed, 29));
    // tfjs variable names are global: one prefix per instance; weight files use the logical names.
    const prefix = `contrastive${nextInstance++}/`;
    const variable = (values: Float32Array, shape: number[], name: string) =>
      trainableVariable(values, shape, prefix + name);
    const table = (rows: number, cols: number, name: string) =>
      variable(normalArray(rows * cols, 0.1, random), [rows, cols], name);
    const dense = (rows: number, cols: number, name: string) =>
      variable(normalArray(rows * cols, Math.sqrt(2 / rows), random), [rows, cols], name);
    const zeros = (n: number, name: string) => variable(new Float32Array(n), [n], name);
    this.v = {
      "image/tokens": table(imageVocab, embedding, "image/tokens"),
      "image/positions": table(imageTokens, embedding, "image/positions"),
      "image/w1": dense(imageTokens * embedding, hidden, "image/w1"),
      "image/b1": zeros(hidden, "image/b1"),
      "image/w2": dense(hidden, shared, "image/w2"),
      "text/words": table(words.length, embedding, "text/words"),
      "text/u1": dense(embedding, hidden, "text/u1"),
      "text/c1": zeros(hidden, "text/c1"),
      "text/u2": dense(hidden, shared, "text/u2"),
      "text/skip": dense(embedding, shared, "text/skip"),
      logScale: variable(Float32Array.of(Math.log(1 / config.initialTemperature)), [], "logScale"),
    };
    this.variableNames = Object.keys(this.v);
    this.trainableVariables = this.variableNames.map((n) => this.v[n]!);
  }

  /** log(1/τ), the learned logit scale before the cap. */
  get logScale(): tf.Variable {
    return this.v.logScale!;
  }

  parameterCount(): number {
    return this.trainableVariables.reduce((n, v) => n + v.size, 0);
  }

  /** Image embeddings (not normalised), `[B, shared]`, for B pictures' tokens laid end to end. */
  embedImages(tokens: Int32Array): tf.Tensor2D {
    const { imageTokens, imageVocab, embedding } = this.config;
    if (tokens.length % imageTokens !== 0)
      throw new ContrastiveEncoderError(
        `image tokens: ${tokens.length} is not a multiple of ${imageTokens} tokens per picture`,
      );
    const bad = tokens.findIndex((t) => !(t >= 0 && t < imageVocab));
    if (bad >= 0)
      throw new ContrastiveEncoderError(
        `image tokens: picture ${Math.floor(bad / imageTokens)} has token ${tokens[bad]} outside 0..${imageVocab - 1}`,
      );
    const b = tokens.length / imageTokens;
    return tf.tidy(() => {
      const v = this.v;
      const ids = tf.tensor1d(tokens, "int32");
      const x = tf.add(
        tf.reshape(tf.gather(v["image/tokens"]!, ids), [b, imageTokens, embedding]),
        v["image/positions"]!,
      );
      const h = tf.relu(tf.add(tf.matMul(tf.reshape(x, [b, imageTokens * embedding]), v["image/w1"]!), v["image/b1"]!));
      return tf.matMul(h, v["image/w2"]!) as tf.Tensor2D;
    });
  }

  /** The text tower's input: per text, its known words' ids (unknown words skipped). */
  textWordIds(text: string): number[] {
    return retrievalWords(text).flatMap((w) => {
      const id = this.wordIds.get(w);
      return id === undefined ? [] : [id];
    });
  }

  /** Text embeddings (not normalised), `[B, shared]`; a text with no known word embeds as the zero bag. */
  embedTexts(texts: readonly string[]): tf.Tensor2D {
    const vocabulary = this.config.words.length;
    const bags = new Float32Array(texts.length * vocabulary);
    texts.forEach((text, r) => {
      const ids = this.textWordIds(text);
      for (const id of ids) bags[r * vocabulary + id]! += 1 / ids.length;
    });
    return tf.tidy(() => {
      const v = this.v;
      const h = tf.matMul(tf.tensor2d(bags, [texts.length, vocabulary]), v["text/words"]!);
      const deep = tf.matMul(tf.relu(tf.add(tf.matMul(h, v["text/u1"]!), v["text/c1"]!)), v["text/u2"]!);
      return tf.add(deep, tf.matMul(h, v["text/skip"]!)) as tf.Tensor2D;
    });
  }

  /** The loss of one batch of matched pairs (differentiable: for `optimizer.minimize`). */
  loss(imageTokens: Int32Array, texts: readonly string[]): tf.Scalar {
    return tf.tidy(() => clipLoss(this.embedImages(imageTokens), this.embedTexts(texts), this.logScale as tf.Scalar));
  }

  exportWeights(): Promise<Uint8Array> {
    return encodePolicyWeights(this.trainableVariables, this.variableNames);
  }

  async importWeights(bytes: Uint8Array, source = "contrastive encoder weights"): Promise<void> {
    assignPolicyWeights(this.trainableVariables, this.variableNames, bytes, source);
  }

  dispose(): void {
    for (const v of this.trainableVariables) v.dispose();
  }
}

/** Row-normalised embeddings as one Float32Array (row-major), read outside any tidy. */
export async function normalizedEmbeddings(embed: () => tf.Tensor2D): Promise<Float32Array> {
  const normalised = tf.tidy(() => normalizeRows(embed()));
  const data = (await normalised.data()) as Float32Array;
  normalised.dispose();
  return data;
}
