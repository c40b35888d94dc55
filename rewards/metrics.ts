/**
 * The metrics reported everywhere (docs/rewards.md, "Records and metrics"), as pure functions over per-answer
 * results: hallucination rate = 1 − mean precision over answers that make claims; detail = mean
 * supported claims; relevance win rate = mean R (ties count half); abstention rate; answer length.
 */
import type { ComposedScore } from "./compose.ts";

export interface AnswerResult {
  readonly malformed: boolean;
  /** Distinct claims (S + U) and distinct supported claims (S). */
  readonly claims: number;
  readonly supported: number;
  /** R ∈ {0, 0.5, 1}, when a relevance judge scored the answer. */
  readonly relevance?: number;
  /** Answer length, in tokens (or words). */
  readonly length: number;
}

const mean = (xs: readonly number[]): number | null =>
  xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;

/** Claim precision S / (S + U) of each well-formed answer that makes a claim: what hallucination averages. */
export const answerPrecisions = (results: readonly AnswerResult[]): number[] =>
  results.filter((r) => !r.malformed && r.claims > 0).map((r) => r.supported / r.claims);

/** 1 − mean precision over well-formed answers with at least one claim; null when there are none. */
export function hallucinationRate(results: readonly AnswerResult[]): number | null {
  const p = mean(answerPrecisions(results));
  return p === null ? null : 1 - p;
}

/** A sample mean with its standard error √(s² / n) (s² with n − 1; one value has error 0). */
export interface MeanEstimate {
  readonly mean: number;
  readonly se: number;
  readonly n: number;
}

export function meanEstimate(xs: readonly number[]): MeanEstimate | null {
  const n = xs.length;
  if (n === 0) return null;
  const m = xs.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? xs.reduce((a, x) => a + (x - m) ** 2, 0) / (n - 1) : 0;
  return { mean: m, se: Math.sqrt(variance / n), n };
}

/**
 * The standard error of a macro average — the mean over G groups of each group's mean, as reports
 * average suites: √(Σ_g se_g²) / G (groups sampled independently). null when a group is empty.
 */
export function macroAverageStandardError(groups: readonly (readonly number[])[]): number | null {
  const estimates = groups.map(meanEstimate);
  if (estimates.length === 0 || estimates.some((e) => e === null)) return null;
  return Math.sqrt(estimates.reduce((a, e) => a + e!.se ** 2, 0)) / estimates.length;
}

/** Mean S over well-formed answers (abstentions count as 0). */
export const meanSupported = (results: readonly AnswerResult[]): number | null =>
  mean(results.filter((r) => !r.malformed).map((r) => r.supported));

/** Mean R over answers the judge scored: wins count 1, ties ½. */
export const relevanceWinRate = (results: readonly AnswerResult[]): number | null =>
  mean(results.flatMap((r) => (r.relevance === undefined ? [] : [r.relevance])));

/** Share of well-formed answers that make no claim. */
export const abstentionRate = (results: readonly AnswerResult[]): number | null =>
  mean(results.filter((r) => !r.malformed).map((r) => (r.claims === 0 ? 1 : 0)));

export const malformedRate = (results: readonly AnswerResult[]): number | null =>
  mean(results.map((r) => (r.malformed ? 1 : 0)));

export const meanLength = (results: readonly AnswerResult[]): number | null => mean(results.map((r) => r.length));

export interface FactualityMetrics {
  readonly answers: number;
  readonly hallucinationRate: number | null;
  readonly detail: number | null;
  readonly relevanceWinRate: number | null;
  readonly abstentionRate: number | null;
  readonly malformedRate: number | null;
  readonly meanLength: number | null;
}

export function summarize(results: readonly AnswerResult[]): FactualityMetrics {
  return {
    answers: results.length,
    hallucinationRate: hallucinationRate(results),
    detail: meanSupported(results),
    relevanceWinRate: relevanceWinRate(results),
    abstentionRate: abstentionRate(results),
    malformedRate: malformedRate(results),
    meanLength: meanLength(results),
  };
}

/** `summarize` per group (popularity bucket, suite, …), groups in first-seen order. */
export function summarizeBy<T extends AnswerResult>(
  results: readonly T[],
  groupOf: (r: T) => string,
): Map<string, FactualityMetrics> {
  const groups = new Map<string, T[]>();
  for (const r of results) {
    const key = groupOf(r);
    const list = groups.get(key);
    if (list) list.push(r);
    else groups.set(key, [r]);
  }
  return new Map([...groups].map(([key, list]) => [key, summarize(list)]));
}

/** Reads an AnswerResult from the built-ins' composed components (`precision.claims`, …). */
export function answerResultOf(score: ComposedScore, length: number): AnswerResult {
  const c = score.components;
  return {
    malformed: score.malformed,
    claims: c["precision.claims"] ?? 0,
    supported: c["precision.supported"] ?? 0,
    ...(c.relevance === undefined ? {} : { relevance: c.relevance }),
    length,
  };
}
