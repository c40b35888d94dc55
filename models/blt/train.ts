/**
 * Next-byte training and evaluation on byte sequences, for any policy over BLT bytes: trains the
 * entropy model (models/ cannot use the learner), and measures bits per byte. The learner's own
 * pretraining loop (pretrain/pretrain.ts) trains the BLT itself in the pipeline.
 */
import * as tf from "@tensorflow/tfjs";
import { yieldToEventLoop } from "../event-loop.ts";
import type { Policy } from "../policy.ts";
import { mulberry32, type Random } from "../random.ts";
import type { BltPolicy } from "./model.ts";

export interface ByteTraining {
  readonly steps: number;
  readonly batchSize: number;
  /** Longest training window in bytes (windows are cut at random from the documents). */
  readonly windowLength: number;
  readonly learningRate: number;
  readonly seed: number;
}

/** Random windows of at most `length` bytes (at least 2) from `documents`. */
export function sampleWindows(
  documents: readonly Int32Array[],
  count: number,
  length: number,
  random: Random,
): Int32Array[] {
  const usable = documents.filter((d) => d.length >= 2);
  if (usable.length === 0) throw new Error("byte training: no document has 2 or more bytes");
  return Array.from({ length: count }, () => {
    const doc = usable[Math.floor(random() * usable.length)]!;
    const start = doc.length > length ? Math.floor(random() * (doc.length - length + 1)) : 0;
    return doc.subarray(start, start + length);
  });
}

/** Mean negative log-likelihood (nats per byte) of every byte after the first of each window. */
export function windowsNll(policy: Policy, windows: readonly Int32Array[]): tf.Scalar {
  return tf.tidy(() => {
    const { logProbs, mask } = policy.answerLogProbs({
      prompts: windows.map((w) => w.subarray(0, 1)),
      answers: windows.map((w) => w.subarray(1)),
    });
    return tf.div(tf.neg(tf.sum(logProbs)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

/**
 * Adam on `variables` (default: the policy's trainable variables) over random windows; returns
 * the loss of every step (nats per byte).
 */
export async function trainOnBytes(
  policy: Policy,
  documents: readonly Int32Array[],
  options: ByteTraining,
  variables: readonly tf.Variable[] = policy.trainableVariables,
): Promise<number[]> {
  const random = mulberry32(options.seed);
  const optimizer = tf.train.adam(options.learningRate, 0.9, 0.95, 1e-8);
  const losses: number[] = [];
  try {
    for (let step = 0; step < options.steps; step++) {
      const windows = sampleWindows(documents, options.batchSize, options.windowLength, random);
      const loss = optimizer.minimize(() => windowsNll(policy, windows), true, variables as tf.Variable[]);
      losses.push(loss!.dataSync()[0]!);
      loss!.dispose();
      await yieldToEventLoop();
    }
  } finally {
    optimizer.dispose();
  }
  return losses;
}

/** Bits per byte of `windows` under `policy` (every byte after the first), in batches. */
export function bitsPerByte(policy: Policy, windows: readonly Int32Array[], batchSize = 16): number {
  let nats = 0;
  let bytes = 0;
  for (let i = 0; i < windows.length; i += batchSize) {
    const batch = windows.slice(i, i + batchSize);
    const count = batch.reduce((sum, w) => sum + w.length - 1, 0);
    const loss = windowsNll(policy, batch);
    nats += loss.dataSync()[0]! * count;
    bytes += count;
    loss.dispose();
  }
  return nats / bytes / Math.LN2;
}

/**
 * The BLT recipe's first stage: train the entropy model on `documents`, then set the threshold
 * that cuts them into patches of `meanPatchLength` bytes on average. Returns the threshold.
 */
export async function prepareEntropyPatching(
  policy: BltPolicy,
  documents: readonly Int32Array[],
  options: ByteTraining & { readonly meanPatchLength: number },
): Promise<number> {
  await trainOnBytes(policy.entropyModel, documents, options);
  const random = mulberry32(options.seed + 1);
  return policy.calibrateEntropyThreshold(
    sampleWindows(documents, 64, options.windowLength, random),
    options.meanPatchLength,
  );
}
