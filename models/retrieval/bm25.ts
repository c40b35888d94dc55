/**
 * The lexical retriever: Okapi BM25 by MiniSearch (a small, dependency-free, maintained full-text
 * index with BM25 scoring and JSON (de)serialisation; docs/retrieval.md says why it and not a
 * hand-written one). `d: 0` makes MiniSearch's BM25+ plain BM25 (k1 = 1.2, b = 0.75).
 */
import MiniSearch, { type Options } from "minisearch";
import { countCosine, memoByIndex, type Scored } from "./select.ts";
import { retrievalWords } from "./words.ts";

interface Indexed {
  readonly id: number;
  readonly text: string;
}

const OPTIONS: Options<Indexed> = {
  fields: ["text"],
  tokenize: retrievalWords,
  processTerm: (term) => term,
  searchOptions: { combineWith: "OR", bm25: { k: 1.2, b: 0.75, d: 0 } },
};

export interface Bm25Index {
  /** The `n` best documents for the query's words, best first. */
  readonly candidates: (words: readonly string[], n: number) => Scored[];
  /** Document–document similarity for the diversity rule: cosine of their word counts. */
  readonly similarity: (a: number, b: number) => number;
  /** The index as JSON (MiniSearch's own format). */
  readonly toJson: () => string;
}

const wordCounts = (text: string): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const word of retrievalWords(text)) counts.set(word, (counts.get(word) ?? 0) + 1);
  return counts;
};

/**
 * Words in more than this share of the documents are left out of queries: their idf is near 0, so
 * they barely move a ranking, yet each makes MiniSearch score every document it is in (with them a
 * FactWorld query took ≈ 430 ms, without ≈ 18 ms).
 */
const MAX_QUERY_WORD_SHARE = 0.2;

function commonWords(texts: readonly string[]): Set<string> {
  const df = new Map<string, number>();
  for (const text of texts) for (const word of new Set(retrievalWords(text))) df.set(word, (df.get(word) ?? 0) + 1);
  return new Set([...df].filter(([, count]) => count > MAX_QUERY_WORD_SHARE * texts.length).map(([word]) => word));
}

function wrap(search: MiniSearch<Indexed>, texts: readonly string[]): Bm25Index {
  const countsOf = memoByIndex((index) => wordCounts(texts[index]!));
  const common = commonWords(texts);
  return {
    candidates: (words, n) => {
      const used = words.filter((word) => !common.has(word));
      return used.length === 0
        ? []
        : search
            .search(used.join(" "))
            .slice(0, n)
            .map((hit) => ({ index: hit.id as number, score: hit.score }));
    },
    similarity: (a, b) => countCosine(countsOf(a), countsOf(b)),
    toJson: () => JSON.stringify(search),
  };
}

/** Indexes `texts` (document i has id i). */
export function buildBm25(texts: readonly string[]): Bm25Index {
  const search = new MiniSearch<Indexed>(OPTIONS);
  search.addAll(texts.map((text, id) => ({ id, text })));
  return wrap(search, texts);
}

/** An index saved by `toJson`, over the same texts. */
export const loadBm25 = (json: string, texts: readonly string[]): Bm25Index =>
  wrap(MiniSearch.loadJSON<Indexed>(json, OPTIONS), texts);
