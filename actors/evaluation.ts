/**
 * Evaluating a policy on its environment's evaluation prompts: sample one answer per prompt with a fixed
 * seed, score it with the experiment's reward pipeline (against reference answers, for relevance),
 * and summarise per suite — hallucination rate, detail, relevance win rate, abstention, length.
 * Used by the evaluator actor and its report (report.ts); `factrl study` compares the results.
 */

import { Effect } from "effect";
import { analyzeAnswer, ClaimVerifier, type Environment, type EnvPrompt, type World } from "../envs/index.ts";
import { evidencePromptTokens, type Policy, type TextFormat } from "../models/index.ts";
import {
  type AnswerResult,
  answerResultOf,
  chatCompletion,
  type FactualityMetrics,
  type HttpJudgeTarget,
  isHttpJudgeModule,
  judgementRecord,
  type RewardPipeline,
  summarize,
  summarizeBy,
} from "../rewards/index.ts";
import type { EvidenceSource } from "./evidence.ts";

export interface EvaluationSampling {
  readonly temperature: number;
  readonly topP: number;
  readonly maxNewTokens: number;
  readonly seed: number;
  readonly batch: number;
}

export interface EvaluatedAnswer extends AnswerResult {
  readonly promptId: string;
  readonly suite: string;
  /** The prompt's second report grouping (FactWorld: popularity bucket), when it has one. */
  readonly bucket?: string;
  readonly answer: string;
  readonly reward: number;
}

export interface EvaluationResult {
  readonly version: number;
  readonly overall: FactualityMetrics & { readonly reward: number };
  /** Per suite, in the order the prompts came. */
  readonly bySuite: Readonly<Record<string, FactualityMetrics>>;
  /** Per bucket, for environments whose prompts have one (empty otherwise). */
  readonly byBucket: Readonly<Record<string, FactualityMetrics>>;
  readonly answers: readonly EvaluatedAnswer[];
  /** What the answers cost, when a policy of this process wrote them (not an API model). */
  readonly cost?: AnswerCost;
}

/** The cost of a set of answers: the prompt tokens they were conditioned on, the evidence, sampling speed. */
export interface AnswerCost {
  /** Mean prompt tokens per answer (with evidence: the documents' too). */
  readonly promptTokens: number;
  /** Mean generated tokens per answer. */
  readonly generatedTokens: number;
  /** Generated tokens per second of sampling. */
  readonly tokensPerSecond: number;
  /** With evidence: mean documents prepended per prompt, and prompts whose retrieval missed. */
  readonly documents?: number;
  readonly retrievalMissed?: number;
}

export interface GeneratedAnswer {
  readonly text: string;
  /** The token budget ran out before the policy stopped. */
  readonly truncated: boolean;
}

/** Answers, one per prompt, with what writing them cost when a policy of this process wrote them. */
export type GeneratedAnswers = readonly GeneratedAnswer[] & { readonly cost?: AnswerCost };

/**
 * Answers every prompt once (batched, seeded): the same seed and weights give the same answers. With
 * `evidence`, each prompt's retrieved documents come first (as rollouts do with `rollout.retrieval`;
 * a prompt whose retrieval misses is answered without), leaving `maxNewTokens` positions to answer in.
 */
export async function answerPrompts(
  policy: Policy,
  format: TextFormat,
  prompts: readonly EnvPrompt[],
  sampling: EvaluationSampling,
  evidence?: EvidenceSource,
): Promise<GeneratedAnswers> {
  const answers: GeneratedAnswer[] = [];
  const budget = policy.config.maxSeqLen - sampling.maxNewTokens;
  let [promptTokens, generated, sampleMs, documents, missed] = [0, 0, 0, 0, 0];
  for (let at = 0; at < prompts.length; at += sampling.batch) {
    const batch = prompts.slice(at, at + sampling.batch);
    const found = evidence
      ? await Effect.runPromise(evidence(batch.map((p, i) => ({ query: p.text, seed: sampling.seed + at + i }))))
      : undefined;
    const tokens = batch.map((p, i) => {
      const e = found?.[i];
      if (e === undefined || "missed" in e) {
        if (e !== undefined) missed += 1;
        return format.promptTokens(p.text, p.picture);
      }
      const conditioned = evidencePromptTokens(format, p.text, e.documents, budget, p.picture);
      documents += conditioned.documents;
      return conditioned.tokens;
    });
    const result = await policy.sample(tokens, {
      ...sampling,
      seed: sampling.seed + at,
      stopTokens: format.stopTokens,
    });
    promptTokens += tokens.reduce((n, t) => n + t.length, 0);
    generated += result.timings.generatedTokens;
    sampleMs += result.timings.totalMs;
    for (const sequence of result.sequences)
      answers.push({ text: format.answerText(sequence.tokens), truncated: sequence.finishReason === "length" });
  }
  const n = Math.max(1, prompts.length);
  const cost: AnswerCost = {
    promptTokens: promptTokens / n,
    generatedTokens: generated / n,
    tokensPerSecond: (1000 * generated) / Math.max(1, sampleMs),
    ...(evidence ? { documents: documents / n, retrievalMissed: missed } : {}),
  };
  return Object.assign(answers, { cost });
}

/** Writes one answer per prompt: a policy here (answerPrompts), or a model behind an API (openAiAnswerer). */
export type Answerer = (prompts: readonly EnvPrompt[], sampling: EvaluationSampling) => Promise<GeneratedAnswer[]>;

/**
 * A model behind any OpenAI-compatible chat API (vLLM, llama.cpp's server, a hosted one) answering
 * each prompt as one user message, at the evaluation's temperature, top-p, seed and token budget; a
 * reply cut off by the budget (`finish_reason: length`) is truncated, as a policy's would be. Such a
 * model writes no `<think>` block: judge it with `requireThink: false` (docs/rewards.md).
 */
export const openAiAnswerer =
  (target: HttpJudgeTarget, concurrency = 8): Answerer =>
  async (prompts, sampling) => {
    const answers: GeneratedAnswer[] = new Array(prompts.length);
    let next = 0;
    const worker = async () => {
      while (next < prompts.length) {
        const i = next++;
        if (prompts[i]!.picture !== undefined)
          throw new Error(`prompt ${prompts[i]!.id} has a picture: factrl sends an API model text only`);
        const reply = await chatCompletion(target, prompts[i]!.text, {
          temperature: sampling.temperature,
          topP: sampling.topP,
          maxTokens: sampling.maxNewTokens,
          seed: sampling.seed + i,
        });
        answers[i] = { text: reply.content, truncated: reply.finishReason === "length" };
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, prompts.length) }, worker));
    return answers;
  };

/** Scores answers (one per prompt) against `references` (one per prompt, or none: the knowledge base's). */
export async function evaluateAnswers(
  version: number,
  prompts: readonly EnvPrompt[],
  answers: GeneratedAnswers,
  pipeline: RewardPipeline,
  references?: ReadonlyMap<string, string>,
): Promise<EvaluationResult> {
  const { cost } = answers;
  const scores = await pipeline.score(
    prompts.map((p, i) => {
      const reference = references?.get(p.id);
      return {
        prompt: {
          id: p.id,
          text: p.text,
          ...(p.focus ? { focus: { entity: p.focus.entity, aspects: p.focus.aspects } } : {}),
        },
        answer: answers[i]!.text,
        truncated: answers[i]!.truncated,
        ...(reference === undefined ? {} : { reference }),
      };
    }),
  );
  const evaluated: EvaluatedAnswer[] = prompts.map((p, i) => ({
    ...answerResultOf(scores[i]!, answers[i]!.text.split(" ").filter(Boolean).length),
    promptId: p.id,
    suite: p.suite,
    ...(p.bucket === undefined ? {} : { bucket: p.bucket }),
    answer: answers[i]!.text,
    reward: scores[i]!.reward,
  }));
  const reward = evaluated.reduce((a, r) => a + r.reward, 0) / Math.max(1, evaluated.length);
  return {
    version,
    overall: { ...summarize(evaluated), reward },
    bySuite: Object.fromEntries(summarizeBy(evaluated, (r) => r.suite)),
    byBucket: Object.fromEntries(
      summarizeBy(
        evaluated.filter((r) => r.bucket !== undefined),
        (r) => r.bucket!,
      ),
    ),
    answers: evaluated,
    ...(cost === undefined ? {} : { cost }),
  };
}

/**
 * One line per answer, in VeriScore's field names: `claim_list`, and `claim_verification_result` with
 * FactWorld's three verdicts (supported | contradicted | unverifiable); a malformed answer has no claims.
 */
export function claimLines(
  world: World,
  prompts: readonly EnvPrompt[],
  answers: readonly { promptId: string; answer: string }[],
): string[] {
  const verifier = new ClaimVerifier(world);
  const textOf = new Map(prompts.map((p) => [p.id, p.text]));
  return answers.map(({ promptId, answer }) => {
    const analysis = analyzeAnswer(verifier, answer);
    const claims = analysis.claims.map((c) => ({
      claim: `${c.subject} ${c.relation} ${c.object}`,
      verdict: c.verdict,
    }));
    return JSON.stringify({
      prompt_id: promptId,
      question: textOf.get(promptId) ?? "",
      response: answer,
      well_formed: analysis.format.ok,
      claim_list: claims.map((c) => c.claim),
      claim_verification_result: claims.map((c) => ({ claim: c.claim, verification_result: c.verdict })),
    });
  });
}

/**
 * VeriScore-style JSONL lines of `answers`, one per answer: FactWorld's verifier where the
 * environment has a knowledge base (claimLines), else the first http: judge's judgements of them
 * (rewards/records.ts judgementRecord, with `prompt_id`; an answer it did not judge has no claims);
 * undefined when there is neither.
 */
export function claimRecordLines(
  env: Pick<Environment, "kind" | "knowledge">,
  prompts: readonly EnvPrompt[],
  answers: readonly { promptId: string; answer: string }[],
  pipeline: RewardPipeline,
  model: string,
): string[] | undefined {
  if (env.knowledge) return claimLines(env.knowledge, prompts, answers);
  const judge = pipeline.modules.find(isHttpJudgeModule);
  if (!judge) return undefined;
  const textOf = new Map(prompts.map((p) => [p.id, p.text]));
  return answers.map(({ promptId, answer }) => {
    const question = textOf.get(promptId) ?? "";
    const judgement = judge.judgementOf(promptId, answer) ?? {
      question,
      response: answer,
      claimList: [],
      verifications: [],
    };
    return JSON.stringify({
      prompt_id: promptId,
      ...judgementRecord({ question, promptSource: env.kind, model }, judgement),
    });
  });
}
