/**
 * The built-in FactWorld reward modules: format, precision, detail and relevance. They share one
 * analyzer (format parse, claim extraction, verification), cached by answer text, so a batch scored
 * by all four parses each answer once.
 */
import {
  type AnswerAnalysis,
  type AnswerFormat,
  analyzeAnswer,
  ClaimVerifier,
  type EnvPrompt,
  extractClaims,
  isRelation,
  judgeOutcome,
  judgeRelevance,
  outcomeValue,
  type ParsedClaim,
  referenceSentences,
  relevanceScore,
  type World,
} from "../envs/index.ts";
import type { ModuleOutcome, RewardItem, RewardModule, RewardPrompt } from "./module.ts";

export const BUILTIN_VERSION = "1.0.0";
const CACHE_LIMIT = 8192;

/** A map that forgets everything when full: enough to share work within and across nearby batches. */
class BoundedCache<V> {
  private readonly map = new Map<string, V>();
  get(key: string, make: () => V): V {
    let value = this.map.get(key);
    if (value === undefined) {
      if (this.map.size >= CACHE_LIMIT) this.map.clear();
      value = make();
      this.map.set(key, value);
    }
    return value;
  }
}

export interface ReferenceJudgement {
  readonly claims: readonly ParsedClaim[];
  readonly score: number;
}

export interface FactWorldContext {
  readonly world: World;
  /** Known prompts, so items whose prompt carries no focus can be looked up by id. */
  readonly prompts?: readonly EnvPrompt[];
}

/** Shared per pipeline: the verifier, the analysis cache, and the reference-claims cache. */
export class FactWorldAnalyzer {
  private readonly verifier: ClaimVerifier;
  private readonly analyses = new BoundedCache<AnswerAnalysis>();
  private readonly references = new BoundedCache<ReferenceJudgement | string>();
  private readonly focusById: ReadonlyMap<string, NonNullable<RewardPrompt["focus"]>>;

  constructor(readonly context: FactWorldContext) {
    this.verifier = new ClaimVerifier(context.world);
    this.focusById = new Map((context.prompts ?? []).flatMap((p) => (p.focus ? [[p.id, p.focus] as const] : [])));
  }

  analyze(answer: string): AnswerAnalysis {
    return this.analyses.get(answer, () => analyzeAnswer(this.verifier, answer));
  }

  focusOf(prompt: RewardPrompt): RewardPrompt["focus"] {
    return prompt.focus ?? this.focusById.get(prompt.id);
  }

  /**
   * The reference answer's claims and relevance score (the item's reference, or else the knowledge
   * base's), cached per prompt and reference text; a string says why there is none.
   */
  reference(item: RewardItem): ReferenceJudgement | string {
    const key = `${item.prompt.id}\u0000${item.reference ?? ""}`;
    return this.references.get(key, () => {
      const focus = this.focusOf(item.prompt);
      if (!focus) return `prompt ${item.prompt.id} has no focus: FactWorld's judge scores FactWorld prompts only`;
      const claims = this.referenceClaims(item, focus);
      return typeof claims === "string" ? claims : { claims, score: relevanceScore(focus, claims) };
    });
  }

  private referenceClaims(
    item: RewardItem,
    focus: NonNullable<RewardPrompt["focus"]>,
  ): readonly ParsedClaim[] | string {
    if (item.reference !== undefined) {
      const analysis = analyzeAnswer(this.verifier, item.reference);
      return analysis.format.ok ? analysis.claims : extractClaims(item.reference);
    }
    const entity = this.context.world.byName.get(focus.entity);
    if (!entity) return `focus entity "${focus.entity}" is not in the world`;
    const aspects = focus.aspects.filter(isRelation);
    if (aspects.length !== focus.aspects.length) return `unknown aspect in [${focus.aspects.join(", ")}]`;
    return extractClaims(
      referenceSentences(this.context.world, { entityId: entity.id, entity: entity.name, aspects }).join(" "),
    );
  }
}

const scored = (components: Record<string, number>): ModuleOutcome => ({ ok: true, components });
const rejected = (message: string): ModuleOutcome => ({ ok: false, error: { kind: "rejected", message } });

function module(name: string, scoreOne: (item: RewardItem) => ModuleOutcome): RewardModule {
  return { name, version: BUILTIN_VERSION, score: async (batch) => batch.map(scoreOne) };
}

/**
 * format = −1 and malformed = 1 for a malformed answer; 0 and 0 otherwise (the composition applies
 * the penalty). An answer cut off by the token budget is malformed too: it never finished, and
 * rewarding it would teach the policy to write until the budget runs out. It reads the format only
 * (`parse`: envs parseAnswer, or the analyzer's cached analysis), so it needs no knowledge base.
 */
export const formatModule = (parse: (answer: string) => AnswerFormat) =>
  module("format", (item) => {
    const ok = item.truncated !== true && parse(item.answer).ok;
    return scored({ format: ok ? 0 : -1, malformed: ok ? 0 : 1 });
  });

/** P = S / (S + U); no claims → P = 0 and abstained = 1. */
export const precisionModule = (analyzer: FactWorldAnalyzer) =>
  module("precision", (item) => {
    const a = analyzer.analyze(item.answer);
    const claims = a.supported + a.contradicted + a.unverifiable;
    return scored({
      precision: claims === 0 ? 0 : a.supported / claims,
      supported: a.supported,
      contradicted: a.contradicted,
      unverifiable: a.unverifiable,
      claims,
      abstained: a.format.ok && claims === 0 ? 1 : 0,
    });
  });

export type DetailMode = "log" | "linear";

/** D = log(1 + S) by default, or S with mode "linear". */
export function detailModule(analyzer: FactWorldAnalyzer, options: { mode?: DetailMode } = {}): RewardModule {
  const mode = options.mode ?? "log";
  if (mode !== "log" && mode !== "linear")
    throw new Error(`detail: mode must be "log" or "linear", got ${String(mode)}`);
  return module("detail", (item) => {
    const s = analyzer.analyze(item.answer).supported;
    return scored({ detail: mode === "log" ? Math.log1p(s) : s });
  });
}

/** R = 1 / 0.5 / 0 for a win / tie / loss of the answer against the reference, for what the prompt asked; `score` is the answer's relevance score. */
export function relevanceModule(analyzer: FactWorldAnalyzer, options: { margin?: number } = {}): RewardModule {
  const { margin } = options;
  if (margin !== undefined && !(margin >= 0 && margin < 1))
    throw new Error(`relevance: margin must be in [0, 1), got ${margin}`);
  return module("relevance", (item) => {
    const reference = analyzer.reference(item);
    if (typeof reference === "string") return rejected(reference);
    const focus = analyzer.focusOf(item.prompt) as NonNullable<RewardPrompt["focus"]>;
    const score = relevanceScore(focus, analyzer.analyze(item.answer).claims);
    return scored({ relevance: outcomeValue(judgeOutcome(score, reference.score, margin)), score });
  });
}

/** The judge's full verdict with reasons, for reports (the module itself returns only numbers). */
export function explainRelevance(analyzer: FactWorldAnalyzer, item: RewardItem, margin?: number) {
  const focus = analyzer.focusOf(item.prompt);
  const reference = analyzer.reference(item);
  if (!focus || typeof reference === "string") return null;
  return judgeRelevance(focus, analyzer.analyze(item.answer).claims, reference.claims, margin);
}
