/**
 * Reading answers: the `<think> … </think> answer` format, claim extraction from the answer part,
 * and verification of each claim against the knowledge base (supported | contradicted | unverifiable).
 */
import { type ParsedClaim, parseSentence, sameClaim } from "./grammar.ts";
import { THINK_CLOSE, THINK_OPEN } from "./reference.ts";
import { inverseOf, type Relation, relationInfo } from "./schema.ts";
import type { Entity, World } from "./world.ts";

export type AnswerFormat =
  | { readonly ok: true; readonly reasoning: string; readonly answer: string; readonly answerStart: number }
  | { readonly ok: false; readonly reason: string };

const SPECIAL_TAG = /<\/?(?:think|pad|bos|eos|unk|sep)>/;

/**
 * Well-formed: starts with `<think>`, has exactly one `<think>` and one `</think>` after it, and no
 * special token in the answer part. An empty answer part is well-formed (an abstention).
 */
export function parseAnswer(text: string): AnswerFormat {
  const start = text.length - text.trimStart().length;
  if (!text.startsWith(THINK_OPEN, start)) return { ok: false, reason: `does not start with ${THINK_OPEN}` };
  const close = text.indexOf(THINK_CLOSE, start);
  if (close < 0) return { ok: false, reason: `no ${THINK_CLOSE}` };
  const reasoning = text.slice(start + THINK_OPEN.length, close);
  if (reasoning.includes(THINK_OPEN)) return { ok: false, reason: `${THINK_OPEN} opened twice` };
  const answerStart = close + THINK_CLOSE.length;
  const answer = text.slice(answerStart);
  const stray = SPECIAL_TAG.exec(answer);
  if (stray) return { ok: false, reason: `special token ${stray[0]} in the answer part` };
  return { ok: true, reasoning: reasoning.trim(), answer, answerStart };
}

export interface Claim extends ParsedClaim {
  /** [start, end) character offsets of the claim's sentence in the text given to extractClaims. */
  readonly span: readonly [number, number];
}

const isSentenceStop = (word: string) => word === "." || word === "?" || word === "!";

/**
 * The claims of a text made of sentences of the grammar (sentences end with ".", "?" or "!", as a
 * word of its own or attached to the last word).
 */
export function extractClaims(text: string, offset = 0): Claim[] {
  const claims: Claim[] = [];
  let words: string[] = [];
  let sentenceStart = -1;
  const flush = (end: number) => {
    if (words.length === 0) return;
    for (const claim of parseSentence(words)) claims.push({ ...claim, span: [offset + sentenceStart, offset + end] });
    words = [];
    sentenceStart = -1;
  };
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && text.charCodeAt(i) <= 32) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && text.charCodeAt(j) > 32) j++;
    // A real tokenizer's text ends sentences as people write them ("France."): the stop is a word of its own.
    const attachedStop = j - i > 1 && isSentenceStop(text[j - 1]!);
    const word = text.slice(i, attachedStop ? j - 1 : j);
    if (sentenceStart < 0) sentenceStart = i;
    words.push(word);
    if (attachedStop) words.push(text[j - 1]!);
    if (attachedStop || isSentenceStop(word)) flush(j);
    i = j;
  }
  flush(n);
  return claims;
}

export type Verdict = "supported" | "contradicted" | "unverifiable";

export interface VerifiedClaim extends Claim {
  readonly verdict: Verdict;
}

/** Answers "is this claim true?" from the knowledge base, in O(1) per claim. */
export class ClaimVerifier {
  private readonly values: ReadonlyMap<string, ReadonlyMap<Relation, readonly string[]>>;

  constructor(private readonly world: World) {
    this.values = new Map(
      world.entities.map((e) => {
        const byRelation = new Map<Relation, string[]>();
        for (const f of e.facts) byRelation.set(f.relation, [...(byRelation.get(f.relation) ?? []), f.object]);
        return [e.name, byRelation];
      }),
    );
  }

  entity(name: string): Entity | undefined {
    return this.world.byName.get(name);
  }

  /**
   * Supported: the knowledge base holds the fact. Contradicted: it holds a different value for a
   * one-valued relation, or (set-valued) the object belongs to someone else. Otherwise —
   * an unknown subject, or a relation the subject has no value for — unverifiable.
   */
  verdict(claim: ParsedClaim): Verdict {
    const known = this.values.get(claim.subject)?.get(claim.relation);
    if (known?.includes(claim.object)) return "supported";
    if (!relationInfo(claim.relation).many) return known ? "contradicted" : "unverifiable";
    const inverse = inverseOf(claim.relation);
    const owners = inverse ? this.values.get(claim.object)?.get(inverse) : undefined;
    return owners && owners.length > 0 ? "contradicted" : "unverifiable";
  }

  verify(claims: readonly Claim[]): VerifiedClaim[] {
    return claims.map((c) => ({
      subject: c.subject,
      relation: c.relation,
      object: c.object,
      span: c.span,
      verdict: this.verdict(c),
    }));
  }
}

/** Everything the reward needs to know about one answer. */
export interface AnswerAnalysis {
  readonly format: AnswerFormat;
  readonly claims: readonly VerifiedClaim[];
  /** Distinct supported claims (S) and distinct unsupported ones (U = contradicted + unverifiable). */
  readonly supported: number;
  readonly contradicted: number;
  readonly unverifiable: number;
}

/** Parses, extracts and verifies; repeated claims count once, so repetition earns nothing. */
export function analyzeAnswer(verifier: ClaimVerifier, text: string): AnswerAnalysis {
  const format = parseAnswer(text);
  if (!format.ok) return { format, claims: [], supported: 0, contradicted: 0, unverifiable: 0 };
  const claims = verifier.verify(extractClaims(format.answer, format.answerStart));
  const counts = { supported: 0, contradicted: 0, unverifiable: 0 };
  claims.forEach((claim, i) => {
    // Answers hold a handful of claims: a linear scan for repeats beats building string keys.
    for (let j = 0; j < i; j++) if (sameClaim(claims[j] as VerifiedClaim, claim)) return;
    counts[claim.verdict]++;
  });
  return { format, claims, ...counts };
}
