/**
 * Host-side token choice from one row of logits: temperature, nucleus (top-p), seeded. Pure
 * functions, so the numbers a rollout records are easy to check against the learner's.
 */
import { checkDecoding, contrastiveScores, type GuidedDecoding, guidedLogits } from "./decoding.ts";
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
 *
 * With `options.guidance` (CFG, CD-K) one session holds 2·B rows — the B expert prompts, then the B
 * amateur ones — so both streams cost one batched forward pass a step; row b's token is drawn from
 * `decodingLogProbs` of rows b and B + b and appended to both.
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
  const guidance = options.guidance;
  if (guidance !== undefined) {
    checkDecoding(guidance.decoding, config.vocabSize);
    if (guidance.unconditioned.length !== prompts.length)
      throw new Error(`sample: ${guidance.unconditioned.length} unconditioned prompts for ${prompts.length} prompts`);
  }
  const opened = guidance === undefined ? prompts : [...prompts, ...guidance.unconditioned];
  for (const prompt of opened) {
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
  const longest = Math.max(...opened.map((p) => p.length));
  // Rows share columns, so the longest prompt bounds everyone's budget.
  const budget = Math.min(options.maxNewTokens, config.maxSeqLen - longest);
  if (options.rowSeeds !== undefined && options.rowSeeds.length !== prompts.length) {
    throw new Error(`sample: ${options.rowSeeds.length} row seeds for ${prompts.length} prompts`);
  }
  const randoms = prompts.map((_, b) => mulberry32(options.rowSeeds?.[b] ?? mixSeed(options.seed, b)));
  const generated = prompts.map(() => [] as number[]);
  const logProbs = prompts.map(() => [] as number[]);
  const policyLogProbs = prompts.map(() => [] as number[]);
  const stopped = prompts.map(() => false);
  const done = prompts.map(() => budget === 0);
  const scratch = new Float64Array(V);
  const guidedScratch = new Float64Array(V);

  const session = await open(opened);
  const prefillMs = performance.now() - start;
  const letOthersRun = eventLoopYielder();
  try {
    while (!done.every(Boolean)) {
      await letOthersRun();
      const chosen = new Int32Array(B).fill(config.specialTokens.pad);
      for (let b = 0; b < B; b++) {
        if (done[b]) continue;
        const policyRow = logSoftmax(session.logits.subarray(b * V, (b + 1) * V), temperature, scratch);
        const row =
          guidance === undefined
            ? policyRow
            : decodingLogProbs(
                guidance.decoding,
                session.logits.subarray(b * V, (b + 1) * V),
                session.logits.subarray((B + b) * V, (B + b + 1) * V),
                temperature,
                guidedScratch,
              );
        const token = sampleToken(row, topP, randoms[b]!);
        generated[b]!.push(token);
        logProbs[b]!.push(row[token]!);
        if (guidance !== undefined) policyLogProbs[b]!.push(policyRow[token]!);
        chosen[b] = token;
        if (stops.has(token)) stopped[b] = done[b] = true;
        else if (generated[b]!.length >= budget) done[b] = true;
      }
      if (!done.every(Boolean)) await session.advance(guidance === undefined ? chosen : twice(chosen));
    }
  } finally {
    session.dispose();
  }
  const totalMs = performance.now() - start;
  return {
    sequences: prompts.map((_, b) => ({
      tokens: Int32Array.from(generated[b]!),
      logProbs: Float32Array.from(logProbs[b]!),
      ...(guidance === undefined ? {} : { policyLogProbs: Float32Array.from(policyLogProbs[b]!) }),
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

/** The expert rows' tokens for the amateur rows too: both streams read the same answer. */
const twice = (chosen: Int32Array): Int32Array => {
  const both = new Int32Array(2 * chosen.length);
  both.set(chosen);
  both.set(chosen, chosen.length);
  return both;
};

/**
 * log μ, the distribution a guided decoder draws the next token from, given the expert's (`cond`) and
 * the amateur's (`uncond`) logits:
 * - cfg: log softmax(guidedLogits(cond, uncond, scale) / T);
 * - cd-k: log softmax of contrastiveScores(softmax(cond / T), softmax(uncond / T)) — the contrast
 *   log pE − log pA over the plausible head, every other token impossible (−∞).
 */
export function decodingLogProbs(
  decoding: GuidedDecoding,
  cond: ArrayLike<number>,
  uncond: ArrayLike<number>,
  temperature: number,
  out = new Float64Array(cond.length),
): Float64Array {
  if (decoding.kind === "cfg") return logSoftmax(guidedLogits(cond, uncond, decoding.scale), temperature, out);
  const pExpert = Array.from(logSoftmax(cond, temperature), Math.exp);
  // An amateur probability that underflowed to 0 would make its token's score +∞: floor it.
  const pAmateur = Array.from(logSoftmax(uncond, temperature), (lp) => Math.max(Math.exp(lp), Number.MIN_VALUE));
  return logSoftmax(contrastiveScores(pExpert, pAmateur, decoding), 1, out);
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
