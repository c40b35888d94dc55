/**
 * Checks a scored group before it joins a GRPO batch. A group comes from other processes (or from
 * anyone who can publish on the queue), and one bad group did damage far beyond itself: a token id
 * outside the vocabulary crashed the learner five times and took the groups fetched with it to the
 * dead-letter subject; a non-finite reward turned every weight into NaN. So the learner dead-letters
 * a group that fails here, alone, with the reason, and trains on the rest.
 *
 * Reasons name an index and a number, never the message's own text, so they stay short in logs and
 * dead-letter headers whatever the group holds.
 */
import type { ScoredGroup } from "../actors/index.ts";

export interface GroupLimits {
  /** The policy's vocabulary: token ids lie in [0, vocabSize). */
  readonly vocabSize: number;
  /** The policy's longest sequence: prompt + answer tokens. */
  readonly maxSeqLen: number;
  /** `rollout.maxNewTokens`: no rollout samples a longer answer. */
  readonly maxAnswerTokens: number;
  /** `rollout.groupSize`: every group of a batch has this many answers (the advantages assume it). */
  readonly groupSize: number;
  /** The newest policy version the learner has published: no rollout comes from a later one. */
  readonly newestVersion: number;
}

/** Group ids are the curator's `g<sequence>`; anything far longer is not one of them. */
export const MAX_GROUP_ID_LENGTH = 128;

const outsideVocabulary = (tokens: Int32Array, vocabSize: number): number =>
  tokens.findIndex((id) => id < 0 || id >= vocabSize);

/** Why `group` must not be trained on, or undefined when it may. */
export function invalidGroupReason(group: ScoredGroup, limits: GroupLimits): string | undefined {
  const { rollout, scores } = group;
  const { group: prompt, answers } = rollout;
  const id = prompt.groupId;
  if (id.length === 0 || id.length > MAX_GROUP_ID_LENGTH)
    return `group id of ${id.length} characters (1 to ${MAX_GROUP_ID_LENGTH} allowed)`;
  if (rollout.policyVersion > limits.newestVersion)
    return `claims policy version ${rollout.policyVersion}, but the newest published is ${limits.newestVersion}`;
  if (prompt.groupSize !== limits.groupSize || answers.length !== limits.groupSize || scores.length !== answers.length)
    return (
      `group size ${prompt.groupSize} with ${answers.length} answers and ${scores.length} scores ` +
      `(rollout.groupSize is ${limits.groupSize})`
    );
  const promptTokens = rollout.promptTokens;
  if (promptTokens.length === 0) return "empty prompt (at least one token is needed)";
  const badPromptToken = outsideVocabulary(promptTokens, limits.vocabSize);
  if (badPromptToken >= 0)
    return `prompt token ${badPromptToken} is ${promptTokens[badPromptToken]}, outside the vocabulary [0, ${limits.vocabSize})`;
  for (const [i, answer] of answers.entries()) {
    const { tokens, logProbs } = answer;
    if (tokens.length > limits.maxAnswerTokens)
      return `answer ${i} has ${tokens.length} tokens (rollout.maxNewTokens is ${limits.maxAnswerTokens})`;
    if (promptTokens.length + tokens.length > limits.maxSeqLen)
      return `prompt + answer ${i} is ${promptTokens.length + tokens.length} tokens (maxSeqLen is ${limits.maxSeqLen})`;
    const badToken = outsideVocabulary(tokens, limits.vocabSize);
    if (badToken >= 0)
      return `answer ${i} token ${badToken} is ${tokens[badToken]}, outside the vocabulary [0, ${limits.vocabSize})`;
    if (logProbs.length !== tokens.length)
      return `answer ${i} has ${tokens.length} tokens but ${logProbs.length} log-probs`;
    // A log-probability is finite and at most 0; the ratio exp(log π − log π_behaviour) needs it.
    const badLogProb = logProbs.findIndex((lp) => !(Number.isFinite(lp) && lp <= 0));
    if (badLogProb >= 0)
      return `answer ${i} log-prob ${badLogProb} is ${logProbs[badLogProb]} (a finite number ≤ 0 expected)`;
    // An off-policy answer's own log-probs are TIS's numerator and ρ's denominator.
    const policyLogProbs = answer.policyLogProbs ?? new Float32Array(0);
    if (rollout.decoding !== undefined && policyLogProbs.length !== tokens.length)
      return `answer ${i} of a ${rollout.decoding.kind} group has ${policyLogProbs.length} policy log-probs for ${tokens.length} tokens`;
    const badPolicyLogProb = policyLogProbs.findIndex((lp) => !(Number.isFinite(lp) && lp <= 0));
    if (badPolicyLogProb >= 0)
      return `answer ${i} policy log-prob ${badPolicyLogProb} is ${policyLogProbs[badPolicyLogProb]} (a finite number ≤ 0 expected)`;
  }
  const badReward = scores.findIndex((score) => !Number.isFinite(score.reward));
  if (badReward >= 0) return `reward of answer ${badReward} is ${scores[badReward]!.reward}`;
  return undefined;
}
