/**
 * The evidence-grounded reward (`evidence`): every claim of the answer is verified against passages a
 * retriever returns for it — never against the environment's knowledge base — the way VeriScore and
 * SAFE verify against search results. Claims are extracted as the oracle path extracts them (envs'
 * parseAnswer + extractClaims); a claim is supported when the retrieved passages state it,
 * contradicted when they state otherwise, unverifiable when none speaks to it (envs evidenceVerdict).
 * The corpus' noisy pages are retrieved and believed as the web's would be.
 *
 * Where the passages come from is the caller's: the serial runner asks a retriever in its process,
 * a reward actor asks the retriever role over NATS with a timeout. A retrieval that does not answer
 * in time leaves the claim unverifiable, counted in the answer's `timeouts` component.
 */
import {
  type Claim,
  claimSentence,
  evidenceVerdict,
  extractClaims,
  type ParsedClaim,
  parseAnswer,
  sameClaim,
  type Verdict,
} from "../envs/index.ts";
import { type ModuleOutcome, nameOption, positiveIntOption, type RewardItem, type RewardModule } from "./module.ts";
import { cachedVerdict, type RejectionLog, type VerdictCache, type VerifierIdentity } from "./verdict-cache.ts";

/** A passage as the retriever returns it. */
export interface EvidencePassage {
  readonly id: string;
  readonly text: string;
}

/** Up to `k` passages for `query`, best first; null when the retriever did not answer within `timeoutMs`. */
export type EvidenceSource = (request: {
  readonly query: string;
  readonly k: number;
  readonly timeoutMs: number;
}) => Promise<readonly EvidencePassage[] | null>;

/** Part of every cache key: bump it when evidenceVerdict's rules change. */
export const EVIDENCE_VERIFIER: VerifierIdentity<Verdict> = {
  version: "factworld-evidence/1",
  labels: ["supported", "contradicted", "unverifiable"],
};

export interface EvidenceOptions {
  /** Module name (default "evidence"). */
  readonly name?: string;
  /** Passages retrieved per claim (default 5). */
  readonly k?: number;
  /** How long one retrieval may take before its claim counts as unverifiable (default 2000 ms). */
  readonly timeoutMs?: number;
  /**
   * The term's value: `precision` (default) S / (S + U), or `detail` log(1 + S) — the detail term
   * from evidence-supported claims, so that a reward needs no oracle at all (docs/rewards.md).
   */
  readonly term?: "precision" | "detail";
}

/** The distinct claims of an answer's answer part (a repeated claim counts once, as for the oracle); null when malformed. */
export function distinctClaims(answer: string): Claim[] | null {
  const format = parseAnswer(answer);
  if (!format.ok) return null;
  const claims: Claim[] = [];
  for (const claim of extractClaims(format.answer, format.answerStart))
    if (!claims.some((c) => sameClaim(c, claim))) claims.push(claim);
  return claims;
}

/** One claim's verdict from retrieved passages, and whether its retrieval timed out. */
export type EvidenceVerification = (claim: ParsedClaim) => Promise<{ verdict: Verdict; timedOut: boolean }>;

/** Verifies claims against `k` passages retrieved for each (the claim's sentence is the query), through the cache. */
export function evidenceVerification(
  source: EvidenceSource,
  settings: { readonly k: number; readonly timeoutMs: number },
  cache?: VerdictCache,
  onRejected?: RejectionLog,
): EvidenceVerification {
  const { k, timeoutMs } = settings;
  return async (claim) => {
    const query = claimSentence(claim);
    const passages = await source({ query, k, timeoutMs });
    if (passages === null) return { verdict: "unverifiable", timedOut: true };
    const verdict = await cachedVerdict(
      cache,
      EVIDENCE_VERIFIER,
      query,
      passages.map((p) => p.id),
      async () =>
        evidenceVerdict(
          claim,
          passages.map((p) => p.text),
        ).verdict,
      onRejected,
    );
    return { verdict, timedOut: false };
  };
}

export function evidenceModule(
  source: EvidenceSource,
  options: Readonly<Record<string, unknown>> = {},
  cache?: VerdictCache,
  onRejected?: RejectionLog,
): RewardModule {
  const name = nameOption(options, "evidence", "evidence");
  const k = positiveIntOption(options, "k", 5, "evidence");
  const timeoutMs = positiveIntOption(options, "timeoutMs", 2000, "evidence");
  const term = options.term ?? "precision";
  if (term !== "precision" && term !== "detail")
    throw new Error(`evidence: options.term must be "precision" or "detail", got ${JSON.stringify(term)}`);
  const verify = evidenceVerification(source, { k, timeoutMs }, cache, onRejected);

  const scoreOne = async (item: RewardItem): Promise<ModuleOutcome> => {
    const claims = distinctClaims(item.answer);
    // A malformed answer has no claims to verify; the format term penalises it.
    if (claims === null)
      return {
        ok: true,
        components: { [name]: 0, supported: 0, contradicted: 0, unverifiable: 0, claims: 0, abstained: 0, timeouts: 0 },
      };
    const results = await Promise.all(claims.map(verify));
    const count = (v: Verdict) => results.filter((r) => r.verdict === v).length;
    const supported = count("supported");
    return {
      ok: true,
      components: {
        [name]: term === "detail" ? Math.log1p(supported) : claims.length === 0 ? 0 : supported / claims.length,
        supported,
        contradicted: count("contradicted"),
        unverifiable: count("unverifiable"),
        claims: claims.length,
        abstained: claims.length === 0 ? 1 : 0,
        timeouts: results.filter((r) => r.timedOut).length,
      },
    };
  };

  return {
    name,
    version: EVIDENCE_VERIFIER.version,
    score: (batch) => Promise.all(batch.map(scoreOne)),
  };
}
