/**
 * Next-token training of a policy: the loop shared by pretraining (on the FactWorld corpus) and
 * SFT (on curated prompt → answer examples), and pretraining's data.
 *
 * One example is a `prompt ++ answer` pair scored by `Policy.answerLogProbs` (the same path the
 * GRPO learner uses); pretraining windows are "prompt = first token, answer = the rest".
 * Loss = mean negative log-likelihood over answer tokens. The optimiser (Adam, its schedule, gradient
 * clipping) is models/optimizer.ts, shared with the GRPO learner.
 */
import * as tf from "@tensorflow/tfjs";
import {
  accumulateGradients,
  learningRateAt,
  mulberry32,
  type OptimizerSettings,
  type OptimizerStep,
  type Policy,
  type PromptAnswerBatch,
  type Random,
  saveCheckpoint,
  yieldToEventLoop,
} from "../models/index.ts";

// ── the loss and one step ────────────────────────────────────────────────────────────────────────

/** Mean negative log-likelihood of the answer tokens (a scalar; differentiable). */
export function answerNll(policy: Policy, batch: PromptAnswerBatch): tf.Scalar {
  return tf.tidy(() => {
    const { logProbs, mask } = policy.answerLogProbs(batch);
    return tf.div(tf.neg(tf.sum(logProbs)), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  });
}

/**
 * One optimiser step on `batch` (pretraining and SFT); returns the loss before the update and the
 * gradient norm.
 */
export function trainStep(
  policy: Policy,
  optimizer: tf.AdamOptimizer,
  batch: PromptAnswerBatch,
  learningRate: number,
  clipNorm: number,
): OptimizerStep {
  const gradients = accumulateGradients(policy);
  gradients.add(() => answerNll(policy, batch));
  return gradients.apply(optimizer, learningRate, clipNorm);
}

// ── the loop ─────────────────────────────────────────────────────────────────────────────────────

export interface TrainingProgress {
  readonly step: number;
  readonly totalSteps: number;
  readonly loss: number;
  readonly learningRate: number;
  readonly gradNorm: number;
  readonly tokensPerSecond: number;
  /** Set on steps where the eval loss was measured. */
  readonly evalLoss?: number;
  /** Set on steps where a checkpoint was written. */
  readonly checkpoint?: string;
}

export interface TrainingRun extends OptimizerSettings {
  readonly policy: Policy;
  readonly optimizer: tf.AdamOptimizer;
  /** The batch for a step: a pure function of the step, so a resumed run sees the same data. */
  readonly batchAt: (step: number) => PromptAnswerBatch;
  /** Held-out batches for the eval loss. */
  readonly evalBatches: readonly PromptAnswerBatch[];
  /** Measure the eval loss every this many steps (and at the end); 0: only at the end. */
  readonly evalEvery: number;
  /** Write `checkpointDir` every this many steps (and at the end); 0: only at the end. */
  readonly checkpointEvery: number;
  readonly checkpointDir?: string;
  /** Saved with every checkpoint (e.g. the tokenizer's word list). */
  readonly tokenizer?: unknown;
  /** First step to run (resume: the checkpoint's step). */
  readonly startStep?: number;
  readonly onProgress?: (progress: TrainingProgress) => void;
}

export interface TrainingResult {
  readonly steps: number;
  readonly firstLoss: number;
  readonly finalEvalLoss: number;
  readonly history: readonly TrainingProgress[];
}

export function evalLoss(policy: Policy, batches: readonly PromptAnswerBatch[]): number {
  if (batches.length === 0) return Number.NaN;
  let sum = 0;
  for (const batch of batches) {
    const loss = answerNll(policy, batch);
    sum += loss.dataSync()[0]!;
    loss.dispose();
  }
  return sum / batches.length;
}

export async function trainLanguageModel(run: TrainingRun): Promise<TrainingResult> {
  const history: TrainingProgress[] = [];
  const start = run.startStep ?? 0;
  let firstLoss = Number.NaN;
  let lastEval = Number.NaN;
  for (let step = start; step < run.totalSteps; step++) {
    // Between steps: the step itself is synchronous, and without this a signal (Ctrl-C) would wait for the whole run.
    await yieldToEventLoop();
    const began = performance.now();
    const batch = run.batchAt(step);
    const learningRate = learningRateAt(step, run);
    const { loss, gradNorm } = trainStep(run.policy, run.optimizer, batch, learningRate, run.clipNorm);
    if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${step + 1}: loss ${loss}`);
    if (step === start) firstLoss = loss;
    const tokens = batch.answers.reduce((n, a) => n + a.length, 0);
    const done = step + 1;
    const last = done === run.totalSteps;
    const evalNow = last || (run.evalEvery > 0 && done % run.evalEvery === 0);
    if (evalNow) lastEval = evalLoss(run.policy, run.evalBatches);
    const checkpointNow =
      run.checkpointDir !== undefined && (last || (run.checkpointEvery > 0 && done % run.checkpointEvery === 0));
    if (checkpointNow) {
      await saveCheckpoint(run.checkpointDir!, {
        policy: run.policy,
        optimizer: run.optimizer,
        step: done,
        tokenizer: run.tokenizer,
      });
    }
    const progress: TrainingProgress = {
      step: done,
      totalSteps: run.totalSteps,
      loss,
      learningRate,
      gradNorm,
      tokensPerSecond: tokens / ((performance.now() - began) / 1000),
      ...(evalNow ? { evalLoss: lastEval } : {}),
      ...(checkpointNow ? { checkpoint: run.checkpointDir } : {}),
    };
    history.push(progress);
    run.onProgress?.(progress);
  }
  // A resumed run with no step left still reports where it stands.
  if (history.length === 0) lastEval = evalLoss(run.policy, run.evalBatches);
  return { steps: Math.max(0, run.totalSteps - start), firstLoss, finalEvalLoss: lastEval, history };
}

// ── pretraining data ─────────────────────────────────────────────────────────────────────────────

/**
 * Documents as one token stream: `<bos> document <eos>` after each other. Without `bos` (a Hugging
 * Face tokenizer's encoding already begins a document as its post-processor wants) only `<eos>` is added.
 */
export function tokenStream(documents: readonly Int32Array[], bos: number | undefined, eos: number): Int32Array {
  const framing = bos === undefined ? 1 : 2;
  const total = documents.reduce((n, d) => n + d.length + framing, 0);
  const stream = new Int32Array(total);
  let at = 0;
  for (const doc of documents) {
    if (bos !== undefined) stream[at++] = bos;
    stream.set(doc, at);
    at += doc.length;
    stream[at++] = eos;
  }
  return stream;
}

/**
 * Random windows of `length + 1` tokens from a stream, as "prompt = first token, answer = the
 * rest" pairs; the windows of step s depend only on (seed, s).
 */
export function windowBatches(stream: Int32Array, batchSize: number, length: number, seed: number) {
  if (stream.length < length + 1)
    throw new Error(`pretrain: ${stream.length} tokens cannot fill a window of ${length + 1}`);
  return (step: number): PromptAnswerBatch => {
    const random: Random = mulberry32((seed * 1_000_003 + step) >>> 0);
    const prompts: Int32Array[] = [];
    const answers: Int32Array[] = [];
    for (let b = 0; b < batchSize; b++) {
      const at = Math.floor(random() * (stream.length - length));
      prompts.push(stream.subarray(at, at + 1));
      answers.push(stream.subarray(at + 1, at + length + 1));
    }
    return { prompts, answers };
  };
}

/** Non-overlapping windows covering (up to `maxBatches` batches of) a held-out stream. */
export function evalWindows(
  stream: Int32Array,
  batchSize: number,
  length: number,
  maxBatches: number,
): PromptAnswerBatch[] {
  const fit = Math.floor(stream.length / (length + 1));
  if (fit === 0) throw new Error(`eval data: ${stream.length} tokens cannot fill one window of ${length + 1}`);
  batchSize = Math.min(batchSize, fit); // a small held-out set still gets measured
  const batches: PromptAnswerBatch[] = [];
  for (let at = 0; batches.length < maxBatches && at + (length + 1) * batchSize <= stream.length; ) {
    const prompts: Int32Array[] = [];
    const answers: Int32Array[] = [];
    for (let b = 0; b < batchSize; b++, at += length + 1) {
      prompts.push(stream.subarray(at, at + 1));
      answers.push(stream.subarray(at + 1, at + length + 1));
    }
    batches.push({ prompts, answers });
  }
  return batches;
}
