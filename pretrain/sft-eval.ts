/**
 * How factual a policy's answers are, overall and by popularity bucket (head / torso / tail):
 * the numbers the base policy is judged by (docs/rewards.md, "Records and metrics": hallucination
 * rate = 1 − mean precision over answers that make claims).
 */
import { analyzeAnswer, ClaimVerifier, type Prompt, type WordTokenizer, type World } from "../envs/index.ts";
import { type Policy, type TextFormat, textFormatFor } from "../models/index.ts";

export interface FactualityStats {
  readonly answers: number;
  /** Share of answers in the `<think> … </think> answer` format. */
  readonly wellFormedRate: number;
  /** Share of well-formed answers that make no claim. */
  readonly abstentionRate: number;
  /** 1 − mean precision over answers that make claims. */
  readonly hallucinationRate: number;
  /** Mean supported claims per answer (detail). */
  readonly meanSupported: number;
  /** Mean generated tokens per answer. */
  readonly meanTokens: number;
  /** Share of claims whose subject is the entity the prompt asks about (the rest are off-topic). */
  readonly onTopicClaimRate: number;
  /** Share of answers whose reasoning part names the entity asked about (a copy from the prompt). */
  readonly namesEntityRate: number;
}

export interface FactualityReport extends FactualityStats {
  readonly byBucket: Readonly<Record<"head" | "torso" | "tail", FactualityStats>>;
  /** A few answers, for reading. */
  readonly samples: readonly { readonly prompt: string; readonly bucket: string; readonly answer: string }[];
}

export interface EvaluationSampling {
  readonly temperature: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number;
  readonly batchSize: number;
}

export const DEFAULT_EVALUATION_SAMPLING: EvaluationSampling = {
  temperature: 0.7,
  topP: 1,
  maxNewTokens: 192,
  seed: 1,
  batchSize: 32,
};

interface Scored {
  readonly bucket: "head" | "torso" | "tail";
  readonly wellFormed: boolean;
  readonly claims: number;
  readonly precision: number;
  readonly supported: number;
  readonly tokens: number;
  readonly onTopicClaims: number;
  readonly allClaims: number;
  readonly namesEntity: boolean;
}

export async function evaluateFactuality(
  policy: Policy,
  world: World,
  tokenizer: WordTokenizer,
  prompts: readonly Prompt[],
  sampling: EvaluationSampling = DEFAULT_EVALUATION_SAMPLING,
  /** The policy's text format: the backbone's over the world's words by default (a Hugging Face policy's is its own). */
  format: TextFormat = textFormatFor(policy.config.backbone, tokenizer),
): Promise<FactualityReport> {
  const verifier = new ClaimVerifier(world);
  const scored: Scored[] = [];
  const samples: { prompt: string; bucket: string; answer: string }[] = [];
  for (let at = 0; at < prompts.length; at += sampling.batchSize) {
    const batch = prompts.slice(at, at + sampling.batchSize);
    const result = await policy.sample(
      batch.map((p) => format.promptTokens(p.text)),
      { ...sampling, seed: sampling.seed + at, stopTokens: format.stopTokens },
    );
    result.sequences.forEach((sequence, i) => {
      const prompt = batch[i]!;
      const text = format.answerText(sequence.tokens);
      const analysis = analyzeAnswer(verifier, text);
      const claims = analysis.supported + analysis.contradicted + analysis.unverifiable;
      scored.push({
        bucket: prompt.bucket,
        wellFormed: analysis.format.ok && sequence.finishReason === "stop",
        claims,
        precision: claims > 0 ? analysis.supported / claims : 0,
        supported: analysis.supported,
        tokens: sequence.tokens.length,
        onTopicClaims: analysis.claims.filter((c) => c.subject === prompt.focus.entity).length,
        allClaims: analysis.claims.length,
        namesEntity: analysis.format.ok && ` ${analysis.format.reasoning} `.includes(` ${prompt.focus.entity} `),
      });
      if (samples.length < 6 && at + i < prompts.length)
        samples.push({ prompt: prompt.text, bucket: prompt.bucket, answer: text });
    });
  }
  const stats = (rows: readonly Scored[]): FactualityStats => {
    const formed = rows.filter((r) => r.wellFormed);
    const claiming = formed.filter((r) => r.claims > 0);
    const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
    const mean = (xs: readonly number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
    return {
      answers: rows.length,
      wellFormedRate: rows.length === 0 ? Number.NaN : formed.length / rows.length,
      abstentionRate: formed.length === 0 ? Number.NaN : 1 - claiming.length / formed.length,
      hallucinationRate: 1 - mean(claiming.map((r) => r.precision)),
      meanSupported: mean(rows.map((r) => r.supported)),
      meanTokens: mean(rows.map((r) => r.tokens)),
      onTopicClaimRate: sum(rows.map((r) => r.onTopicClaims)) / sum(rows.map((r) => r.allClaims)),
      namesEntityRate: rows.length === 0 ? Number.NaN : rows.filter((r) => r.namesEntity).length / rows.length,
    };
  };
  return {
    ...stats(scored),
    byBucket: {
      head: stats(scored.filter((r) => r.bucket === "head")),
      torso: stats(scored.filter((r) => r.bucket === "torso")),
      tail: stats(scored.filter((r) => r.bucket === "tail")),
    },
    samples,
  };
}
