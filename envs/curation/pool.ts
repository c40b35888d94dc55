/**
 * MetaCLIP balancing of a pool, offline (a fixed pool: the pretraining corpus, the SFT candidates)
 * and online (a stream drawn from a fixed pool: the curator's prompts). Both match every item's text
 * against the metadata once, pick t from a tail-share target (`thresholdForTailShare`) and keep an
 * item with `keepProbability` of its entries' `balanceProbabilities`; they differ in what is counted:
 * the whole pool (offline) or the items handed out so far (online).
 *
 * Every random draw is a hash of (seed, item or sequence): the same inputs give the same selection on
 * every host, and the online stream's item n is a function of the seed and n alone (its counts are
 * those of items 0..n−1, which are themselves functions of the seed), so it can be rebuilt from the
 * seed and a cursor by replaying.
 */
import { createRng, hashString, type Rng } from "../factworld/random.ts";
import {
  balanceProbabilities,
  CurationArgumentError,
  keepProbability,
  substringMatches,
  thresholdForTailShare,
} from "./balance.ts";

export interface BalanceOptions {
  /** Seeds the keep draws (and the stream's candidates): same seed, pool and metadata → same selection. */
  readonly seed: number;
  /** The target tail share p: t is the count below which entries hold about p of all matches. */
  readonly tailShare: number;
}

function checkOptions(options: BalanceOptions): void {
  if (!Number.isInteger(options.seed)) throw new CurationArgumentError("seed", `${options.seed}; expected an integer`);
  if (!(options.tailShare >= 0 && options.tailShare <= 1))
    throw new CurationArgumentError("tailShare", `${options.tailShare}; expected a number in [0, 1]`);
}

/** Per text, the indices of the metadata entries it matches (`substringMatches`). */
export function matchPool(texts: readonly string[], entries: readonly string[]): number[][] {
  if (entries.length === 0) throw new CurationArgumentError("entries", "the metadata list is empty");
  return texts.map((text) => substringMatches(text, entries));
}

/** How many items match each of `entryCount` entries. */
export function entryCounts(matches: readonly (readonly number[])[], entryCount: number): number[] {
  const counts = new Array<number>(entryCount).fill(0);
  for (const item of matches) for (const e of item) counts[e]! += 1;
  return counts;
}

/**
 * t for a tail-share target over the entries that matched at least once: an entry nothing matched
 * holds no share, and counting it would pull t to 0. Undefined while nothing has matched.
 */
export function balanceThreshold(counts: readonly number[], tailShare: number): number | undefined {
  const matched = counts.filter((c) => c > 0);
  return matched.length === 0 ? undefined : thresholdForTailShare(matched, tailShare);
}

export interface BalancedPool {
  /** Indices of the kept items, increasing. */
  readonly kept: number[];
  /** The threshold used (undefined when no item matched any entry, and nothing is kept). */
  readonly threshold: number | undefined;
  /** Matches per entry over the whole pool. */
  readonly counts: number[];
  /** Items that matched no entry: MetaCLIP drops them. */
  readonly unmatched: number;
}

/**
 * Offline MetaCLIP: counts over the whole pool, t from the tail-share target, each item kept with
 * `keepProbability` of its entries (an item that matches nothing is dropped). Item i's draw is a hash
 * of (seed, i), so a pool that grows at its end keeps its earlier decisions.
 */
export function balancePool(
  texts: readonly string[],
  entries: readonly string[],
  options: BalanceOptions,
): BalancedPool {
  checkOptions(options);
  const matches = matchPool(texts, entries);
  const counts = entryCounts(matches, entries.length);
  const threshold = balanceThreshold(counts, options.tailShare);
  const unmatched = matches.filter((m) => m.length === 0).length;
  if (threshold === undefined) return { kept: [], threshold, counts, unmatched };
  const p = balanceProbabilities(counts, threshold);
  const kept = matches.flatMap((m, i) =>
    createRng(hashString(`${options.seed}:keep:${i}`)).next() < keepProbability(m.map((e) => p[e]!)) ? [i] : [],
  );
  return { kept, threshold, counts, unmatched };
}

/** Candidates drawn for one sequence number before the most likely kept one is taken instead. */
const MAX_CANDIDATES = 256;

/**
 * Online MetaCLIP over a stream: item n is drawn uniformly from the pool and kept with the keep
 * probability its entries have under the counts of the items handed out before it (t from the
 * tail-share target over those counts); a candidate not kept is replaced by the next draw. Head
 * entries are handed out less as they pile up; entries under t are always taken.
 *
 * State: the counts over the items handed out and the cursor. A new stream asked for item n replays
 * items 0..n−1 first — so a restarted curator rebuilds it from the seed and its cursor alone; items
 * already drawn are remembered. Replaying costs O(entries · log entries + candidates) per item.
 */
export class BalancedStream {
  private readonly matches: readonly (readonly number[])[];
  private readonly options: BalanceOptions;
  private readonly eligible: readonly number[];
  private readonly counts: number[];
  private readonly chosen: number[] = [];

  constructor(matches: readonly (readonly number[])[], entryCount: number, options: BalanceOptions) {
    checkOptions(options);
    if (!Number.isInteger(entryCount) || entryCount < 1)
      throw new CurationArgumentError("entryCount", `${entryCount}; expected an integer ≥ 1`);
    const bad = matches.findIndex((m) => m.some((e) => !Number.isInteger(e) || e < 0 || e >= entryCount));
    if (bad >= 0)
      throw new CurationArgumentError("matches", `matches[${bad}] names an entry outside 0..${entryCount - 1}`);
    this.matches = matches;
    this.options = options;
    // MetaCLIP drops what matches nothing: such an item is never handed out.
    this.eligible = matches.flatMap((m, i) => (m.length > 0 ? [i] : []));
    if (this.eligible.length === 0)
      throw new CurationArgumentError("matches", "no item of the pool matches any metadata entry");
    this.counts = new Array<number>(entryCount).fill(0);
  }

  /** Items handed out so far (the cursor). */
  get cursor(): number {
    return this.chosen.length;
  }

  /** Matches per entry over the items handed out so far (a copy). */
  handedOutCounts(): number[] {
    return [...this.counts];
  }

  /** The pool index of item `sequence` (any n ≥ 0). */
  at(sequence: number): number {
    if (!Number.isInteger(sequence) || sequence < 0)
      throw new CurationArgumentError("sequence", `${sequence}; expected an integer ≥ 0`);
    while (this.chosen.length <= sequence) this.advance();
    return this.chosen[sequence]!;
  }

  private advance(): void {
    const sequence = this.chosen.length;
    const rng: Rng = createRng(hashString(`${this.options.seed}:${sequence}`));
    const threshold = balanceThreshold(this.counts, this.options.tailShare);
    const p = threshold === undefined ? undefined : balanceProbabilities(this.counts, threshold);
    let best = -1;
    let bestKeep = -1;
    for (let attempt = 0; attempt < MAX_CANDIDATES; attempt++) {
      const candidate = this.eligible[Math.floor(rng.next() * this.eligible.length)]!;
      const keep = p === undefined ? 1 : keepProbability(this.matches[candidate]!.map((e) => p[e]!));
      if (rng.next() < keep) {
        best = candidate;
        break;
      }
      if (keep > bestKeep) {
        best = candidate;
        bestKeep = keep;
      }
    }
    for (const e of this.matches[best]!) this.counts[e]! += 1;
    this.chosen.push(best);
  }
}
