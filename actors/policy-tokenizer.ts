/**
 * The policy's tokenizer travels with the policy, not with the environment: the learner stores the
 * tokenizer record its checkpoint carries (a word list, or `{ kind: "bytes" }` for BLT) as a blob
 * before it announces any weights, and rollout actors and evaluators read prompts and write answers
 * through it. So an environment speaks text, and a policy with another tokenizer needs no change to it.
 */
import { Data, Effect } from "effect";
import {
  type BlobError,
  type Experiment,
  getBlob,
  getState,
  type Nats,
  putBlob,
  type StateError,
} from "../messaging/index.ts";
import { type TextFormat, textFormatOfRecord } from "../models/index.ts";
import { POLICY_ARCHITECTURE_KEY, POLICY_TOKENIZER_BLOB } from "./topology.ts";

/** The published tokenizer does not fit the published policy (or is not a tokenizer record at all). */
export class TokenizerMismatch extends Data.TaggedError("TokenizerMismatch")<{ readonly reason: string }> {
  override get message(): string {
    return `the published policy tokenizer: ${this.reason}`;
  }
}

/** Stores the policy's tokenizer record for the experiment's readers (the learner, before the first weights). */
export const publishPolicyTokenizer = (record: unknown): Effect.Effect<void, BlobError, Nats | Experiment> =>
  putBlob(POLICY_TOKENIZER_BLOB, new TextEncoder().encode(JSON.stringify(record))).pipe(Effect.asVoid);

/** The published policy's text format (its backbone's and tokenizer's), waiting until the learner published both. */
export const publishedTextFormat: Effect.Effect<
  TextFormat,
  BlobError | StateError | TokenizerMismatch,
  Nats | Experiment
> = Effect.gen(function* () {
  // The learner stores the tokenizer before the architecture: once the architecture is there, so is it.
  let architecture = yield* getState(POLICY_ARCHITECTURE_KEY);
  while (!architecture) {
    yield* Effect.sleep("200 millis");
    architecture = yield* getState(POLICY_ARCHITECTURE_KEY);
  }
  const bytes = yield* getBlob(POLICY_TOKENIZER_BLOB);
  return yield* Effect.try({
    try: () =>
      textFormatOfRecord(
        String(architecture.value.backbone),
        JSON.parse(new TextDecoder().decode(bytes)),
        `blob ${POLICY_TOKENIZER_BLOB}`,
      ),
    catch: (error) => new TokenizerMismatch({ reason: error instanceof Error ? error.message : String(error) }),
  });
});
