/**
 * Evidence before the prompt (CM3Leon's retrieval-augmented input): the retrieved documents, most
 * relevant first, then the prompt, as one text the policy's own format reads. Used by rollouts,
 * evaluation and retrieval-augmented SFT alike, and by a decoder that contrasts a policy's answer
 * with and without evidence (call it with the documents, and with none).
 */
import type { Picture } from "../../envs/index.ts";
import type { TextFormat } from "../prompt-format.ts";

/** The prompt conditioned on `documents`: their texts, best first, then the prompt (none: the prompt itself). */
export const promptWithEvidence = (prompt: string, documents: readonly { readonly text: string }[]): string =>
  [...documents.map((d) => d.text.trim()).filter((t) => t !== ""), prompt].join(" ");

export interface EvidencePrompt {
  readonly tokens: Int32Array;
  /** Documents that fit, from the first: the rest were dropped to stay within the token budget. */
  readonly documents: number;
}

/**
 * The conditioned prompt in `format`'s tokens, with as many of `documents` (from the most relevant)
 * as keep it within `maxTokens`; the prompt alone when not even one fits (it may itself be too long:
 * the caller's length check decides).
 */
export function evidencePromptTokens(
  format: Pick<TextFormat, "promptTokens">,
  prompt: string,
  documents: readonly { readonly text: string }[],
  maxTokens: number,
  picture?: Picture,
): EvidencePrompt {
  for (let n = documents.length; n > 0; n--) {
    const tokens = format.promptTokens(promptWithEvidence(prompt, documents.slice(0, n)), picture);
    if (tokens.length <= maxTokens) return { tokens, documents: n };
  }
  return { tokens: format.promptTokens(prompt, picture), documents: 0 };
}
