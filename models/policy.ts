/**
 * The `Policy` interface every backbone (dense, MoT, BLT) implements, and the types around it.
 *
 * Conventions shared by all backbones:
 * - Token ids are plain integers; host-side batches are `Int32Array`s, so a backbone can derive
 *   whatever index arrays it needs (MoT groups tokens by modality) on the host, once.
 * - A sequence is `prompt ++ generated`, where generated = `<think> reasoning </think> answer`.
 *   Every token has a modality (prompt / reasoning / answer / image) that a backbone may use;
 *   callers never pass it: backbones derive it with `tokenModalities` from the prompt length, the
 *   special token ids and the image token range in the config.
 * - Log-probs are natural-log probabilities of a token under softmax(logits / temperature), with
 *   no top-p truncation, so the learner path and the sampling path compute the same number.
 */
import type * as tf from "@tensorflow/tfjs";
import type { GuidedDecoding } from "./decoding.ts";

/** Special token ids a backbone must know about (from the tokenizer). */
export interface SpecialTokens {
  /** Padding; never attended to, never scored. */
  readonly pad: number;
  /** Beginning of sequence, first token of every prompt. */
  readonly bos: number;
  /** End of sequence; the default stop token. */
  readonly eos: number;
  /** `<think>`: opens the reasoning part. */
  readonly thinkOpen: number;
  /** `</think>`: closes the reasoning part; the answer follows. */
  readonly thinkClose: number;
}

/** Fields every backbone's config has; each backbone's config extends this with its own. */
export interface PolicyConfigBase {
  /** Which backbone builds this policy: "dense" | "mot" | "blt" (see models/registry.ts). */
  readonly backbone: string;
  /** Number of token ids (for BLT: 256 bytes + specials). */
  readonly vocabSize: number;
  /** Longest sequence (prompt + generated) the model handles; positions beyond it are an error. */
  readonly maxSeqLen: number;
  readonly specialTokens: SpecialTokens;
  /** Seed for weight initialisation: the same config builds the same weights. */
  readonly initSeed: number;
  /**
   * The image tokens' ids, when the vocabulary has them (a VQ codebook's codes after the words): they
   * carry `Modality.image` wherever they appear. Absent: a text-only policy.
   */
  readonly imageTokens?: TokenRange;
}

/** Token ids `first` … `first + count − 1`. */
export interface TokenRange {
  readonly first: number;
  readonly count: number;
}

/** What a token's modality is read from: the think tokens, and the image tokens where there are any. */
export type ModalityMarkers = Pick<SpecialTokens, "thinkOpen" | "thinkClose"> & {
  readonly imageTokens?: TokenRange | undefined;
};

/** The markers of a policy config. */
export const modalityMarkers = (config: PolicyConfigBase): ModalityMarkers => ({
  thinkOpen: config.specialTokens.thinkOpen,
  thinkClose: config.specialTokens.thinkClose,
  imageTokens: config.imageTokens,
});

export const isImageToken = (token: number, range: TokenRange | undefined): boolean =>
  range !== undefined && token >= range.first && token < range.first + range.count;

/** Per-token modality ids, as used by MoT (`Modality.prompt` …). */
export const Modality = { prompt: 0, reasoning: 1, answer: 2, image: 3 } as const;
export type Modality = (typeof Modality)[keyof typeof Modality];

/**
 * Host-side batch of token rows, row-major `[batchSize, length]`, right-padded with `pad`.
 * Positions start at 0 in every row.
 */
export interface TokenBatch {
  readonly tokens: Int32Array;
  readonly batchSize: number;
  readonly length: number;
  /** Tokens at the start of each row that are prompt (modality `prompt`). */
  readonly promptLengths: Int32Array;
}

/** What the learner scores: answer tokens (everything generated) under their prompts. */
export interface PromptAnswerBatch {
  readonly prompts: readonly Int32Array[];
  readonly answers: readonly Int32Array[];
}

/**
 * Per-token log-probs of the answer tokens, `[batch, maxAnswerLength]`; `mask` is 1 on real answer
 * tokens, 0 on padding (padded log-probs are 0). Differentiable w.r.t. `policy.trainableVariables`.
 */
export interface AnswerLogProbs {
  readonly logProbs: tf.Tensor2D;
  readonly mask: tf.Tensor2D;
}

export interface SamplingOptions {
  /** Softmax temperature (> 0). Default 1. */
  readonly temperature?: number;
  /** Nucleus sampling: keep the smallest set of tokens with probability ≥ topP. Default 1 (off). */
  readonly topP?: number;
  /** Generation stops for a row when it emits one of these (the stop token is kept). Default [eos]. */
  readonly stopTokens?: readonly number[];
  /** Most tokens generated per row (the budget). */
  readonly maxNewTokens: number;
  /** Same seed + same prompts + same weights → same tokens. */
  readonly seed: number;
  /**
   * One seed per row, replacing `seed` for row b's stream: a row's tokens then depend only on its own
   * seed, not on where it sits in the batch (the pipeline seeds each answer by its group id).
   */
  readonly rowSeeds?: readonly number[];
  /**
   * CFG or CD-K instead of plain sampling (models/decoding.ts): `prompts` are the expert's (conditioned,
   * e.g. with retrieved evidence), `unconditioned[b]` row b's amateur prompt (the prompt alone). Both
   * streams run in one KV-cached session of 2·B rows, stepped with the same chosen tokens.
   */
  readonly guidance?: Guidance;
}

export interface Guidance {
  readonly decoding: GuidedDecoding;
  /** One amateur prompt per row. */
  readonly unconditioned: readonly Int32Array[];
}

export interface SampledSequence {
  /** Generated tokens (not including the prompt), ending with the stop token if one was emitted. */
  readonly tokens: Int32Array;
  /**
   * Behaviour log-prob of each generated token: under the decoder actually used (plain: the policy, see
   * the module doc; CFG / CD-K: the guided distribution the token was drawn from).
   */
  readonly logProbs: Float32Array;
  /**
   * Guided decoding only: the policy's own log-prob of each token given the expert's prompt (the
   * module doc's definition) — what `logProbs` would be under plain sampling. Truncated importance
   * sampling weighs a guided sample by min(exp(policyLogProbs − logProbs), cap).
   */
  readonly policyLogProbs?: Float32Array;
  /** "stop": emitted a stop token; "length": hit maxNewTokens or maxSeqLen. */
  readonly finishReason: "stop" | "length";
}

export interface SamplingTimings {
  /** Processing the prompts (filling the KV cache). */
  readonly prefillMs: number;
  /** All decode steps. */
  readonly decodeMs: number;
  readonly totalMs: number;
  /** Tokens generated across the batch. */
  readonly generatedTokens: number;
}

export interface SampleResult {
  /** One per prompt, in order. */
  readonly sequences: readonly SampledSequence[];
  readonly timings: SamplingTimings;
}

/**
 * A language-model policy. Implementations own their tf.Variables; call `dispose()` when done.
 * Methods returning tensors leave them to the caller (wrap in `tf.tidy` or dispose).
 */
export interface Policy {
  readonly config: PolicyConfigBase;

  /** Every trainable variable, in a fixed order (the optimiser's state follows this order). */
  readonly trainableVariables: readonly tf.Variable[];

  /** Stable logical names of `trainableVariables`, same order (used in weight files). */
  readonly variableNames: readonly string[];

  /** Number of trainable scalars. */
  parameterCount(): number;

  /**
   * Forward FLOPs per token at a given context length (multiply-add = 2 FLOPs); a training step
   * costs ≈ 3× this per token.
   */
  flopsPerToken(contextLength: number): number;

  /** Logits for every position, `[batchSize, length, vocabSize]` (row t predicts token t+1). */
  forward(batch: TokenBatch): tf.Tensor3D;

  /**
   * The final hidden states that `forward` turns into logits, `[batchSize, length, width]` (after
   * the final norm; causal, so a right-padded row's states before its padding do not depend on it).
   */
  hiddenStates(batch: TokenBatch): tf.Tensor3D;

  /**
   * The learner path: log-probs of each answer token given its prompt and the answer tokens
   * before it, under softmax(logits / temperature). Differentiable.
   */
  answerLogProbs(batch: PromptAnswerBatch, options?: { readonly temperature?: number }): AnswerLogProbs;

  /** Batched sampling (KV-cached where the backbone has one). Seeded and reproducible. */
  sample(prompts: readonly Int32Array[], options: SamplingOptions): Promise<SampleResult>;

  /** All weights as self-describing bytes (exact; for the object store). */
  exportWeights(): Promise<Uint8Array>;

  /**
   * Replace all weights from `exportWeights` bytes (float16-stored weights are accepted too);
   * throws naming `source` (e.g. the file) and every missing / extra / wrongly shaped tensor.
   */
  importWeights(bytes: Uint8Array, source?: string): Promise<void>;

  /** Frees every tensor the policy owns. */
  dispose(): void;
}

/**
 * Modality of every token of a sequence `prompt ++ generated`: an image token is image wherever it
 * is; of the rest, the first `promptLength` tokens are prompt; from `<think>` through `</think>` (both
 * included) reasoning; everything else generated is answer. Writes into `out` (length ≥
 * tokens.length) so a batch can fill one array.
 */
export function tokenModalities(
  tokens: ArrayLike<number>,
  promptLength: number,
  special: ModalityMarkers,
  out: Int32Array = new Int32Array(tokens.length),
): Int32Array {
  let inThink = false;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (isImageToken(token, special.imageTokens)) {
      out[i] = Modality.image;
      continue;
    }
    if (i < promptLength) {
      out[i] = Modality.prompt;
      continue;
    }
    if (token === special.thinkOpen) inThink = true;
    out[i] = inThink ? Modality.reasoning : Modality.answer;
    if (token === special.thinkClose) inThink = false;
  }
  return out;
}

/** `tokenModalities` for every row of a batch, `[batchSize, length]`. */
export function batchModalities(batch: TokenBatch, special: ModalityMarkers): Int32Array {
  const out = new Int32Array(batch.batchSize * batch.length);
  for (let b = 0; b < batch.batchSize; b++) {
    const row = batch.tokens.subarray(b * batch.length, (b + 1) * batch.length);
    tokenModalities(row, batch.promptLengths[b]!, special, out.subarray(b * batch.length, (b + 1) * batch.length));
  }
  return out;
}
