/**
 * A learner step's `learner.*` figures (docs/metrics.md), the same in both runners: what the update
 * did (loss, KL, clip fraction, entropy), what it trained on (the reward and every reward term and
 * component, answer length, malformed / truncated / abstaining shares, the policy lag of its groups)
 * and what was dropped so far, by reason. Pure: numbers in, a flat name → number map out.
 */
import type { LearnerProgress, ScoredGroup } from "../actors/index.ts";
import type { GrpoStats } from "./grpo-step.ts";

/** Mean and population standard deviation; an empty list has none. */
export function meanAndStd(values: readonly number[]): { readonly mean: number; readonly std: number } | undefined {
  if (values.length === 0) return undefined;
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

/** `name.mean` and `name.std` of the values (nothing when there are none). */
const spread = (name: string, values: readonly number[]): Record<string, number> => {
  const s = meanAndStd(values);
  return s ? { [`${name}.mean`]: s.mean, [`${name}.std`]: s.std } : {};
};

/** A term's flag component (`format.malformed`, `precision.abstained`, or a plug-in's own) is 1. */
const flagged = (components: Readonly<Record<string, number>>, flag: string) => {
  for (const key in components) if ((key === flag || key.endsWith(`.${flag}`)) && components[key] === 1) return true;
  return false;
};

const share = (flags: readonly boolean[]) => (flags.length === 0 ? 0 : flags.filter(Boolean).length / flags.length);

/**
 * Entropy of the behaviour policy per answer token, estimated from the sampled tokens:
 * H ≈ −mean log π_behaviour(token) (an unbiased estimate; the full distribution is not kept).
 */
export function sampledTokenEntropy(groups: readonly ScoredGroup[]): number {
  let sum = 0;
  let tokens = 0;
  for (const g of groups)
    for (const a of g.rollout.answers) {
      for (const lp of a.logProbs) sum -= lp;
      tokens += a.logProbs.length;
    }
  return tokens === 0 ? 0 : sum / tokens;
}

/**
 * The step's metrics. `trainedOn`: the policy version the update started from, so a group's lag is
 * `trainedOn − the version that sampled it`.
 */
export function learnerStepMetrics(
  stats: GrpoStats,
  groups: readonly ScoredGroup[],
  progress: LearnerProgress,
  trainedOn: number,
): Record<string, number> {
  const scores = groups.flatMap((g) => g.scores);
  const answers = groups.flatMap((g) => g.rollout.answers);
  const byTerm = new Map<string, number[]>();
  for (const s of scores)
    for (const key in s.components) {
      const list = byTerm.get(key);
      if (list) list.push(s.components[key] as number);
      else byTerm.set(key, [s.components[key] as number]);
    }
  const lags = groups.map((g) => trainedOn - g.rollout.policyVersion);
  return {
    "learner.loss": stats.loss,
    "learner.gradNorm": stats.gradNorm,
    "learner.clipFraction": stats.clipFraction,
    "learner.ratio": stats.meanRatio,
    "learner.kl": stats.kl,
    "learner.entropy": sampledTokenEntropy(groups),
    ...spread(
      "learner.reward",
      scores.map((s) => s.reward),
    ),
    ...Object.fromEntries(
      [...byTerm].flatMap(([term, values]) => Object.entries(spread(`learner.term.${term}`, values))),
    ),
    ...spread(
      "learner.answerTokens",
      answers.map((a) => a.tokens.length),
    ),
    "learner.truncatedShare": share(answers.map((a) => a.finishReason === "length")),
    "learner.malformedShare": share(scores.map((s) => flagged(s.components, "malformed"))),
    "learner.abstainedShare": share(scores.map((s) => flagged(s.components, "abstained"))),
    "learner.rewardFailures": scores.reduce((n, s) => n + s.failures.length, 0),
    ...spread("learner.policyLag", lags),
    "learner.policyLag.max": Math.max(0, ...lags),
    "learner.groups": groups.length,
    "learner.consumed": progress.consumed,
    "learner.drops.stale": progress.stale,
    "learner.drops.zeroVariance": progress.zeroVariance,
    "learner.drops.duplicates": progress.duplicates,
    "learner.drops.invalid": progress.invalid,
    "learner.drops.offPolicy": progress.offPolicy,
    "learner.skippedSteps": progress.skippedSteps,
    "learner.policyVersion": progress.policyVersion,
  };
}
