import { describe, expect, it } from "vitest";
import { evidencePromptTokens, promptWithEvidence } from "./evidence.ts";

// One token per word, between <bos> (1) and <sep> (2): the words format's shape.
const format = {
  promptTokens: (text: string) => Int32Array.from([1, ...text.split(" ").map((w) => w.length + 10), 2]),
};
const docs = [{ text: "Kofa was created by Timi Jipu ." }, { text: " Mafe is a sculpture . " }, { text: "" }];

describe("evidence before the prompt", () => {
  it("puts the documents, best first, before the prompt; none leaves the prompt itself", () => {
    expect(promptWithEvidence("Tell me a bio of Kofa .", docs)).toBe(
      "Kofa was created by Timi Jipu . Mafe is a sculpture . Tell me a bio of Kofa .",
    );
    expect(promptWithEvidence("Tell me a bio of Kofa .", [])).toBe("Tell me a bio of Kofa .");
  });

  it("keeps as many documents as fit the budget, dropping the least relevant first", () => {
    const prompt = "Who is Kofa ?"; // 4 words: 6 tokens alone
    expect(evidencePromptTokens(format, prompt, docs, 100)).toMatchObject({ documents: 3 });
    expect(evidencePromptTokens(format, prompt, docs, 100).tokens).toHaveLength(6 + 7 + 5);
    // 6 + 7 = 13 tokens with the first document only
    expect(evidencePromptTokens(format, prompt, docs, 16).documents).toBe(1);
    expect(evidencePromptTokens(format, prompt, docs, 16).tokens).toHaveLength(13);
    // not even the first fits: the prompt alone, whatever its own length
    expect(evidencePromptTokens(format, prompt, docs, 12)).toEqual({
      tokens: format.promptTokens(prompt),
      documents: 0,
    });
    expect(evidencePromptTokens(format, prompt, docs, 3).documents).toBe(0);
  });
});
