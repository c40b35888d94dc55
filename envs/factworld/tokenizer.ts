/**
 * The closed word-level tokenizer of FactWorld's language, and a byte view of the same text for the
 * byte-level backbone. Text is space-separated words; encode → decode returns the text with single
 * spaces (punctuation glued to a word is split off into its own word).
 */
import { GRAMMAR_WORDS } from "./grammar.ts";
import { PROMPT_WORDS } from "./prompts.ts";
import { REASONING_WORDS, THINK_CLOSE, THINK_OPEN } from "./reference.ts";
import { FIRST_YEAR, LAST_YEAR, RELATION_NAMES, relationInfo } from "./schema.ts";
import type { World } from "./world.ts";

/** What every backbone needs from a tokenizer. */
export interface TextCodec {
  readonly vocabSize: number;
  readonly specialTokens: { readonly pad: number; readonly bos: number; readonly eos: number };
  encode(text: string): Int32Array;
  decode(ids: ArrayLike<number>): string;
}

export interface WordTokenizer extends TextCodec {
  readonly specialTokens: {
    readonly pad: number;
    readonly bos: number;
    readonly eos: number;
    readonly unk: number;
    readonly thinkOpen: number;
    readonly thinkClose: number;
    /** Separates a prompt from its answer in training sequences. */
    readonly sep: number;
    /** The "." word that ends every sentence. */
    readonly sentenceEnd: number;
  };
  /** Word of each id; save this list to rebuild the same tokenizer (`tokenizerFromWords`). */
  readonly words: readonly string[];
  idOf(word: string): number;
}

/** Special tokens come first, so their ids are the same in every world. */
export const SPECIAL_WORDS = ["<pad>", "<bos>", "<eos>", "<unk>", THINK_OPEN, THINK_CLOSE, "<sep>"] as const;
const PUNCTUATION = [".", ",", "?"];
const GLUED_PUNCTUATION = /^(.+?)([.,?!;:]+)$/;

/** The vocabulary of a world: specials, punctuation, grammar and prompt words, closed lists, years, names. */
export function worldVocabulary(world: World): string[] {
  const closedLists = RELATION_NAMES.flatMap((r) => relationInfo(r).words ?? []);
  const years = Array.from({ length: LAST_YEAR - FIRST_YEAR + 1 }, (_, i) => String(FIRST_YEAR + i));
  const words = [
    ...PUNCTUATION,
    ...new Set(
      [...GRAMMAR_WORDS, ...PROMPT_WORDS, ...REASONING_WORDS, ...closedLists].filter((w) => !PUNCTUATION.includes(w)),
    ),
  ]
    .concat(years, world.nameWords)
    .filter((w) => !(SPECIAL_WORDS as readonly string[]).includes(w));
  return [...SPECIAL_WORDS, ...new Set(words)];
}

export function createTokenizer(world: World): WordTokenizer {
  return tokenizerFromWords(worldVocabulary(world));
}

/**
 * A word tokenizer over any environment's vocabulary (a fresh policy's): the special tokens first and
 * "." (the sentence end the sampler knows) wherever the list has it, else last. FactWorld's own
 * vocabulary comes out unchanged.
 */
export function tokenizerForVocabulary(vocabulary: readonly string[]): WordTokenizer {
  const specials: readonly string[] = SPECIAL_WORDS;
  const words = [...new Set([...SPECIAL_WORDS, ...vocabulary.filter((w) => !specials.includes(w))])];
  return tokenizerFromWords(words.includes(".") ? words : [...words, "."]);
}

/** Rebuilds a tokenizer from its saved word list (the first words must be SPECIAL_WORDS). */
export function tokenizerFromWords(words: readonly string[]): WordTokenizer {
  SPECIAL_WORDS.forEach((w, i) => {
    if (words[i] !== w) throw new Error(`tokenizer: word ${i} must be ${w}, got ${String(words[i])}`);
  });
  const ids = new Map<string, number>();
  words.forEach((w, i) => {
    if (ids.has(w)) throw new Error(`tokenizer: duplicate word "${w}"`);
    ids.set(w, i);
  });
  const sentenceEnd = ids.get(".");
  if (sentenceEnd === undefined) throw new Error('tokenizer: the vocabulary needs "."');
  const unk = 3;
  const push = (out: number[], word: string) => {
    const id = ids.get(word);
    if (id !== undefined) return out.push(id);
    const glued = GLUED_PUNCTUATION.exec(word);
    if (glued) {
      push(out, glued[1] as string);
      for (const mark of glued[2] as string) out.push(ids.get(mark) ?? unk);
      return;
    }
    out.push(unk);
  };
  return {
    vocabSize: words.length,
    specialTokens: { pad: 0, bos: 1, eos: 2, unk, thinkOpen: 4, thinkClose: 5, sep: 6, sentenceEnd },
    words,
    idOf: (word) => ids.get(word) ?? unk,
    encode(text) {
      const out: number[] = [];
      for (const word of text.split(/\s+/)) if (word !== "") push(out, word);
      return Int32Array.from(out);
    },
    decode(idList) {
      const out: string[] = [];
      for (let i = 0; i < idList.length; i++) {
        const word = words[idList[i] as number];
        if (word === undefined) throw new Error(`tokenizer: id ${idList[i]} outside the vocabulary (${words.length})`);
        out.push(word);
      }
      return out.join(" ");
    },
  };
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8");

/** The byte view of text: its UTF-8 bytes. */
export const textToBytes = (text: string): Uint8Array => utf8Encoder.encode(text);
export const bytesToText = (bytes: Uint8Array): string => utf8Decoder.decode(bytes);

/** Ids 0–255 are bytes; pad, bos and eos follow. `<think>` tags are plain bytes in this view. */
export const byteTokenizer: TextCodec = {
  vocabSize: 259,
  specialTokens: { pad: 256, bos: 257, eos: 258 },
  encode: (text) => Int32Array.from(textToBytes(text)),
  decode(ids) {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as number;
      if (id < 256) bytes.push(id);
    }
    return bytesToText(Uint8Array.from(bytes));
  },
};
