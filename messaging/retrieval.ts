/**
 * The retrieval protocol (docs/retrieval.md): a request for the k documents most relevant to a query,
 * answered by a retriever actor on `factrl.<exp>.retrieve`. It lives here, not beside the role,
 * because a rollout actor (actors/) and an evidence-grounded reward module (rewards/) both speak it,
 * and messaging/ is the one part both may import. Envelopes and plain msgpack as every factrl message.
 */
import { Schema } from "effect";
import { defineMessage, type MessageType } from "./codec.ts";
import type { ExperimentSubjects } from "./subjects.ts";

/** Most documents one request may ask for (a reply stays far below NATS' 1 MiB). */
export const MAX_RETRIEVE_K = 64;

export const RetrieveRequest = Schema.Struct({
  /** What to find documents for (a prompt, a claim). */
  query: Schema.String.pipe(Schema.filter((q) => q.trim() !== "" || "a non-empty query")),
  /** How many documents: 1 to MAX_RETRIEVE_K. */
  k: Schema.Int.pipe(
    Schema.between(1, MAX_RETRIEVE_K, { message: () => `k must be an integer in [1, ${MAX_RETRIEVE_K}]` }),
  ),
  /** Retrieving for training: the retriever applies query dropout (seeded by `seed`). */
  forTraining: Schema.optional(Schema.Boolean),
  seed: Schema.optional(Schema.Int),
});
export type RetrieveRequest = typeof RetrieveRequest.Type;

export const RetrievedPassage = Schema.Struct({
  /** The document's id in its environment (`doc-<n>` for FactWorld). */
  id: Schema.String,
  text: Schema.String,
  /** The retriever's relevance score (BM25, or the bi-encoder's inner product): higher is more relevant. */
  score: Schema.Number,
});
export type RetrievedPassage = typeof RetrievedPassage.Type;

export const RetrieveReply = Schema.Struct({
  /** Best first; fewer than k when fewer match. */
  documents: Schema.Array(RetrievedPassage),
  /** `bm25` or `dense`. */
  retriever: Schema.String,
  /** The index's world fingerprint: which corpus the documents come from. */
  index: Schema.String,
});
export type RetrieveReply = typeof RetrieveReply.Type;

/** A refused request (not msgpack, no query, k out of range…) or a failed retrieval. */
export const RetrieveFailure = Schema.Struct({ error: Schema.String });
export type RetrieveFailure = typeof RetrieveFailure.Type;

export const RetrieveRequestMessage = defineMessage({ name: "RetrieveRequest", version: 1, schema: RetrieveRequest });
export const RetrieveReplyMessage = defineMessage({ name: "RetrieveReply", version: 1, schema: RetrieveReply });
export const RetrieveFailureMessage = defineMessage({ name: "RetrieveFailure", version: 1, schema: RetrieveFailure });

/** What a retrieval client accepts back. */
export const RETRIEVE_REPLIES: readonly MessageType<RetrieveReply | RetrieveFailure>[] = [
  RetrieveReplyMessage,
  RetrieveFailureMessage,
];

/** The endpoint's name under the experiment (`factrl.<exp>.retrieve`). */
export const RETRIEVE_ENDPOINT = "retrieve";
export const retrieveSubject = (subjects: ExperimentSubjects): string => `${subjects.root}.${RETRIEVE_ENDPOINT}`;
