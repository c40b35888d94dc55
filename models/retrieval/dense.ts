/**
 * The dense retriever: a bi-encoder trained here with in-batch InfoNCE (DPR's loss) on
 * (question, supporting document) pairs, and exact inner-product search over its document
 * embeddings.
 *
 * Encoder (one tower for questions and documents, so a name seen only in documents still matches
 * itself in a question): e(text) = normalise(Σ_w idf(w)·count(w)·E[w]), E a |V|×d table. Loss per
 * batch of B pairs with distinct groups (entities): the cross-entropy of each question against the B
 * documents (its own is the positive, the others in-batch negatives) at temperature τ, averaged with
 * the same for documents against questions.
 */
import * as tf from "@tensorflow/tfjs";
import { mixSeed, mulberry32 } from "../random.ts";
import { memoByIndex, type Scored, topScores } from "./select.ts";
import { retrievalWords } from "./words.ts";

export interface BiEncoderSettings {
  /** Embedding size d. */
  readonly dim: number;
  readonly steps: number;
  /** Pairs per batch B (each question's B − 1 in-batch negatives). */
  readonly batchSize: number;
  readonly learningRate: number;
  /** InfoNCE temperature τ. */
  readonly temperature: number;
  readonly seed: number;
}

export const DEFAULT_BI_ENCODER: BiEncoderSettings = {
  dim: 64,
  steps: 300,
  batchSize: 64,
  learningRate: 0.01,
  temperature: 0.05,
  seed: 1,
};

/** A (question, supporting document) pair; pairs of one group (entity) never share a batch. */
export interface TrainingPair {
  readonly query: string;
  readonly document: number;
  readonly group: string;
}

/** Word ids and idf weights: what turns a text into the encoder's input. */
export interface Featurizer {
  readonly vocabulary: readonly string[];
  /** idf(w) = ln(1 + N / (1 + df(w))) over the corpus. */
  readonly idf: Float32Array;
  /** (word id, weight) pairs of a text's known words. */
  readonly features: (words: readonly string[]) => Map<number, number>;
}

export function makeFeaturizer(vocabulary: readonly string[], texts: readonly string[]): Featurizer {
  const ids = new Map(vocabulary.map((word, i) => [word, i]));
  const df = new Float32Array(vocabulary.length);
  for (const text of texts)
    for (const id of new Set(retrievalWords(text).map((w) => ids.get(w)))) if (id !== undefined) df[id]! += 1;
  const idf = df.map((d) => Math.log(1 + texts.length / (1 + d)));
  return {
    vocabulary,
    idf,
    features: (words) => {
      const out = new Map<number, number>();
      for (const word of words) {
        const id = ids.get(word);
        if (id !== undefined) out.set(id, (out.get(id) ?? 0) + idf[id]!);
      }
      return out;
    },
  };
}

/** e(text): the normalised idf-weighted sum of the words' rows of E (row-major |V|×d). */
export function embed(features: ReadonlyMap<number, number>, encoder: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(dim);
  for (const [id, weight] of features) for (let j = 0; j < dim; j++) out[j]! += weight * encoder[id * dim + j]!;
  let norm = 0;
  for (let j = 0; j < dim; j++) norm += out[j]! * out[j]!;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let j = 0; j < dim; j++) out[j]! /= norm;
  return out;
}

/** Batches of `size` pairs with distinct groups, in a seeded order. */
function batchesOf(pairs: readonly TrainingPair[], size: number, random: () => number): () => TrainingPair[] {
  const order = pairs.map((_, i) => i);
  let cursor = order.length;
  return () => {
    const batch: TrainingPair[] = [];
    const groups = new Set<string>();
    let looked = 0;
    while (batch.length < size && looked < order.length) {
      if (cursor === order.length) {
        for (let i = order.length - 1; i > 0; i--) {
          const j = Math.floor(random() * (i + 1));
          [order[i], order[j]] = [order[j]!, order[i]!];
        }
        cursor = 0;
      }
      const pair = pairs[order[cursor++]!]!;
      looked++;
      if (groups.has(pair.group)) continue;
      groups.add(pair.group);
      batch.push(pair);
    }
    return batch;
  };
}

/** The rows of a batch as a dense |B|×|V| input matrix. */
const inputMatrix = (rows: readonly ReadonlyMap<number, number>[], vocabularySize: number) => {
  const values = new Float32Array(rows.length * vocabularySize);
  rows.forEach((row, r) => {
    for (const [id, weight] of row) values[r * vocabularySize + id] = weight;
  });
  return tf.tensor2d(values, [rows.length, vocabularySize]);
};

const normalisedRows = (x: tf.Tensor2D) => tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-12)));

/** Trains E; returns it (row-major |V|×d) and the loss of every step. */
export async function trainBiEncoder(
  featurizer: Featurizer,
  texts: readonly string[],
  pairs: readonly TrainingPair[],
  settings: BiEncoderSettings,
): Promise<{ readonly encoder: Float32Array; readonly losses: number[] }> {
  if (pairs.length < 2) throw new Error(`bi-encoder: needs at least 2 training pairs, got ${pairs.length}`);
  const random = mulberry32(mixSeed(settings.seed, 17));
  const size = featurizer.vocabulary.length;
  const init = new Float32Array(size * settings.dim);
  // Normal(0, 1/d) by Box–Muller: random rows are nearly orthogonal, so an unseen word matches itself.
  for (let i = 0; i < init.length; i++)
    init[i] = (Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())) / Math.sqrt(settings.dim);
  const encoder = tf.variable(tf.tensor2d(init, [size, settings.dim]));
  const optimizer = tf.train.adam(settings.learningRate);
  const next = batchesOf(pairs, settings.batchSize, random);
  const featuresOfDoc = memoByIndex((index) => featurizer.features(retrievalWords(texts[index]!)));
  const losses: number[] = [];
  try {
    for (let step = 0; step < settings.steps; step++) {
      const batch = next();
      const queries = inputMatrix(
        batch.map((pair) => featurizer.features(retrievalWords(pair.query))),
        size,
      );
      const documents = inputMatrix(
        batch.map((pair) => featuresOfDoc(pair.document)),
        size,
      );
      const labels = tf.oneHot(tf.range(0, batch.length, 1, "int32"), batch.length);
      const loss = optimizer.minimize(
        () =>
          tf.tidy(() => {
            const q = normalisedRows(tf.matMul(queries, encoder));
            const d = normalisedRows(tf.matMul(documents, encoder));
            const logits = tf.div(tf.matMul(q, d, false, true), settings.temperature);
            const forward = tf.losses.softmaxCrossEntropy(labels, logits);
            const backward = tf.losses.softmaxCrossEntropy(labels, tf.transpose(logits));
            return tf.mul(tf.add(forward, backward), 0.5) as tf.Scalar;
          }),
        true,
      );
      losses.push((await loss!.data())[0]!);
      tf.dispose([queries, documents, labels, loss!]);
    }
    return { encoder: (await encoder.data()) as Float32Array, losses };
  } finally {
    encoder.dispose();
    optimizer.dispose();
  }
}

export interface DenseIndex {
  readonly dim: number;
  /** Row-major N×d document embeddings. */
  readonly embeddings: Float32Array;
  readonly candidates: (words: readonly string[], n: number) => Scored[];
  /** Inner product of two documents' embeddings (their cosine: embeddings are normalised). */
  readonly similarity: (a: number, b: number) => number;
}

/**
 * Exact inner-product search: one pass over the N×d embeddings per query (N = 20,000, d = 64: 7 ms a
 * query with the diversity rule, docs/retrieval.md). An approximate index (HNSW, IVF) would replace `candidates` and
 * nothing else, behind the same signature (docs/retrieval.md).
 */
export function denseIndex(
  featurizer: Featurizer,
  encoder: Float32Array,
  dim: number,
  texts: readonly string[],
  embeddings?: Float32Array,
): DenseIndex {
  const matrix = embeddings ?? new Float32Array(texts.length * dim);
  if (embeddings === undefined)
    for (const [i, text] of texts.entries())
      matrix.set(embed(featurizer.features(retrievalWords(text)), encoder, dim), i * dim);
  if (matrix.length !== texts.length * dim)
    throw new Error(`dense index: ${matrix.length} embedding values for ${texts.length} documents of size ${dim}`);
  const count = texts.length;
  const dot = (a: number, b: number) => {
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += matrix[a * dim + j]! * matrix[b * dim + j]!;
    return sum;
  };
  return {
    dim,
    embeddings: matrix,
    candidates: (words, n) => {
      const features = featurizer.features(words);
      if (features.size === 0) return [];
      const query = embed(features, encoder, dim);
      const scores = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        let sum = 0;
        for (let j = 0; j < dim; j++) sum += matrix[i * dim + j]! * query[j]!;
        scores[i] = sum;
      }
      return topScores(scores, n);
    },
    similarity: dot,
  };
}
