import { describe, expect, it } from "vitest";
import { createTokenizer, generatePrompts, generateWorld, renderReference, WORLD_SIZES } from "../envs/index.ts";
import { BOS, EOS } from "./blt/tokens.ts";
import { byteTextFormat, textFormatFor, wordTextFormat } from "./prompt-format.ts";

const world = generateWorld(WORLD_SIZES.tiny);
const tokenizer = createTokenizer(world);
const question = generatePrompts(world)[0]!;
/** A real answer in the world's language (the knowledge base's reference). */
const answer = renderReference(world, question);

describe("text formats", () => {
  it("words: <bos> prompt <sep>, answers end with <eos>, text stops at the first <eos>", () => {
    const format = wordTextFormat(tokenizer);
    const { bos, sep, eos } = tokenizer.specialTokens;
    const prompt = format.promptTokens(question.text);
    expect(prompt[0]).toBe(bos);
    expect(prompt.at(-1)).toBe(sep);
    const tokens = format.answerTokens(answer);
    expect(tokens.at(-1)).toBe(eos);
    expect(format.answerText([...tokens, ...tokenizer.encode(question.text)])).toBe(answer);
    expect(format.stopTokens).toEqual([eos]);
  });

  it("bytes: BOS + UTF-8 + newline; answers are their bytes + EOS and decode back exactly", () => {
    const prompt = byteTextFormat.promptTokens("Tell me about Zoë.");
    expect(prompt[0]).toBe(BOS);
    expect(prompt.length).toBe(1 + new TextEncoder().encode("Tell me about Zoë.").length + 1);
    expect(prompt.at(-1)).toBe("\n".charCodeAt(0) + 4);
    const tokens = byteTextFormat.answerTokens(answer);
    expect(tokens.length).toBe(new TextEncoder().encode(answer).length + 1);
    expect(tokens.at(-1)).toBe(EOS);
    expect(byteTextFormat.answerText([...tokens, 70, 71])).toBe(answer);
    expect(byteTextFormat.stopTokens).toEqual([EOS]);
  });

  it("BLT reads bytes; dense and MoT read the world's words", () => {
    expect(textFormatFor("blt", tokenizer).kind).toBe("bytes");
    expect(textFormatFor("dense", tokenizer).kind).toBe("words");
    expect(textFormatFor("mot", tokenizer).kind).toBe("words");
  });
});
