/**
 * MetaCLIP's balancing (Xu et al., "Demystifying CLIP Data"), as pure functions: match a text against
 * metadata entries by substring, count matches per entry over a pool, and keep an item with a
 * probability that caps every entry at about `t` items — head entries are sampled down, tail entries
 * (count < t) are always kept. The same functions balance the curator's prompts, the pretraining
 * corpus, the SFT pool and the picture–caption pool.
 */

/** A bad argument: names it and says what was wrong. */
export class CurationArgumentError extends Error {
  constructor(
    readonly argument: string,
    readonly problem: string,
  ) {
    super(`${argument}: ${problem}`);
    this.name = "CurationArgumentError";
  }
}

const SPACED_PUNCTUATION = /[,.;:?!`]/g;
const WHITESPACE = /[\t\n\r]/g;

/**
 * The indices (increasing) of the entries that occur in `text`, by MetaCLIP's substring matching
 * (metaclip1/substr_matching.py): the text is padded with a space on each side, each of `, . ; : ? !`
 * and the backtick is surrounded by spaces, tab/LF/CR become spaces, and entry i matches when
 * `" " + entry + " "` occurs in the result. Case-sensitive; no other normalisation.
 */
export function substringMatches(text: string, entries: readonly string[]): number[] {
  if (entries.length === 0) throw new CurationArgumentError("entries", "the metadata list is empty");
  const spaced = ` ${text.replace(SPACED_PUNCTUATION, (c) => ` ${c} `).replace(WHITESPACE, " ")} `;
  const matched: number[] = [];
  for (let i = 0; i < entries.length; i++) if (spaced.includes(` ${entries[i]} `)) matched.push(i);
  return matched;
}

function checkCounts(counts: readonly number[]): void {
  if (counts.length === 0) throw new CurationArgumentError("counts", "the metadata list is empty");
  const bad = counts.findIndex((c) => !Number.isFinite(c) || c < 0);
  if (bad >= 0)
    throw new CurationArgumentError("counts", `counts[${bad}] is ${counts[bad]}, expected a finite number ≥ 0`);
}

/** Per entry, the probability of keeping an item that matches it: min(1, t / count); an entry rarer than t gets 1. */
export function balanceProbabilities(counts: readonly number[], t: number): number[] {
  checkCounts(counts);
  if (!Number.isFinite(t) || t <= 0) throw new CurationArgumentError("t", `${t}; expected a finite number > 0`);
  return counts.map((count) => (count < t ? 1 : Math.min(1, t / count)));
}

/** An item is kept when any of its matched entries keeps it: 1 − Π(1 − p). */
export function keepProbability(entryProbabilities: readonly number[]): number {
  const bad = entryProbabilities.findIndex((p) => !(p >= 0 && p <= 1));
  if (bad >= 0)
    throw new CurationArgumentError(
      "entryProbabilities",
      `entryProbabilities[${bad}] is ${entryProbabilities[bad]}, expected a number in [0, 1]`,
    );
  let dropAll = 1;
  for (const p of entryProbabilities) dropAll *= 1 - p;
  return 1 - dropAll;
}

/** The share of all matches held by entries with count strictly below t (the tail). */
export function tailShare(counts: readonly number[], t: number): number {
  checkCounts(counts);
  if (!Number.isFinite(t) || t <= 0) throw new CurationArgumentError("t", `${t}; expected a finite number > 0`);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  return counts.reduce((sum, c) => (c < t ? sum + c : sum), 0) / total;
}

/**
 * The threshold t for a target tail share p: counts sorted ascending, the running share after each
 * count is (sum so far) / total; returns the count whose running share is closest to p (the first one
 * on a tie).
 */
export function thresholdForTailShare(counts: readonly number[], p: number): number {
  checkCounts(counts);
  if (!(p >= 0 && p <= 1)) throw new CurationArgumentError("p", `${p}; expected a number in [0, 1]`);
  const sorted = [...counts].sort((a, b) => a - b);
  const total = sorted.reduce((a, b) => a + b, 0);
  if (total === 0) throw new CurationArgumentError("counts", "every count is 0: no share to aim at");
  let running = 0;
  let best = sorted[0]!;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const count of sorted) {
    running += count;
    const distance = Math.abs(running / total - p);
    if (distance < bestDistance) {
      best = count;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * CiT's selection (Xu et al., "CiT: Curation in Training"): the indices (increasing) of the items whose
 * highest similarity to any metadata entry is strictly above `threshold`; when fewer than `minRatio` of
 * the slice pass, the top ⌊minRatio × n⌋ by similarity instead (ties by index), in increasing order.
 */
export function citSelect(maxSimilarities: readonly number[], threshold: number, minRatio: number): number[] {
  if (!(threshold >= -1 && threshold <= 1))
    throw new CurationArgumentError("threshold", `${threshold}; expected a number in [-1, 1]`);
  if (!(minRatio > 0 && minRatio <= 1))
    throw new CurationArgumentError("minRatio", `${minRatio}; expected a number in (0, 1]`);
  const bad = maxSimilarities.findIndex((s) => !Number.isFinite(s));
  if (bad >= 0)
    throw new CurationArgumentError(
      "maxSimilarities",
      `maxSimilarities[${bad}] is ${maxSimilarities[bad]}, not finite`,
    );
  const passed = maxSimilarities.flatMap((s, i) => (s > threshold ? [i] : []));
  if (passed.length >= minRatio * maxSimilarities.length) return passed;
  const k = Math.floor(minRatio * maxSimilarities.length);
  return maxSimilarities
    .map((s, i) => ({ s, i }))
    .sort((a, b) => b.s - a.s || a.i - b.i)
    .slice(0, k)
    .map(({ i }) => i)
    .sort((a, b) => a - b);
}
