import { describe, expect, it } from "vitest";
import { generateCorpus } from "./corpus.ts";
import { generatePrompts } from "./prompts.ts";
import { renderReference } from "./reference.ts";
import {
  bytesToText,
  byteTokenizer,
  createTokenizer,
  SPECIAL_WORDS,
  textToBytes,
  tokenizerForVocabulary,
  tokenizerFromWords,
  worldVocabulary,
} from "./tokenizer.ts";
import { generateWorld, WORLD_SIZES } from "./world.ts";

describe("word tokenizer", () => {
  const world = generateWorld({ size: "default" });
  const tokenizer = createTokenizer(world);

  it("has a small closed vocabulary with fixed special ids", () => {
    expect(tokenizer.vocabSize).toBeLessThan(2000);
    expect(tokenizer.specialTokens).toMatchObject({
      pad: 0,
      bos: 1,
      eos: 2,
      unk: 3,
      thinkOpen: 4,
      thinkClose: 5,
      sep: 6,
    });
    expect(tokenizer.words[tokenizer.specialTokens.sentenceEnd]).toBe(".");
  });

  it("round-trips the corpus, prompts and reference answers without unknown words", () => {
    const texts = [
      ...generateCorpus(world, { documents: 2000 }).map((d) => d.text),
      ...generatePrompts(world).flatMap((p) => [p.text, renderReference(world, p)]),
    ];
    for (const text of texts) {
      const ids = tokenizer.encode(text);
      expect(ids.includes(tokenizer.specialTokens.unk)).toBe(false);
      expect(tokenizer.decode(ids)).toBe(text);
    }
  });

  it("maps think tags to their special ids, splits glued punctuation, and marks unknown words", () => {
    const name = world.entities[0]!.name;
    const ids = tokenizer.encode(`<think> x </think>  ${name} is well known.`);
    expect(ids[0]).toBe(tokenizer.specialTokens.thinkOpen);
    expect(ids[1]).toBe(tokenizer.specialTokens.unk);
    expect(ids[2]).toBe(tokenizer.specialTokens.thinkClose);
    expect(tokenizer.decode(ids)).toBe(`<think> <unk> </think> ${name} is well known .`);
    expect(() => tokenizer.decode([tokenizer.vocabSize])).toThrow(/outside the vocabulary/);
  });

  it("rebuilds identically from its saved word list, and refuses a corrupted one", () => {
    const again = tokenizerFromWords(tokenizer.words);
    const text = renderReference(world, generatePrompts(world)[0]!);
    expect(again.encode(text)).toEqual(tokenizer.encode(text));
    expect(() => tokenizerFromWords(["<bos>", ...tokenizer.words])).toThrow(/must be <pad>/);
    expect(() => tokenizerFromWords([...tokenizer.words, "."])).toThrow(/duplicate/);
  });
});

describe("byte view", () => {
  it("round-trips UTF-8 text and skips special ids on decode", () => {
    const text = "<think> Zoë </think> Kessa is a port .";
    expect(bytesToText(textToBytes(text))).toBe(text);
    const ids = byteTokenizer.encode(text);
    expect(ids.length).toBe(textToBytes(text).length);
    expect(byteTokenizer.decode([byteTokenizer.specialTokens.bos, ...ids, byteTokenizer.specialTokens.eos])).toBe(text);
  });
});

describe("tokenizerForVocabulary", () => {
  it("gives FactWorld's own vocabulary back unchanged", () => {
    const world = generateWorld(WORLD_SIZES.tiny);
    expect(tokenizerForVocabulary(worldVocabulary(world)).words).toEqual(createTokenizer(world).words);
  });

  it("puts the special tokens first and adds the sentence end to any other vocabulary", () => {
    const tokenizer = tokenizerForVocabulary(["what", "is", "<eos>", "red"]);
    expect(tokenizer.words).toEqual([...SPECIAL_WORDS, "what", "is", "red", "."]);
    expect(Array.from(tokenizer.encode("what is red ."))).toEqual([7, 8, 9, 10]);
  });
});
