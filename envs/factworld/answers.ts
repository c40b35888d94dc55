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

/** Facts by subject and relation: the knowledge base's, or what a passage states. */
export type FactTable = ReadonlyMap<string, ReadonlyMap<Relation, readonly string[]>>;

/** The table of `facts`; with `bothWays`, each fact of an invertible relation is also entered from its object's side. */
export function factTable(facts: Iterable<ParsedClaim>, bothWays = false): FactTable {
  const table = new Map<string, Map<Relation, string[]>>();
  const add = (subject: string, relation: Relation, object: string) => {
    let byRelation = table.get(subject);
    if (!byRelation) {
      byRelation = new Map();
      table.set(subject, byRelation);
    }
    const objects = byRelation.get(relation);
    if (!objects) byRelation.set(relation, [object]);
    else if (!objects.includes(object)) objects.push(object);
  };
  for (const f of facts) {
    add(f.subject, f.relation, f.object);
    const inverse = bothWays ? inverseOf(f.relation) : undefined;
    if (inverse) add(f.object, inverse, f.subject);
  }
  return table;
}

/**
 * Supported: the table holds the fact. Contradicted: it holds a different value for a one-valued
 * relation, or (set-valued) the object belongs to someone else. Otherwise — an unknown subject, or
 * a relation the subject has no value for — unverifiable.
 */
export function tableVerdict(table: FactTable, claim: ParsedClaim): Verdict {
  const known = table.get(claim.subject)?.get(claim.relation);
  if (known?.includes(claim.object)) return "supported";
  if (!relationInfo(claim.relation).many) return known ? "contradicted" : "unverifiable";
  const inverse = inverseOf(claim.relation);
  const owners = inverse ? table.get(claim.object)?.get(inverse) : undefined;
  return owners && owners.length > 0 ? "contradicted" : "unverifiable";
}

/** Answers "is this claim true?" from the knowledge base, in O(1) per claim. */
export class ClaimVerifier {
  private readonly values: FactTable;

  constructor(private readonly world: World) {
    this.values = factTable(
      world.entities.flatMap((e) => e.facts.map((f) => ({ subject: e.name, relation: f.relation, object: f.object }))),
    );
  }

  entity(name: string): Entity | undefined {
    return this.world.byName.get(name);
  }

  /** The knowledge base's verdict (tableVerdict). */
  verdict(claim: ParsedClaim): Verdict {
    return tableVerdict(this.values, claim);
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

/** A claim checked against retrieved passages: the verdict, and how many passages support or contradict it. */
export interface EvidenceJudgement {
  readonly verdict: Verdict;
  readonly supporting: number;
  readonly contradicting: number;
}

/**
 * The VeriScore shape without an oracle: each passage's claims (read with the same extractor as
 * answers) form a small fact table (both ways, since a passage may state "W was created by P" for
 * "P created W") and give the passage's verdict on the claim. Supported when more passages support
 * the claim than contradict it, contradicted when more contradict it, unverifiable when none speaks
 * to it or as many contradict as support (conflicting evidence, as from the corpus' noisy pages).
 */
export function evidenceVerdict(claim: ParsedClaim, passages: readonly string[]): EvidenceJudgement {
  let supporting = 0;
  let contradicting = 0;
  for (const passage of passages) {
    const verdict = tableVerdict(factTable(extractClaims(passage), true), claim);
    if (verdict === "supported") supporting++;
    else if (verdict === "contradicted") contradicting++;
  }
  const verdict: Verdict =
    supporting > contradicting ? "supported" : contradicting > supporting ? "contradicted" : "unverifiable";
  return { verdict, supporting, contradicting };
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
