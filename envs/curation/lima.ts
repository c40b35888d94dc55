/**
 * LIMA-style selection of a small SFT set (Zhou et al., "LIMA: Less Is More for Alignment"): quality
 * first — only candidates whose reference answer is well-formed and fully verified (the caller's
 * filter) — then diversity: near-duplicates removed, and the set grown greedily by what each example
 * adds that the set does not cover yet (facts, entities, suites, relations). Pure: candidates in,
 * chosen indices out.
 */
import { hashString } from "../factworld/random.ts";
import { CurationArgumentError } from "./balance.ts";

export interface SftCandidate {
  readonly entity: string;
  readonly suite: string;
  /** The answer's facts, as keys (`relation:object`). */
  readonly facts: readonly string[];
  /** The answer's text (near-duplicates are judged on it). */
  readonly answer: string;
}

/** Jaccard similarity of the two texts' word sets (1 for two empty texts). */
export function wordJaccard(a: string, b: string): number {
  const x = new Set(a.split(" ").filter(Boolean));
  const y = new Set(b.split(" ").filter(Boolean));
  if (x.size === 0 && y.size === 0) return 1;
  let both = 0;
  for (const w of x) if (y.has(w)) both += 1;
  return both / (x.size + y.size - both);
}

/**
 * Up to `count` candidates (indices, in the order chosen): first every candidate whose answer is a
 * near-duplicate (word Jaccard ≥ `duplicate`) of an earlier one about the same entity is dropped (the
 * earlier in a seeded order stays); then, one at a time, the candidate adding the most not yet covered
 * — 1 per new fact, 1 for a new entity, 1 for a new (suite, relation) pair, and ½ for a suite picked
 * fewer times than the others so far — ties broken by a hash of (seed, index).
 */
export function limaSelect(
  candidates: readonly SftCandidate[],
  count: number,
  seed: number,
  duplicate = 0.9,
): number[] {
  if (!Number.isInteger(count) || count < 0)
    throw new CurationArgumentError("count", `${count}; expected an integer ≥ 0`);
  if (!(duplicate > 0 && duplicate <= 1))
    throw new CurationArgumentError("duplicate", `${duplicate}; expected a number in (0, 1]`);
  const tie = (i: number) => hashString(`${seed}:${i}`);
  const order = candidates.map((_, i) => i).sort((a, b) => tie(a) - tie(b) || a - b);
  const kept: number[] = [];
  const byEntity = new Map<string, number[]>();
  for (const i of order) {
    const c = candidates[i]!;
    const same = byEntity.get(c.entity) ?? [];
    if (same.some((j) => wordJaccard(candidates[j]!.answer, c.answer) >= duplicate)) continue;
    same.push(i);
    byEntity.set(c.entity, same);
    kept.push(i);
  }
  const facts = new Set<string>();
  const entities = new Set<string>();
  const suiteRelations = new Set<string>();
  const perSuite = new Map<string, number>();
  const chosen: number[] = [];
  const remaining = new Set(kept);
  while (chosen.length < count && remaining.size > 0) {
    const fewest = Math.min(...[...new Set(candidates.map((c) => c.suite))].map((s) => perSuite.get(s) ?? 0));
    let best = -1;
    let bestGain = Number.NEGATIVE_INFINITY;
    for (const i of remaining) {
      const c = candidates[i]!;
      const gain =
        c.facts.filter((f) => !facts.has(f)).length +
        (entities.has(c.entity) ? 0 : 1) +
        [...new Set(c.facts.map((f) => `${c.suite}/${f.split(":")[0]}`))].filter((r) => !suiteRelations.has(r)).length +
        ((perSuite.get(c.suite) ?? 0) === fewest ? 0.5 : 0);
      if (gain > bestGain || (gain === bestGain && tie(i) < tie(best))) {
        best = i;
        bestGain = gain;
      }
    }
    const c = candidates[best]!;
    for (const f of c.facts) {
      facts.add(f);
      suiteRelations.add(`${c.suite}/${f.split(":")[0]}`);
    }
    entities.add(c.entity);
    perSuite.set(c.suite, (perSuite.get(c.suite) ?? 0) + 1);
    chosen.push(best);
    remaining.delete(best);
  }
  return chosen;
}
