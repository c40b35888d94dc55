/**
 * Text in and out of a policy imported from Hugging Face, through its own tokenizer.json
 * (@huggingface/tokenizers: byte-level BPE as in Llama 3, Qwen2 and SmolLM, SentencePiece-style BPE,
 * WordPiece, Unigram).
 *
 * The reasoning/answer split uses plain-text markers: the policy writes `<think> … </think> answer`
 * as text, and the rewards parse the decoded text, as they do for every backbone. A tokenizer that
 * has `<think>` and `</think>` as tokens of their own (Qwen3, SmolLM3, R1 distills) encodes each as
 * one id; any other spells them with a few ordinary tokens. Nothing is added to the vocabulary, so
 * the weights stay the checkpoint's and export gives them back unchanged.
 *
 * A prompt is what the tokenizer's post-processor makes of `text + "\n"` (Llama 3 puts
 * `<|begin_of_text|>` first, Qwen2 nothing); the answer ends with the end-of-sequence token. Chat
 * templates (Jinja) are not applied: start from a base model, or SFT an instruct model on this format.
 */
import { Tokenizer } from "@huggingface/tokenizers";

/** What a checkpoint stores as the tokenizer of an imported policy: the two Hugging Face files, verbatim. */
export interface HuggingFaceTokenizerRecord {
  readonly kind: "huggingface";
  /** The model's end-of-sequence id (config.json's `eos_token_id`, the first of a list): answers end with it. */
  readonly eos: number;
  /** tokenizer.json */
  readonly tokenizer: Record<string, unknown>;
  /** tokenizer_config.json (`{}` when the directory had none). */
  readonly config: Record<string, unknown>;
}

export const isHuggingFaceTokenizerRecord = (record: unknown): record is HuggingFaceTokenizerRecord =>
  (record as { kind?: unknown } | undefined)?.kind === "huggingface";

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";

/** Building a tokenizer parses its whole vocabulary and merges: once per tokenizer.json object. */
const built = new WeakMap<object, Tokenizer>();

export function huggingFaceTokenizer(
  record: Pick<HuggingFaceTokenizerRecord, "tokenizer" | "config">,
  source: string,
): Tokenizer {
  let tokenizer = built.get(record.tokenizer);
  if (!tokenizer) {
    try {
      tokenizer = new Tokenizer(record.tokenizer, record.config);
    } catch (error) {
      throw new Error(
        `${source}: tokenizer.json cannot be read by @huggingface/tokenizers (${(error as Error).message})`,
      );
    }
    built.set(record.tokenizer, tokenizer);
  }
  return tokenizer;
}

/** The id of a special token named in tokenizer_config.json (a string or `{ content }`), if the vocabulary has it. */
export function configTokenId(
  tokenizer: Tokenizer,
  config: Record<string, unknown>,
  field: string,
): number | undefined {
  const value = config[field];
  const content = typeof value === "string" ? value : (value as { content?: unknown } | null | undefined)?.content;
  return typeof content === "string" ? tokenizer.token_to_id(content) : undefined;
}

/** `<think>` / `</think>` ids when the tokenizer has them as single tokens. */
export function thinkTokenIds(tokenizer: Tokenizer): { open: number; close: number } | undefined {
  const open = tokenizer.token_to_id(THINK_OPEN);
  const close = tokenizer.token_to_id(THINK_CLOSE);
  return open !== undefined && close !== undefined ? { open, close } : undefined;
}

export interface HuggingFaceTextFormat {
  readonly kind: "tokens";
  promptTokens(text: string, picture?: unknown): Int32Array;
  answerTokens(text: string): Int32Array;
  answerText(tokens: ArrayLike<number>): string;
  readonly stopTokens: readonly number[];
}

/** The text format of a Hugging Face tokenizer record; `source` names where it came from in errors. */
export function huggingFaceTextFormat(record: HuggingFaceTokenizerRecord, source: string): HuggingFaceTextFormat {
  const tokenizer = huggingFaceTokenizer(record, source);
  const { eos } = record;
  return {
    kind: "tokens",
    promptTokens: (text, picture) => {
      if (picture !== undefined)
        throw new Error(
          `this policy reads no pictures (${source} is a text tokenizer): a prompt with a picture needs an image tokenizer`,
        );
      return Int32Array.from(tokenizer.encode(`${text}\n`).ids);
    },
    answerTokens: (text) => Int32Array.from([...tokenizer.encode(text, { add_special_tokens: false }).ids, eos]),
    answerText: (tokens) => {
      const ids = Array.from(tokens);
      const end = ids.indexOf(eos);
      return tokenizer.decode(end < 0 ? ids : ids.slice(0, end), { skip_special_tokens: false });
    },
    stopTokens: [eos],
  };
}

/**
 * A corpus document as continued pretraining reads it (pretrain/pretrain-factworld.ts): the
 * tokenizer's encoding of the text with whatever its post-processor adds, as a prompt is read
 * (Llama 3 begins it with `<|begin_of_text|>`, Qwen2 adds nothing), without a trailing
 * end-of-sequence id: the corpus stream puts exactly one after each document.
 */
export function huggingFaceDocumentTokens(
  record: HuggingFaceTokenizerRecord,
  source: string,
): (text: string) => Int32Array {
  const tokenizer = huggingFaceTokenizer(record, source);
  return (text) => {
    const ids = tokenizer.encode(text).ids;
    return Int32Array.from(ids.at(-1) === record.eos ? ids.slice(0, -1) : ids);
  };
}
