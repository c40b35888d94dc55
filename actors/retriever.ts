/**
 * retriever: answers retrieval requests with the k most relevant documents of the experiment's
 * environment, from the index `factrl retriever build` made (retrieval.kind, retrieval.index), by
 * CM3Leon's rules (relevance, then diversity; query dropout when retrieving for training).
 *
 * Subjects: answers RetrieveRequest on `factrl.<exp>.retrieve` (an endpoint of the actor's NATS
 * service, so `$SRV.INFO`/`STATS` find it; the role's actors share one queue group) with
 * RetrieveReply, or RetrieveFailure for a request it refuses (logged with its subject and counted);
 * metrics on `metrics.<id>`.
 */
import { Data, Duration, Effect, Either } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import type { Environment } from "../envs/index.ts";
import {
  decodeEnvelope,
  Experiment,
  encodeEnvelope,
  envelope,
  MetricsEventMessage,
  Nats,
  newReceiveCounters,
  publishMessage,
  RETRIEVE_ENDPOINT,
  RetrieveFailureMessage,
  RetrieveReplyMessage,
  RetrieveRequestMessage,
  recordRejection,
} from "../messaging/index.ts";
import { openRetriever, type Retriever } from "../models/index.ts";
import { experimentEnvironment } from "./environment.ts";
import type { RoleDefinition, ServedReply } from "./runtime.ts";

/** The index would not open: missing, unreadable, or built for another world or tokenizer. */
export class RetrieverUnavailable extends Data.TaggedError("RetrieverUnavailable")<{
  readonly index: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `retriever index ${this.index}: ${this.reason}`;
  }
}

/** The configured index over the environment's documents. */
export const openConfiguredRetriever = (config: ExperimentConfig, env: Environment) =>
  Effect.tryPromise({
    try: () => openRetriever(config.retrieval.index, env, config.retrieval, config.retrieval.kind),
    catch: (error) =>
      new RetrieverUnavailable({
        index: config.retrieval.index,
        reason: error instanceof Error ? error.message : String(error),
      }),
  });

export const retrieverRole: RoleDefinition = {
  name: "retriever",
  description: "answers factrl.<exp>.retrieve with the most relevant documents of the environment's corpus",
  serves: [RETRIEVE_ENDPOINT],
  start: (actor) =>
    Effect.gen(function* () {
      const { config, logger } = actor;
      const nats = yield* Nats;
      const { subjects } = yield* Experiment;
      const env = yield* experimentEnvironment(config);
      const retriever: Retriever = yield* openConfiguredRetriever(config, env);
      const counters = newReceiveCounters();
      const meta = { experiment: subjects.experiment, sender: actor.id };
      const failure = (error: string): ServedReply => ({
        data: encodeEnvelope(envelope(RetrieveFailureMessage, { error }, meta), nats.maxPayload),
        error,
      });
      let served = 0;
      let retrieveMs = 0;
      const report = Effect.suspend(() =>
        publishMessage(subjects.metrics(actor.id), MetricsEventMessage, {
          source: actor.id,
          values: {
            "retriever.requests": served,
            "retriever.rejected": counters.rejected,
            "retriever.meanMs": served > 0 ? retrieveMs / served : 0,
          },
          tags: { role: "retriever", kind: retriever.kind },
        }),
      );
      yield* actor.serve(RETRIEVE_ENDPOINT, async (bytes) => {
        const decoded = decodeEnvelope(bytes, { accept: [RetrieveRequestMessage], maxBytes: nats.maxPayload });
        if (Either.isLeft(decoded)) {
          recordRejection(nats, counters, `${subjects.root}.${RETRIEVE_ENDPOINT}`, decoded.left);
          return failure(`bad retrieval request: ${decoded.left.message}`);
        }
        counters.accepted += 1;
        const { query, k, forTraining, seed } = decoded.right.body;
        const started = performance.now();
        const documents = retriever.retrieve(query, {
          k,
          ...(forTraining === undefined ? {} : { forTraining }),
          ...(seed === undefined ? {} : { seed }),
        });
        retrieveMs += performance.now() - started;
        served += 1;
        const reply = { documents, retriever: retriever.kind, index: retriever.manifest.world.fingerprint };
        return { data: encodeEnvelope(envelope(RetrieveReplyMessage, reply, meta), nats.maxPayload) };
      });
      logger.info(
        { kind: retriever.kind, documents: retriever.documents.length, index: config.retrieval.index },
        `serving ${subjects.root}.${RETRIEVE_ENDPOINT}`,
      );
      // Its counts, as often as heartbeats: the loop that keeps the role running while the endpoint serves.
      return report.pipe(
        Effect.ignore,
        Effect.zipRight(Effect.sleep(Duration.millis(config.runtime.heartbeatMs))),
        Effect.forever,
      );
    }),
};
