/**
 * The optimiser every trainer here uses — pretraining, SFT and the GRPO learner: Adam with a linear
 * warm-up then cosine decay to 10 %, and gradient accumulation over micro-batches with global-norm
 * clipping. It lives with the models so that the learner and pretraining share it without
 * importing each other.
 */
import * as tf from "@tensorflow/tfjs";
import type { Policy } from "./policy.ts";

export interface OptimizerSettings {
  /** Peak learning rate. */
  readonly learningRate: number;
  /** Steps of linear warm-up from 0. */
  readonly warmupSteps: number;
  /** Total steps to run. */
  readonly totalSteps: number;
  /** Where the cosine reaches its floor; default totalSteps. Set it to stop a schedule early. */
  readonly decaySteps?: number;
  /** Clip gradients to this global L2 norm (0: off). */
  readonly clipNorm: number;
}

/** Linear warm-up to `learningRate`, then cosine decay to 10 % of it at `decaySteps` (default `totalSteps`). */
export function learningRateAt(step: number, s: OptimizerSettings): number {
  if (step < s.warmupSteps) return (s.learningRate * (step + 1)) / s.warmupSteps;
  const decaySteps = s.decaySteps ?? s.totalSteps;
  const progress = Math.min(1, (step - s.warmupSteps) / Math.max(1, decaySteps - s.warmupSteps));
  return s.learningRate * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** Adam, whose learning rate the loop sets every step (tfjs reads the field at each update). */
export function createOptimizer(settings: OptimizerSettings): tf.AdamOptimizer {
  return new PerVariableAdam(learningRateAt(0, settings), 0.9, 0.95, 1e-8);
}

/** The fields of tfjs's AdamOptimizer that its update reads (private in its typings). */
interface AdamInternals {
  readonly accBeta1: tf.Variable;
  readonly accBeta2: tf.Variable;
  readonly accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  readonly accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/**
 * tfjs's Adam, the same operations in the same order (so bit-identical updates, and the same state for
 * checkpoints), but each variable's update in a tidy of its own. tfjs runs every variable's update in
 * one tidy, so ~10 temporaries of every weight are alive at once: 19× the weights' bytes at the peak
 * of a step, which ran a 135 M-parameter model out of wasm's 4 GB heap. Here the peak is the largest
 * variable's temporaries.
 */
class PerVariableAdam extends tf.AdamOptimizer {
  override applyGradients(variableGradients: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const state = this as unknown as AdamInternals;
    const gradients = Array.isArray(variableGradients)
      ? variableGradients
      : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    const oneMinusAccBeta1 = tf.sub(1, state.accBeta1);
    const oneMinusAccBeta2 = tf.sub(1, state.accBeta2);
    gradients.forEach(({ name, tensor: gradient }, i) => {
      const value = tf.engine().registeredVariables[name]!;
      const moment = (slot: "m" | "v") => ({
        originalName: `${name}/${slot}`,
        variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
      });
      state.accumulatedFirstMoment[i] ??= moment("m");
      state.accumulatedSecondMoment[i] ??= moment("v");
      if (gradient == null) return;
      // Nested tidies free each intermediate as soon as the next needs it: for a large variable (a
      // 49k × 576 embedding) the update's temporaries, not the moments, set the step's peak.
      const firstMoment = state.accumulatedFirstMoment[i]!.variable;
      const secondMoment = state.accumulatedSecondMoment[i]!.variable;
      const newFirstMoment = tf.tidy(() => tf.add(tf.mul(firstMoment, this.beta1), tf.mul(gradient, 1 - this.beta1)));
      const newSecondMoment = tf.tidy(() =>
        tf.add(tf.mul(secondMoment, this.beta2), tf.mul(tf.square(gradient), 1 - this.beta2)),
      );
      const update = tf.tidy(() => {
        const biasCorrectedFirstMoment = tf.div(newFirstMoment, oneMinusAccBeta1);
        const denominator = tf.tidy(() => tf.add(tf.sqrt(tf.div(newSecondMoment, oneMinusAccBeta2)), this.epsilon));
        return tf.mul(tf.div(biasCorrectedFirstMoment, denominator), -this.learningRate);
      });
      firstMoment.assign(newFirstMoment);
      secondMoment.assign(newSecondMoment);
      tf.dispose([newFirstMoment, newSecondMoment]);
      const updated = tf.add(update, value);
      value.assign(updated);
      tf.dispose([update, updated]); // the variable keeps the data
    });
    tf.dispose([oneMinusAccBeta1, oneMinusAccBeta2]);
    tf.tidy(() => {
      state.accBeta1.assign(tf.mul(state.accBeta1, this.beta1));
      state.accBeta2.assign(tf.mul(state.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }
}

export interface GradientAccumulator {
  /** Differentiates one micro-batch's loss on its own and adds its gradients; returns the loss. */
  readonly add: (loss: () => tf.Scalar) => number;
  /**
   * One Adam step on the summed gradients, clipped to a global L2 norm (`clipNorm` 0: off), then
   * frees them. Returns the summed loss before the update and the gradient norm. With
   * `onlyIfFinite`, a non-finite loss or gradient norm is not applied (`applied: false`): one NaN
   * step would turn every weight into NaN.
   */
  readonly apply: (
    optimizer: tf.AdamOptimizer,
    learningRate: number,
    clipNorm: number,
    options?: { readonly onlyIfFinite?: boolean },
  ) => OptimizerStep;
}

/** What one optimiser step did: the loss before it, the gradient norm, and whether it was applied. */
export type OptimizerStep = { loss: number; gradNorm: number; applied: boolean };

/**
 * Gradient accumulation over the policy's variables: only one micro-batch's activations are alive
 * at once. A caller may yield to the event loop between `add`s (the GRPO learner does). Shared by
 * pretraining, SFT and GRPO.
 */
export function accumulateGradients(policy: Pick<Policy, "trainableVariables">): GradientAccumulator {
  const variables = policy.trainableVariables as tf.Variable[];
  let loss = 0;
  // Gradients in the policy's variable order: the optimiser's state follows it (see checkpoints).
  let grads: tf.Tensor[] | undefined;
  return {
    add: (microBatchLoss) => {
      const step = tf.variableGrads(microBatchLoss, variables);
      const value = step.value.dataSync()[0]!;
      loss += value;
      // A variable the loss did not reach (e.g. a modality absent from the batch) gets a zero gradient.
      const chunk = variables.map((v) => step.grads[v.name] ?? tf.zerosLike(v));
      const summed = grads ? chunk.map((g, i) => tf.add(grads![i]!, g)) : chunk;
      tf.dispose([step.value, ...(grads ? [...grads, ...chunk] : [])]);
      grads = summed;
      return value;
    },
    apply: (optimizer, learningRate, clipNorm, options = {}) => {
      if (!grads) throw new Error("accumulateGradients: no loss to minimise");
      const accumulated = grads;
      grads = undefined;
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
      const normTensor = tf.tidy(() => tf.sqrt(tf.addN(accumulated.map((g) => tf.sum(tf.square(g))))));
      const gradNorm = normTensor.dataSync()[0]!;
      if (options.onlyIfFinite && !(Number.isFinite(loss) && Number.isFinite(gradNorm))) {
        tf.dispose([normTensor, ...accumulated]);
        return { loss, gradNorm, applied: false };
      }
      const scale = clipNorm > 0 && gradNorm > clipNorm ? clipNorm / gradNorm : 1;
      const scaled = scale === 1 ? accumulated : accumulated.map((g) => tf.mul(g, scale));
      optimizer.applyGradients(variables.map((v, i) => ({ name: v.name, tensor: scaled[i]! })));
      tf.dispose([normTensor, ...accumulated, ...(scale === 1 ? [] : scaled)]);
      return { loss, gradNorm, applied: true };
    },
  };
}
