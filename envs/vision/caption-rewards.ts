/**
 * The caption task's reward modules, named like the built-in factuality terms so that configs,
 * metrics and reports stay the same (they replace the built-ins of the same name for this
 * environment): `format`, `precision`, `detail`, `relevance`. A caption's claims are verified against
 * the picture's truth and the entity's facts (CaptionVerifier): a claim naming the wrong entity or
 * contradicting the picture is unsupported, so it costs precision — a hallucination.
 *
 * They follow the reward-module contract of rewards/module.ts (envs/ does not import rewards/; the
 * pipeline checks every module and outcome it gets).
 */
import { type AnswerFormat, parseAnswer } from "../factworld/answers.ts";
import { DEFAULT_JUDGE_MARGIN, judgeOutcome, outcomeValue } from "../factworld/judge.ts";
import type { World } from "../factworld/world.ts";
import { captionClaims, captionRelevance } from "./caption-judge.ts";
import type { CaptionTruths } from "./caption-task.ts";
import { type CaptionAnalysis, CaptionVerifier } from "./captions.ts";

export const CAPTION_REWARD_VERSION = "1.0.0";
const CACHE_LIMIT = 8192;

/** What a module sees of one answer (rewards/module.ts RewardItem). */
interface CaptionRewardItem {
  readonly prompt: { readonly id: string };
  readonly answer: string;
  readonly reference?: string;
  readonly truncated?: boolean;
}

type Outcome =
  | { readonly ok: true; readonly components: Record<string, number> }
  | { readonly ok: false; readonly error: { readonly kind: string; readonly message: string } };

interface CaptionRewardModule {
  readonly name: string;
  readonly version: string;
  score(batch: readonly CaptionRewardItem[]): Promise<Outcome[]>;
}

/** An answer read as a caption of its picture. */
interface ReadCaption {
  readonly format: AnswerFormat;
  /** The answer part's claims verified against the picture (an unreadable answer: nothing). */
  readonly analysis: CaptionAnalysis;
}

const rejected = (message: string): Outcome => ({ ok: false, error: { kind: "rejected", message } });

/** The four modules over one environment's pictures, sharing one verifier and one cache of readings. */
export function captionRewardModules(
  world: World,
  truths: CaptionTruths,
): Record<string, (options: Readonly<Record<string, unknown>>) => CaptionRewardModule> {
  const verifier = new CaptionVerifier(world);
  const cache = new Map<string, ReadCaption>();

  const truthOf = (item: CaptionRewardItem) => truths.get(item.prompt.id);
  const read = (item: CaptionRewardItem, truth: NonNullable<ReturnType<typeof truthOf>>): ReadCaption => {
    const key = `${item.prompt.id}\u0000${item.answer}`;
    let reading = cache.get(key);
    if (reading === undefined) {
      if (cache.size >= CACHE_LIMIT) cache.clear();
      const format = parseAnswer(item.answer);
      reading = { format, analysis: verifier.analyze(truth.truth, format.ok ? format.answer : "") };
      cache.set(key, reading);
    }
    return reading;
  };
  /** A module scoring each item of this environment's pictures; an item of another prompt is rejected. */
  const module = (
    name: string,
    scoreOne: (item: CaptionRewardItem, truth: NonNullable<ReturnType<typeof truthOf>>) => Outcome,
  ): CaptionRewardModule => ({
    name,
    version: CAPTION_REWARD_VERSION,
    score: async (batch) =>
      batch.map((item) => {
        const truth = truthOf(item);
        return truth ? scoreOne(item, truth) : rejected(`prompt ${item.prompt.id} is not a picture of this world`);
      }),
  });

  return {
    /** format = −1 and malformed = 1 for a malformed or unfinished answer (as the built-in). */
    format: () =>
      module("format", (item, truth) => {
        const ok = item.truncated !== true && read(item, truth).format.ok;
        return { ok: true, components: { format: ok ? 0 : -1, malformed: ok ? 0 : 1 } };
      }),
    /** P = S / (S + U) over the caption's distinct claims; no claims → 0 and abstained. */
    precision: () =>
      module("precision", (item, truth) => {
        const { format, analysis: a } = read(item, truth);
        const claims = a.supported + a.contradicted + a.unverifiable;
        return {
          ok: true,
          components: {
            precision: claims === 0 ? 0 : a.supported / claims,
            supported: a.supported,
            contradicted: a.contradicted,
            unverifiable: a.unverifiable,
            claims,
            abstained: format.ok && claims === 0 ? 1 : 0,
            wrongEntity: a.wrongEntity ? 1 : 0,
          },
        };
      }),
    /** D = log(1 + S) (or S with mode "linear"). */
    detail: (options) => {
      const mode = options.mode ?? "log";
      if (mode !== "log" && mode !== "linear")
        throw new Error(`detail: mode must be "log" or "linear", got ${String(mode)}`);
      return module("detail", (item, truth) => {
        const s = read(item, truth).analysis.supported;
        return { ok: true, components: { detail: mode === "log" ? Math.log1p(s) : s } };
      });
    },
    /**
     * R = 1 / 0.5 / 0: the caption judge's win / tie / loss against the reference (the item's — the
     * initial policy's caption — or else the re-aligned alt-text); `score` is the caption's own.
     */
    relevance: (options) => {
      const margin = options.margin ?? DEFAULT_JUDGE_MARGIN;
      if (typeof margin !== "number" || !(margin >= 0 && margin < 1))
        throw new Error(`relevance: margin must be in [0, 1), got ${String(margin)}`);
      return module("relevance", (item, truth) => {
        const score = captionRelevance(
          truth.truth,
          read(item, truth).analysis.claims.map((c) => c.claim),
        ).score;
        const reference = item.reference ?? truth.caption;
        const parsed = parseAnswer(reference);
        const referenceScore = captionRelevance(
          truth.truth,
          captionClaims(parsed.ok ? parsed.answer : reference),
        ).score;
        return {
          ok: true,
          components: { relevance: outcomeValue(judgeOutcome(score, referenceScore, margin)), score },
        };
      });
    },
  };
}
