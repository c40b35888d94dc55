/**
 * How a prompt becomes the tokens a policy continues: `<bos> prompt words <sep>`; the policy then
 * writes `<think> … </think> answer <eos>`. SFT, rollouts and evaluation must all use this.
 */
import type { WordTokenizer } from "../envs/index.ts";

export function promptTokens(tokenizer: WordTokenizer, text: string): Int32Array {
  const { bos, sep } = tokenizer.specialTokens;
  return Int32Array.from([bos, ...tokenizer.encode(text), sep]);
}

/** Generated tokens → answer text, without the trailing `<eos>` (and anything after a stop). */
export function answerText(tokenizer: WordTokenizer, tokens: ArrayLike<number>): string {
  const ids = Array.from(tokens);
  const end = ids.indexOf(tokenizer.specialTokens.eos);
  return tokenizer.decode(end < 0 ? ids : ids.slice(0, end));
}
