/**
 * The attribute classifier: the vision world's "human rater". A small tfjs network trained on
 * rendered pictures reads a picture's entity type and every visual attribute (one softmax head each),
 * so that captions and decoded pictures can be checked by looking, as a person would.
 *
 * Shape: 4×4 patches at stride 2 over the picture padded by one pixel (cut here, in plain JS: the input
 * needs no gradient) → a shared linear filter bank + ReLU (a convolution written as one matMul) → 2×2
 * max-pool → a dense layer → the heads. Written with matMuls and elementwise maxima rather than
 * tf.conv2d and tf.maxPool because the wasm backend has no Conv2DBackpropFilter kernel, its MaxPoolGrad
 * took a third of a training step, and a max over a reshaped 6-D tensor was slower still (broadcast Equal).
 * It uses whatever tfjs backend the caller activated (envs/ does not choose backends).
 */
import * as tf from "@tensorflow/tfjs";
import { createRng, type Rng, shuffled } from "../factworld/random.ts";
import { ENTITY_TYPES, type EntityType } from "../factworld/schema.ts";
import {
  ATTRIBUTES_OF_TYPE,
  type Look,
  VISUAL_ATTRIBUTE_NAMES,
  VISUAL_ATTRIBUTES,
  type VisualAttribute,
} from "./attributes.ts";
import {
  DEFAULT_NUISANCE,
  type NuisanceOptions,
  PICTURE_SIZE,
  type Picture,
  renderPicture,
  validatePicture,
} from "./render.ts";

/** A picture with what it truly shows. */
export interface LabelledPicture {
  readonly picture: Picture;
  readonly look: Look;
}

/** Random looks (types in turn, every value equally likely), each rendered once with its own seed. */
export function samplePictures(
  count: number,
  seed: number,
  nuisance: NuisanceOptions = DEFAULT_NUISANCE,
): LabelledPicture[] {
  const rng = createRng(seed);
  return Array.from({ length: count }, (_, i) => {
    const type = ENTITY_TYPES[i % ENTITY_TYPES.length] as EntityType;
    const values: Partial<Record<VisualAttribute, string>> = {};
    for (const attribute of ATTRIBUTES_OF_TYPE[type]) values[attribute] = rng.pick(VISUAL_ATTRIBUTES[attribute].words);
    const look: Look = { type, values };
    return { look, picture: renderPicture(look, rng.int(0, 2 ** 31), nuisance) };
  });
}

/** One softmax head: the entity type, or one attribute. */
interface Head {
  readonly name: "type" | VisualAttribute;
  readonly classes: readonly string[];
  /** Columns [start, start + classes.length) of the logits. */
  readonly start: number;
  /** Types whose pictures train this head. */
  readonly types: readonly EntityType[];
}

const HEADS: readonly Head[] = (() => {
  const heads: Head[] = [];
  let start = 0;
  const add = (name: Head["name"], classes: readonly string[], types: readonly EntityType[]) => {
    heads.push({ name, classes, start, types });
    start += classes.length;
  };
  add("type", ENTITY_TYPES, ENTITY_TYPES);
  for (const a of VISUAL_ATTRIBUTE_NAMES) add(a, VISUAL_ATTRIBUTES[a].words, [VISUAL_ATTRIBUTES[a].type]);
  return heads;
})();
const LOGITS = HEADS.reduce((n, h) => n + h.classes.length, 0);

/** [logit, head] = 1 when the logit belongs to the head; made on first use (after the caller's backend is set). */
let membership: tf.Tensor2D | undefined;
const HEAD_MEMBERSHIP = (): tf.Tensor2D => {
  if (membership === undefined || membership.isDisposed) {
    const m = new Float32Array(LOGITS * HEADS.length);
    HEADS.forEach((head, h) => {
      for (let k = 0; k < head.classes.length; k++) m[(head.start + k) * HEADS.length + h] = 1;
    });
    membership = tf.keep(tf.tensor2d(m, [LOGITS, HEADS.length]));
  }
  return membership;
};

const KERNEL = 4;
const STRIDE = 2;
const PAD = 1;
const GRID = (PICTURE_SIZE + 2 * PAD - KERNEL) / STRIDE + 1; // 16 positions a side
const PATCH = KERNEL * KERNEL * 3;
const POOLED = GRID / 2; // 8 after a 2×2 max-pool

export interface ClassifierOptions {
  /** Seeds the training pictures, the initial weights and the batch order. */
  readonly seed: number;
  /** Rendered training pictures (types in turn). */
  readonly trainPictures: number;
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Filters of the patch layer. */
  readonly filters: number;
  /** Width of the dense layer. */
  readonly hidden: number;
  readonly nuisance: NuisanceOptions;
}

export const DEFAULT_CLASSIFIER_OPTIONS: ClassifierOptions = {
  seed: 1,
  trainPictures: 3000,
  epochs: 8,
  batchSize: 128,
  learningRate: 5e-3,
  filters: 32,
  hidden: 128,
  nuisance: DEFAULT_NUISANCE,
};

type PatchMatrices = readonly [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];

/**
 * The network's input: overlapping 4×4 patches at stride 2, pixels scaled to [-0.5, 0.5], padding 0.
 * One matrix per corner of the 2×2 pooling window (rows: picture, then pooled position), so that
 * pooling is the elementwise maximum of four matMuls' outputs.
 */
function patchMatrices(pictures: readonly Picture[]): PatchMatrices {
  const out = new Float32Array(pictures.length * GRID * GRID * PATCH);
  pictures.forEach((picture, n) => {
    try {
      validatePicture(picture);
    } catch (error) {
      throw new Error(`picture ${n}: ${(error as Error).message}`);
    }
    const px = picture.pixels;
    for (let gy = 0; gy < GRID; gy++)
      for (let gx = 0; gx < GRID; gx++) {
        const corner = (gy % 2) * 2 + (gx % 2);
        const pooled = (gy >> 1) * POOLED + (gx >> 1);
        let o = ((corner * pictures.length + n) * POOLED * POOLED + pooled) * PATCH;
        for (let ky = 0; ky < KERNEL; ky++) {
          const y = gy * STRIDE + ky - PAD;
          for (let kx = 0; kx < KERNEL; kx++) {
            const x = gx * STRIDE + kx - PAD;
            const inside = y >= 0 && y < PICTURE_SIZE && x >= 0 && x < PICTURE_SIZE;
            const at = (y * PICTURE_SIZE + x) * 3;
            for (let c = 0; c < 3; c++) out[o++] = inside ? (px[at + c] as number) / 255 - 0.5 : 0;
          }
        }
      }
  });
  const rows = pictures.length * POOLED * POOLED;
  const corner = (k: number) => tf.tensor2d(out.subarray(k * rows * PATCH, (k + 1) * rows * PATCH), [rows, PATCH]);
  return [corner(0), corner(1), corner(2), corner(3)];
}

/** What the classifier reads in one picture: its type, and every attribute of that type. */
export type Reading = Look;

export interface ClassifierAccuracy {
  /** Share of pictures whose entity type was read right. */
  readonly type: number;
  /** Per attribute, over the pictures of its type: share read right. */
  readonly byAttribute: Readonly<Partial<Record<VisualAttribute, number>>>;
  /** The lowest of all of them. */
  readonly worst: number;
  readonly pictures: number;
}

type Weights = Record<"w1" | "b1" | "w2" | "b2" | "w3" | "b3", tf.Variable>;

export class AttributeClassifier {
  private constructor(private readonly weights: Weights) {}

  /**
   * Trains a classifier from scratch on rendered pictures; deterministic for a seed on one backend.
   * Yields to the event loop after every batch, so that a process training one stays responsive.
   */
  static async train(
    options: Partial<ClassifierOptions> = {},
    onEpoch?: (epoch: number, loss: number) => void,
  ): Promise<AttributeClassifier> {
    const opts = { ...DEFAULT_CLASSIFIER_OPTIONS, ...options };
    const rng = createRng(opts.seed);
    const classifier = new AttributeClassifier(initialWeights(rng, opts));
    const data = samplePictures(opts.trainPictures, rng.int(0, 2 ** 31), opts.nuisance);
    const optimizer = tf.train.adam(opts.learningRate);
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const order = shuffled(rng, data);
      let total = 0;
      let batches = 0;
      for (let at = 0; at < order.length; at += opts.batchSize) {
        const batch = order.slice(at, at + opts.batchSize);
        const { targets, mask } = targetsOf(batch);
        const input = patchMatrices(batch.map((b) => b.picture));
        const loss = optimizer.minimize(() => classifier.loss(input, targets, mask, batch.length), true) as tf.Scalar;
        total += loss.dataSync()[0] as number;
        batches++;
        tf.dispose([loss, ...input, targets, mask]);
        await new Promise<void>((resume) => setImmediate(resume));
      }
      onEpoch?.(epoch + 1, total / batches);
    }
    optimizer.dispose();
    return classifier;
  }

  private logits(input: PatchMatrices, count: number): tf.Tensor2D {
    const { w1, b1, w2, b2, w3, b3 } = this.weights;
    const filters = w1.shape[1] as number;
    // ReLU commutes with the max: pool the four corners' responses, then one bias and one ReLU.
    const [a, b, c, d] = input.map((corner) => tf.matMul(corner, w1)) as [
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor2D,
      tf.Tensor2D,
    ];
    const pooled = tf
      .relu(tf.add(tf.maximum(tf.maximum(a, b), tf.maximum(c, d)), b1))
      .reshape([count, POOLED * POOLED * filters]) as tf.Tensor2D;
    const hidden = tf.relu(tf.add(tf.matMul(pooled, w2), b2)) as tf.Tensor2D;
    return tf.add(tf.matMul(hidden, w3), b3) as tf.Tensor2D;
  }

  /**
   * Masked cross-entropy summed over heads (a head learns only from pictures of its type), all heads
   * at once: each head's log-sum-exp is a matMul of exp(logits) with the head-membership matrix.
   */
  private loss(input: PatchMatrices, targets: tf.Tensor2D, mask: tf.Tensor2D, count: number): tf.Scalar {
    const logits = this.logits(input, count);
    const shift = tf.max(logits, 1, true);
    const logSumExp = tf.add(tf.log(tf.matMul(tf.exp(tf.sub(logits, shift)), HEAD_MEMBERSHIP())), shift);
    const total = tf.sub(tf.sum(tf.mul(logSumExp, mask)), tf.sum(tf.mul(logits, targets)));
    return tf.div(total, count) as tf.Scalar;
  }

  /** Reads each picture: its most likely type, then that type's attributes. */
  read(pictures: readonly Picture[]): Reading[] {
    if (pictures.length === 0) return [];
    const logits = tf.tidy(() => this.logits(patchMatrices(pictures), pictures.length));
    const values = logits.dataSync();
    logits.dispose();
    const argmax = (row: number, head: Head) => {
      let best = 0;
      for (let k = 1; k < head.classes.length; k++) {
        if ((values[row * LOGITS + head.start + k] as number) > (values[row * LOGITS + head.start + best] as number))
          best = k;
      }
      return head.classes[best] as string;
    };
    const headOf = new Map(HEADS.map((h) => [h.name, h]));
    return pictures.map((_, row) => {
      const type = argmax(row, headOf.get("type") as Head) as EntityType;
      const read: Partial<Record<VisualAttribute, string>> = {};
      for (const attribute of ATTRIBUTES_OF_TYPE[type]) read[attribute] = argmax(row, headOf.get(attribute) as Head);
      return { type, values: read };
    });
  }

  /**
   * Accuracy on labelled pictures: the type over all, each attribute over the pictures of its type
   * (an attribute counts as wrong when the type was misread).
   */
  accuracy(samples: readonly LabelledPicture[], batchSize = 256): ClassifierAccuracy {
    if (samples.length === 0) throw new Error("accuracy needs at least one labelled picture");
    let typeRight = 0;
    const right = new Map<VisualAttribute, number>();
    const seen = new Map<VisualAttribute, number>();
    for (let at = 0; at < samples.length; at += batchSize) {
      const batch = samples.slice(at, at + batchSize);
      const readings = this.read(batch.map((s) => s.picture));
      batch.forEach(({ look }, i) => {
        const reading = readings[i] as Reading;
        if (reading.type === look.type) typeRight++;
        for (const attribute of ATTRIBUTES_OF_TYPE[look.type]) {
          seen.set(attribute, (seen.get(attribute) ?? 0) + 1);
          if (reading.values[attribute] === look.values[attribute])
            right.set(attribute, (right.get(attribute) ?? 0) + 1);
        }
      });
    }
    const byAttribute: Partial<Record<VisualAttribute, number>> = {};
    for (const [attribute, n] of seen) byAttribute[attribute] = (right.get(attribute) ?? 0) / n;
    const type = typeRight / samples.length;
    return { type, byAttribute, worst: Math.min(type, ...Object.values(byAttribute)), pictures: samples.length };
  }

  dispose(): void {
    for (const v of Object.values(this.weights)) v.dispose();
  }
}

function targetsOf(batch: readonly LabelledPicture[]): { targets: tf.Tensor2D; mask: tf.Tensor2D } {
  const targets = new Float32Array(batch.length * LOGITS);
  const mask = new Float32Array(batch.length * HEADS.length);
  batch.forEach(({ look }, row) => {
    HEADS.forEach((head, h) => {
      if (!head.types.includes(look.type)) return;
      const value = head.name === "type" ? look.type : look.values[head.name];
      const k = head.classes.indexOf(value as string);
      if (k < 0) throw new Error(`${head.name} "${value}" is not one of ${head.classes.join(", ")}`);
      targets[row * LOGITS + head.start + k] = 1;
      mask[row * HEADS.length + h] = 1;
    });
  });
  return {
    targets: tf.tensor2d(targets, [batch.length, LOGITS]),
    mask: tf.tensor2d(mask, [batch.length, HEADS.length]),
  };
}

/** He-initialised weights from the seeded generator (tfjs initialisers draw from their own state). */
function initialWeights(rng: Rng, opts: ClassifierOptions): Weights {
  const normal = (count: number, std: number) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const u = 1 - rng.next();
      out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next()) * std;
    }
    return out;
  };
  const matrix = (rows: number, cols: number) =>
    tf.variable(tf.tensor2d(normal(rows * cols, Math.sqrt(2 / rows)), [rows, cols]));
  const bias = (n: number) => tf.variable(tf.zeros([n]));
  const pooled = POOLED * POOLED * opts.filters;
  return {
    w1: matrix(PATCH, opts.filters),
    b1: bias(opts.filters),
    w2: matrix(pooled, opts.hidden),
    b2: bias(opts.hidden),
    w3: matrix(opts.hidden, LOGITS),
    b3: bias(LOGITS),
  };
}
