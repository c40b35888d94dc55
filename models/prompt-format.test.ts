import { describe, expect, it } from "vitest";
import {
  createTokenizer,
  generatePrompts,
  generateWorld,
  renderPicture,
  renderReference,
  WORLD_SIZES,
  worldPictures,
} from "../envs/index.ts";
import { BOS, EOS } from "./blt/tokens.ts";
import {
  byteTextFormat,
  imageTokenizerRecord,
  textFormatFor,
  textFormatOfRecord,
  wordTextFormat,
} from "./prompt-format.ts";
import { encodePicture, trainVqCodebook } from "./vq.ts";

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

describe("pictures in prompts", () => {
  const refs = worldPictures(world).slice(0, 12);
  const pictures = refs.map((ref) => renderPicture(ref.look, ref.seed));
  const image = { codebook: trainVqCodebook(pictures, { codebookSize: 16, seed: 3 }), offset: tokenizer.vocabSize };
  const format = wordTextFormat(tokenizer, image);

  it("reads a picture's image tokens right after <bos>, before the text; the same picture gives the same tokens", () => {
    const { bos, sep } = tokenizer.specialTokens;
    const tokens = format.promptTokens("alt-text : none", pictures[0]);
    expect(tokens.length).toBe(1 + 64 + tokenizer.encode("alt-text : none").length + 1);
    expect(tokens[0]).toBe(bos);
    expect(tokens.at(-1)).toBe(sep);
    const pictureIds = [...tokens.subarray(1, 65)];
    expect(pictureIds.every((id) => id >= tokenizer.vocabSize && id < tokenizer.vocabSize + 16)).toBe(true);
    expect(pictureIds).toEqual([...encodePicture(image.codebook, pictures[0]!)].map((c) => c + tokenizer.vocabSize));
    const again = renderPicture(refs[0]!.look, refs[0]!.seed);
    expect([...format.promptTokens("alt-text : none", again)]).toEqual([...tokens]);
    expect(format.imageTokens).toEqual({ first: tokenizer.vocabSize, count: 16 });
    // Without a picture: the text prompt, as before.
    expect([...format.promptTokens("alt-text : none")]).toEqual([bos, ...tokenizer.encode("alt-text : none"), sep]);
  });

  it("an image token written into an answer reads as <unk>", () => {
    const eos = tokenizer.specialTokens.eos;
    expect(format.answerText([tokenizer.idOf("the"), tokenizer.vocabSize + 3, eos])).toBe("the <unk>");
  });

  it("refuses a picture it cannot read: no image tokenizer, bytes, or the wrong size", () => {
    expect(() => wordTextFormat(tokenizer).promptTokens("x", pictures[0])).toThrow(
      "this policy reads no pictures (its tokenizer has no image codebook)",
    );
    expect(() => byteTextFormat.promptTokens("x", pictures[0])).toThrow(/a byte-level policy has no image tokens/);
    const small = { width: 16, height: 16, pixels: new Uint8Array(16 * 16 * 3) };
    expect(() => format.promptTokens("x", small)).toThrow("picture is 16×16; this codebook tokenizes 32×32 pictures");
    expect(() => wordTextFormat(tokenizer, { ...image, offset: 5 })).toThrow(/image tokens must follow the/);
  });

  it("travels in the tokenizer record: the same tokens after a JSON round trip; a broken codebook is named", () => {
    const record = JSON.parse(
      JSON.stringify({ kind: "factworld-words", words: tokenizer.words, image: imageTokenizerRecord(image) }),
    );
    const restored = textFormatOfRecord("dense", record, "tokenizer.json");
    expect([...restored.promptTokens("alt-text : none", pictures[5])]).toEqual([
      ...format.promptTokens("alt-text : none", pictures[5]),
    ]);
    expect(textFormatOfRecord("dense", { words: tokenizer.words }, "t").imageTokens).toBeUndefined();
    const broken = { ...record, image: { ...record.image, codebook: { ...record.image.codebook, codes: [1, 2] } } };
    expect(() => textFormatOfRecord("mot", broken, "tokenizer.json")).toThrow(
      /^tokenizer\.json: image\.codebook: codes must be 768 finite numbers/,
    );
  });
});
