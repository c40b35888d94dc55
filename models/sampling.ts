/**
 * Host-side token choice from one row of logits: temperature, nucleus (top-p), seeded. Pure
 * functions, so the numbers a rollout records are easy to check against the learner's.
 */
import { eventLoopYielder } from "./event-loop.ts";
import type { PolicyConfigBase, SampleResult, SamplingOptions } from "./policy.ts";
import { mixSeed, mulberry32, type Random } from "./random.ts";

/**
 * What a backbone with a KV cache offers the shared sampling loop: logits for every row's next
 * token, and a way to append one token per row.
 */
export interface DecodeSession {
  /** Row-major [batch, vocabSize] logits of the next token. */
  readonly logits: Float32Array;
  /** Appends one token to every row (finished rows get `pad`) and refreshes `logits`. */
  advance(tokens: Int32Array): Promise<void>;
  dispose(): void;
}

/**
 * The sampling loop shared by KV-cached backbones: per-row seeded streams (row b uses
 * rowSeeds[b], else mixSeed(seed, b), so a row's tokens do not depend on its batch mates), temperature,
 * top-p, stop tokens, and a budget of min(maxNewTokens, maxSeqLen − longest prompt length).
 */
export async function sampleBatch(
  config: PolicyConfigBase,
  open: (prompts: readonly Int32Array[]) => Promise<DecodeSession>,
  prompts: readonly Int32Array[],
  options: SamplingOptions,
): Promise<SampleResult> {
  const start = performance.now();
  const temperature = options.temperature ?? 1;
  const topP = options.topP ?? 1;
  const stops = new Set(options.stopTokens ?? [config.specialTokens.eos]);
  if (!(temperature > 0)) throw new Error(`sample: temperature must be > 0, got ${temperature}`);
  if (!(topP > 0)) throw new Error(`sample: topP must be > 0, got ${topP}`);
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
    throw new Error(`sample: maxNewTokens must be a non-negative integer, got ${options.maxNewTokens}`);
  }
  if (prompts.length === 0) {
    return { sequences: [], timings: { prefillMs: 0, decodeMs: 0, totalMs: 0, generatedTokens: 0 } };
  }
  for (const prompt of prompts) {
    if (prompt.length === 0) throw new Error("sample: every prompt needs at least one token");
    if (prompt.length >= config.maxSeqLen) {
      throw new Error(`sample: a prompt has ${prompt.length} tokens, maxSeqLen ${config.maxSeqLen} leaves no room`);
    }
    for (const token of prompt) {
      if (!Number.isInteger(token) || token < 0 || token >= config.vocabSize) {
        throw new Error(`sample: token id ${token} outside [0, ${config.vocabSize})`);
      }
    }
  }
  const B = prompts.length;
  const V = config.vocabSize;
  const longest = Math.max(...prompts.map((p) => p.length));
  // Rows share columns, so the longest prompt bounds everyone's budget.
  const budget = Math.min(options.maxNewTokens, config.maxSeqLen - longest);
  if (options.rowSeeds !== undefined && options.rowSeeds.length !== prompts.length) {
    throw new Error(`sample: ${options.rowSeeds.length} row seeds for ${prompts.length} prompts`);
  }
  const randoms = prompts.map((_, b) => mulberry32(options.rowSeeds?.[b] ?? mixSeed(options.seed, b)));
  const generated = prompts.map(() => [] as number[]);
  const logProbs = prompts.map(() => [] as number[]);
  const stopped = prompts.map(() => false);
  const done = prompts.map(() => budget === 0);
  const scratch = new Float64Array(V);

  const session = await open(prompts);
  const prefillMs = performance.now() - start;
  const letOthersRun = eventLoopYielder();
  try {
    while (!done.every(Boolean)) {
      await letOthersRun();
      const chosen = new Int32Array(B).fill(config.specialTokens.pad);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const row = logSoftmax(session.logits.subarray(b * V, (b + 1) * V), temperature, scratch);
        const token = sampleToken(row, topP, randoms[b]!);
        generated[b]!.push(token);
        logProbs[b]!.push(row[token]!);
        chosen[b] = token;
        if (stops.has(token)) stopped[b] = done[b] = true;
        else if (generated[b]!.length >= budget) done[b] = true;
      }
      if (!done.every(Boolean)) await session.advance(chosen);
    }
  } finally {
    session.dispose();
  }
  const totalMs = performance.now() - start;
  return {
    sequences: prompts.map((_, b) => ({
      tokens: Int32Array.from(generated[b]!),
      logProbs: Float32Array.from(logProbs[b]!),
      finishReason: stopped[b] ? "stop" : "length",
    })),
    timings: {
      prefillMs,
      decodeMs: totalMs - prefillMs,
      totalMs,
      generatedTokens: generated.reduce((sum, g) => sum + g.length, 0),
    },
  };
}

/** log softmax(logits / temperature), computed in float64. */
export function logSoftmax(logits: ArrayLike<number>, temperature: number, out = new Float64Array(logits.length)) {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i]! / temperature;
    out[i] = z;
    if (z > max) max = z;
  }
  let sum = 0;
  for (let i = 0; i < out.length; i++) sum += Math.exp(out[i]! - max);
  const logZ = max + Math.log(sum);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! - logZ;
  return out;
}

/**
 * Draws a token from `logProbs` restricted to its nucleus: the most probable tokens whose mass
 * first reaches `topP` (ties broken by lower id). `topP >= 1` samples the full distribution.
 */
export function sampleToken(logProbs: Float64Array, topP: number, random: Random): number {
  const vocab = logProbs.length;
  if (topP >= 1) {
    let u = random();
    for (let i = 0; i < vocab; i++) {
      u -= Math.exp(logProbs[i]!);
      if (u < 0) return i;
    }
    return argmax(logProbs); // rounding left a sliver of mass: take the mode
  }
  const order = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => logProbs[b]! - logProbs[a]! || a - b);
  let kept = 0;
  let mass = 0;
  while (kept < vocab && mass < topP) mass += Math.exp(logProbs[order[kept++]!]!);
  let u = random() * mass;
  for (let k = 0; k < kept; k++) {
    u -= Math.exp(logProbs[order[k]!]!);
    if (u < 0) return order[k]!;
  }
  return order[0]!;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
