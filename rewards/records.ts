/**
 * Per-answer records as JSONL in VeriScore's layout (question, response, claim list per sentence,
 * all claims, per-claim verification result), so results are comparable with existing tools.
 * factrl's own details go under `factrl`.
 */
import { appendFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { type AnswerAnalysis, claimSentence } from "../envs/index.ts";
import type { Judgement } from "./http-judge.ts";

export interface VeriScoreRecord {
  readonly question: string;
  readonly prompt_source: string;
  readonly response: string;
  readonly model: string;
  readonly abstained: boolean;
  /** Claims per sentence that has any (VeriScore's claim_list). */
  readonly claim_list: readonly (readonly string[])[];
  readonly all_claims: readonly string[];
  readonly claim_verification_result: readonly {
    readonly claim: string;
    readonly verification_result: "supported" | "unsupported";
  }[];
  readonly factrl?: Readonly<Record<string, unknown>>;
}

export interface RecordSource {
  readonly question: string;
  readonly promptSource: string;
  readonly model: string;
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A FactWorld answer's record; contradicted and unverifiable claims are both "unsupported" (VeriScore is binary). */
export function factWorldRecord(source: RecordSource, answer: string, analysis: AnswerAnalysis): VeriScoreRecord {
  const response = analysis.format.ok ? analysis.format.answer.trim() : answer.trim();
  const bySentence = new Map<number, string[]>();
  const results = new Map<
    string,
    { claim: string; verification_result: "supported" | "unsupported"; verdict: string }
  >();
  for (const claim of analysis.claims) {
    const text = claimSentence(claim);
    const list = bySentence.get(claim.span[0]) ?? [];
    list.push(text);
    bySentence.set(claim.span[0], list);
    results.set(text, {
      claim: text,
      verification_result: claim.verdict === "supported" ? "supported" : "unsupported",
      verdict: claim.verdict,
    });
  }
  return {
    question: source.question,
    prompt_source: source.promptSource,
    response,
    model: source.model,
    abstained: analysis.format.ok && analysis.claims.length === 0,
    claim_list: [...bySentence.values()],
    all_claims: [...results.keys()],
    claim_verification_result: [...results.values()].map(({ claim, verification_result }) => ({
      claim,
      verification_result,
    })),
    factrl: {
      ...source.extra,
      malformed: !analysis.format.ok,
      verdicts: Object.fromEntries([...results.values()].map((r) => [r.claim, r.verdict])),
    },
  };
}

/** An HTTP judge's judgement as a record. */
export function judgementRecord(source: RecordSource, j: Judgement): VeriScoreRecord {
  return {
    question: source.question,
    prompt_source: source.promptSource,
    response: j.response,
    model: source.model,
    abstained: j.verifications.length === 0,
    claim_list: j.claimList.filter((claims) => claims.length > 0),
    all_claims: j.verifications.map((v) => v.claim),
    claim_verification_result: j.verifications.map((v) => ({ claim: v.claim, verification_result: v.label })),
    ...(source.extra ? { factrl: source.extra } : {}),
  };
}

/** Appends records, one JSON object per line, creating the directory if needed. */
export async function appendRecords(path: string, records: readonly VeriScoreRecord[]): Promise<void> {
  if (records.length === 0) return;
  await mkdir(dirname(path), { recursive: true });
  await appendFile(path, records.map((r) => `${JSON.stringify(r)}\n`).join(""));
}
