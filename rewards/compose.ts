/**
 * Composition: r = (format penalty) if the answer is malformed, else Σ weight · term — with the
 * paper's terms, P + λ·D + μ·R. Terms and weights come from the config, so the ablations (precision
 * only; precision + detail; all three) are config changes.
 */
import type { ItemResult, RewardFailure } from "./module.ts";

export interface WeightedTerm {
  readonly name: string;
  readonly weight: number;
}

export interface ComposedScore {
  /** The reward r; a failed term contributes nothing (and is listed in failures). */
  readonly reward: number;
  /** `name` = the term's value; other components of a module as `name.component`. */
  readonly components: Readonly<Record<string, number>>;
  readonly failures: readonly RewardFailure[];
  /** Some term reported `malformed = 1`: only the terms that report malformedness count. */
  readonly malformed: boolean;
}

const prefixedKeys = new Map<string, Map<string, string>>();
/** `name.key` for a module's extra components (memoised: the same few keys recur for every answer). */
function prefixed(name: string, key: string): string {
  if (key === name) return key;
  let byKey = prefixedKeys.get(name);
  if (byKey === undefined) {
    byKey = new Map();
    if (prefixedKeys.size < 1_000) prefixedKeys.set(name, byKey);
  }
  let out = byKey.get(key);
  if (out === undefined) {
    out = `${name}.${key}`;
    if (byKey.size < 1_000) byKey.set(key, out);
  }
  return out;
}

/** Pure: combines one answer's per-term results (in the order of `terms`) into its reward. */
export function composeReward(terms: readonly WeightedTerm[], results: readonly ItemResult[]): ComposedScore {
  if (terms.length !== results.length)
    throw new Error(`composeReward: ${terms.length} terms, ${results.length} results`);
  const components: Record<string, number> = {};
  const failures: RewardFailure[] = [];
  let sum = 0;
  let penalty = 0;
  let malformed = false;
  terms.forEach((term, i) => {
    const result = results[i] as ItemResult;
    if (!result.ok) {
      failures.push(result.failure);
      return;
    }
    const value = result.components[term.name] as number;
    for (const key in result.components) components[prefixed(term.name, key)] = result.components[key] as number;
    sum += term.weight * value;
    if (result.components.malformed === 1) {
      malformed = true;
      penalty += term.weight * value;
    }
  });
  return { reward: malformed ? penalty : sum, components, failures, malformed };
}
