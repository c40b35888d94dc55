/**
 * CM3Leon's retrieval rules over a best-first candidate list, and the recall the retrievers are
 * judged by. Pure functions.
 */

export interface Scored {
  /** The document's index in the corpus. */
  readonly index: number;
  readonly score: number;
}

/**
 * Relevance first, then diversity: walks the candidates best-first and keeps one unless its
 * similarity to a document already kept exceeds `maxSimilarity` (CM3Leon: 0.9, which drops
 * near-duplicates — the same facts in the same words — and keeps documents that add something).
 */
export function selectDiverse(
  candidates: readonly Scored[],
  k: number,
  similarity: (a: number, b: number) => number,
  maxSimilarity: number,
): Scored[] {
  const chosen: Scored[] = [];
  for (const candidate of candidates) {
    if (chosen.length === k) break;
    if (chosen.every((kept) => similarity(kept.index, candidate.index) <= maxSimilarity)) chosen.push(candidate);
  }
  return chosen;
}

/** The `n` best of `scores` (by index), best first; ties keep the lower index first. */
export function topScores(scores: ArrayLike<number>, n: number): Scored[] {
  const best: Scored[] = [];
  for (let index = 0; index < scores.length; index++) {
    const score = scores[index]!;
    if (best.length === n && score <= best[n - 1]!.score) continue;
    let at = best.length === n ? n - 1 : best.length;
    while (at > 0 && best[at - 1]!.score < score) at--;
    best.splice(at, 0, { index, score });
    if (best.length > n) best.pop();
  }
  return best;
}

/** Cosine similarity of two sparse count vectors. */
export function countCosine(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (const [word, count] of a) {
    na += count * count;
    dot += count * (b.get(word) ?? 0);
  }
  for (const count of b.values()) nb += count * count;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * Recall@k of the supporting documents: the share of them among the top k, out of as many as could
 * fit (min(k, |supporting|)), so a prompt with 300 supporting documents is not capped at k/300.
 * Also whether any was found (DPR's top-k accuracy).
 */
export function recallAtK(
  retrieved: readonly number[],
  supporting: ReadonlySet<number>,
  k: number,
): { recall: number; hit: boolean } {
  if (supporting.size === 0) throw new Error("recallAtK: no supporting documents");
  const found = retrieved.slice(0, k).filter((index) => supporting.has(index)).length;
  return { recall: found / Math.min(k, supporting.size), hit: found > 0 };
}

/** `make(i)`, computed once per index. */
export function memoByIndex<T>(make: (index: number) => T): (index: number) => T {
  const made = new Map<number, T>();
  return (index) => {
    let found = made.get(index);
    if (found === undefined) {
      found = make(index);
      made.set(index, found);
    }
    return found;
  };
}
