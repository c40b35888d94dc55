/**
 * Text-quality pruning (Sharma et al., "Text Quality-Based Pruning for Efficient Training of Language
 * Models"), as pure functions: line-level heuristic filters, each weighted by how much keeping only
 * the lines that pass it lowers a reference model's perplexity; a line's score is the weighted share
 * of the filters it passes; a document's score is the token-weighted mean of its lines' scores; the
 * lowest q of documents are pruned.
 *
 * The reference model here is a smoothed word-bigram model trained on text known to be good (for
 * FactWorld, a clean corpus of the same world): small enough to be a pure function, and it knows
 * what the language's sentences look like, which is all the weighting asks of it.
 */
import { CurationArgumentError } from "./balance.ts";

/** A line-level heuristic: does the line pass, given the lines of its document before it? */
export interface LineFilter {
  readonly name: string;
  readonly passes: (line: string, earlier: readonly string[]) => boolean;
}

const words = (line: string) => line.split(" ").filter((w) => w !== "");

/** Words that open requests and page furniture, never a statement about something. */
const BOILERPLATE_OPENERS = new Set(["Tell", "What", "Write", "Give", "Explain", "Describe", "Who", "Click", "Read"]);

/** The heuristics (C4 / RedPajama-style), each a plain rule about one line. */
export const LINE_FILTERS: readonly LineFilter[] = [
  { name: "terminal-punctuation", passes: (line) => /[.!?]$/.test(line.trimEnd()) },
  { name: "unique-in-document", passes: (line, earlier) => !earlier.includes(line) },
  { name: "at-least-4-words", passes: (line) => words(line).length >= 4 },
  { name: "no-boilerplate-opener", passes: (line) => !BOILERPLATE_OPENERS.has(words(line)[0] ?? "") },
  {
    name: "few-repeated-words",
    passes: (line) => {
      const w = words(line).filter((x) => /\w/.test(x));
      return w.length === 0 || new Set(w).size / w.length >= 0.6;
    },
  },
];

/** A word-bigram model with add-k smoothing over the vocabulary it saw (plus one unknown word). */
export interface ReferenceModel {
  /** Natural-log probability of each word of the line after the one before it (`<s>` before the first). */
  readonly logProbs: (line: string) => number[];
}

export function bigramModel(lines: readonly string[], k = 0.1): ReferenceModel {
  if (!(k > 0)) throw new CurationArgumentError("k", `${k}; expected a number > 0`);
  const pairs = new Map<string, Map<string, number>>();
  const totals = new Map<string, number>();
  const vocabulary = new Set<string>();
  for (const line of lines) {
    let previous = "<s>";
    for (const word of words(line)) {
      vocabulary.add(word);
      const row = pairs.get(previous) ?? new Map<string, number>();
      row.set(word, (row.get(word) ?? 0) + 1);
      pairs.set(previous, row);
      totals.set(previous, (totals.get(previous) ?? 0) + 1);
      previous = word;
    }
  }
  const v = vocabulary.size + 1;
  return {
    logProbs: (line) => {
      let previous = "<s>";
      const out: number[] = [];
      for (const word of words(line)) {
        const count = pairs.get(previous)?.get(word) ?? 0;
        out.push(Math.log((count + k) / ((totals.get(previous) ?? 0) + k * v)));
        previous = word;
      }
      return out;
    },
  };
}

/** exp(− mean log-probability) over every word of the lines; 1 when there are none. */
export function perplexity(model: ReferenceModel, lines: readonly string[]): number {
  let sum = 0;
  let n = 0;
  for (const line of lines)
    for (const lp of model.logProbs(line)) {
      sum += lp;
      n += 1;
    }
  return n === 0 ? 1 : Math.exp(-sum / n);
}

/**
 * Each filter's weight: the relative drop of the reference model's perplexity over the documents'
 * lines when only the lines that pass the filter are kept, (ppl(all) − ppl(passing)) / ppl(all);
 * 0 for a filter that does not lower it.
 */
export function filterWeights(
  documents: readonly (readonly string[])[],
  model: ReferenceModel,
  filters: readonly LineFilter[] = LINE_FILTERS,
): number[] {
  const all = documents.flat();
  const base = perplexity(model, all);
  return filters.map((filter) => {
    const passing = documents.flatMap((lines) => lines.filter((line, i) => filter.passes(line, lines.slice(0, i))));
    return Math.max(0, (base - perplexity(model, passing)) / base);
  });
}

/** Per line, the weighted share of the filters it passes: Σ w·pass / Σ w (1 when every weight is 0). */
export function lineScores(
  lines: readonly string[],
  weights: readonly number[],
  filters: readonly LineFilter[] = LINE_FILTERS,
): number[] {
  if (weights.length !== filters.length)
    throw new CurationArgumentError("weights", `${weights.length} weights for ${filters.length} filters`);
  const bad = weights.findIndex((w) => !(w >= 0 && Number.isFinite(w)));
  if (bad >= 0) throw new CurationArgumentError("weights", `weights[${bad}] is ${weights[bad]}, expected a number ≥ 0`);
  const total = weights.reduce((a, b) => a + b, 0);
  return lines.map((line, i) => {
    if (total === 0) return 1;
    const earlier = lines.slice(0, i);
    return filters.reduce((sum, f, j) => sum + (f.passes(line, earlier) ? weights[j]! : 0), 0) / total;
  });
}

/** A document's score: the mean of its lines' scores weighted by their words (tokens); 0 for no words. */
export function documentScore(
  lines: readonly string[],
  weights: readonly number[],
  filters: readonly LineFilter[] = LINE_FILTERS,
): number {
  const scores = lineScores(lines, weights, filters);
  const sizes = lines.map((line) => words(line).length);
  const n = sizes.reduce((a, b) => a + b, 0);
  return n === 0 ? 0 : scores.reduce((sum, s, i) => sum + s * sizes[i]!, 0) / n;
}

/** The indices (increasing) kept after pruning the round(q · n) lowest scores; among equal scores the earlier goes first. */
export function pruneLowest(scores: readonly number[], q: number): number[] {
  if (!(q >= 0 && q <= 1)) throw new CurationArgumentError("q", `${q}; expected a number in [0, 1]`);
  const bad = scores.findIndex((x) => !Number.isFinite(x));
  if (bad >= 0) throw new CurationArgumentError("scores", `scores[${bad}] is ${scores[bad]}, not finite`);
  const order = scores.map((s, i) => ({ s, i })).sort((a, b) => a.s - b.s || a.i - b.i);
  const pruned = new Set(order.slice(0, Math.round(q * scores.length)).map(({ i }) => i));
  return scores.flatMap((_, i) => (pruned.has(i) ? [] : [i]));
}
