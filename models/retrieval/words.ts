/**
 * The retrievers' tokenizer (one for both, so their indexes agree on what a word is) and CM3Leon's
 * query dropout. Pure functions.
 */
import { mixSeed, mulberry32 } from "../random.ts";

/** Names the rule below in an index's manifest: an index built with another rule is refused. */
export const RETRIEVAL_TOKENIZER = "words-lowercase-v1";

/** Lower-cased runs of letters, digits and apostrophes; punctuation and spaces separate them. */
export const retrievalWords = (text: string): string[] => text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];

/**
 * CM3Leon's query dropout: each word is dropped with probability `rate` (seeded), so retrieval for
 * training is noisier than the query and the model learns to use imperfect evidence. At least one
 * word is always kept (the first surviving, else the query's first), so a query never empties.
 */
export function dropQueryWords(words: readonly string[], rate: number, seed: number): string[] {
  if (!(rate >= 0 && rate < 1)) throw new Error(`query dropout must be in [0, 1), got ${rate}`);
  if (rate === 0 || words.length === 0) return [...words];
  const random = mulberry32(mixSeed(seed, words.length));
  const kept = words.filter(() => random() >= rate);
  return kept.length > 0 ? kept : [words[0]!];
}
