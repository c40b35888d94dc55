/**
 * Where a rollout (or an evaluation) gets evidence for its prompts (`rollout.retrieval`): a retriever
 * actor over NATS request/reply, bounded by `timeoutMs` (the actor runner), or the same index opened in
 * this process (the serial runner, `factrl eval`). A prompt whose evidence does not come — a timeout,
 * no retriever, an error reply — is sampled without it: the caller counts it, nothing waits longer.
 */
import { Effect } from "effect";
import type { RolloutRetrieval } from "../configs/index.ts";
import {
  Experiment,
  type Nats,
  RETRIEVE_REPLIES,
  type RetrievedPassage,
  RetrieveFailureMessage,
  RetrieveRequestMessage,
  requestMessage,
  retrieveSubject,
} from "../messaging/index.ts";
import type { Retriever } from "../models/index.ts";

export interface EvidenceQuery {
  readonly query: string;
  /** Seeds the retriever's query dropout (training-time retrieval). */
  readonly seed: number;
}

/** The documents for one query, or why there are none. */
export type Evidence = { readonly documents: readonly RetrievedPassage[] } | { readonly missed: string };

/** Evidence for each query, in order; never fails (a miss is a value). */
export type EvidenceSource = (queries: readonly EvidenceQuery[]) => Effect.Effect<readonly Evidence[]>;

const requestFor = (settings: RolloutRetrieval, q: EvidenceQuery) => ({
  query: q.query,
  k: settings.k,
  ...(settings.queryDropout ? { forTraining: true, seed: q.seed } : {}),
});

/** The index opened in this process: no timeout to wait for; a query it cannot answer is a miss. */
export const inProcessEvidence =
  (retriever: Retriever, settings: RolloutRetrieval): EvidenceSource =>
  (queries) =>
    Effect.sync(() =>
      queries.map((q): Evidence => {
        try {
          return { documents: retriever.retrieve(q.query, requestFor(settings, q)) };
        } catch (error) {
          return { missed: error instanceof Error ? error.message : String(error) };
        }
      }),
    );

/**
 * A retriever actor over NATS (`factrl.<exp>.retrieve`), every query at once, each bounded by
 * `settings.timeoutMs`: a retriever that never answers costs one timeout per batch, not a hang.
 */
export const natsEvidence = (settings: RolloutRetrieval) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Nats | Experiment>();
    const { subjects } = yield* Experiment;
    const subject = retrieveSubject(subjects);
    const one = (q: EvidenceQuery) =>
      requestMessage(
        subject,
        RetrieveRequestMessage,
        requestFor(settings, q),
        RETRIEVE_REPLIES,
        settings.timeoutMs,
      ).pipe(
        Effect.map(
          (reply): Evidence =>
            reply.type === RetrieveFailureMessage.name
              ? { missed: `the retriever refused: ${(reply.body as { error: string }).error}` }
              : { documents: (reply.body as { documents: readonly RetrievedPassage[] }).documents },
        ),
        Effect.catchAll((error) => Effect.succeed<Evidence>({ missed: `${error.kind}: ${error.reason}` })),
      );
    const source: EvidenceSource = (queries) =>
      Effect.forEach(queries, one, { concurrency: "unbounded" }).pipe(Effect.provide(context));
    return source;
  });
