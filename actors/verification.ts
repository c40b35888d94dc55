/**
 * What a reward pipeline verifies claims with, besides the knowledge base: the `evidence` module's
 * passages and the verdict cache shared by verifiers (docs/rewards.md, "Evidence-grounded reward").
 *
 * In one process (the serial runner, `factrl eval`, `factrl retriever agree`): the configured
 * retriever index, opened here, and a cache in memory. In an actor: the retriever role over NATS
 * (`factrl.<exp>.retrieve`, with the module's timeout; no answer in time → the claim is
 * unverifiable, counted), and the cache in the experiment's KV bucket under `verdict.*`, shared by
 * every reward actor of the experiment.
 */
import { Data, Effect, Either } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import { ClaimVerifier, type Environment } from "../envs/index.ts";
import {
  Experiment,
  Nats,
  openStateBucket,
  RETRIEVE_REPLIES,
  RetrieveRequestMessage,
  requestMessage,
  retrieveSubject,
} from "../messaging/index.ts";
import {
  distinctClaims,
  EVIDENCE_MODULES,
  type EvidenceSource,
  evidenceVerification,
  kvVerdictCache,
  memoryVerdictCache,
  type RejectionLog,
  type VerdictAgreement,
  type VerdictCache,
  verdictAgreement,
} from "../rewards/index.ts";
import { openConfiguredRetriever } from "./retriever.ts";
import { VERDICT_CACHE_KEYS, VERDICT_CACHE_PREFIX } from "./topology.ts";

/** Agreement with the oracle asked of an environment that has none. */
export class NoOracle extends Data.TaggedError("NoOracle")<{ readonly kind: string }> {
  override get message(): string {
    return `env.kind ${this.kind} has no knowledge base: there is no oracle to agree with`;
  }
}

/** The verification context of a reward pipeline, and its counts for the metrics. */
export interface RewardVerification {
  /** Present when a module needs passages (`evidence`). */
  readonly evidence?: EvidenceSource;
  readonly verdictCache: VerdictCache;
  readonly onRejectedVerdict: RejectionLog;
  /** Retrievals that got no answer in time (or found no retriever): their claims were unverifiable. */
  readonly counts: { retrievalTimeouts: number };
}

type Modules = ExperimentConfig["rewards"]["modules"];

/** Whether the modules need retrieved passages. */
export const needsEvidence = (modules: Modules): boolean =>
  modules.some((m) => "name" in m && (EVIDENCE_MODULES as readonly string[]).includes(m.name));

/**
 * Passages by query, remembered (up to `limit` queries): a retriever answers a query the same way
 * all run long (no query dropout for rewards), and two evidence terms ask for the same claims.
 */
const remembering = (source: EvidenceSource, limit = 50_000): EvidenceSource => {
  const known = new Map<string, Promise<Awaited<ReturnType<EvidenceSource>>>>();
  return (request) => {
    const key = `${request.k}\u0000${request.query}`;
    const hit = known.get(key);
    if (hit) return hit;
    if (known.size >= limit) known.clear();
    const asked = source(request);
    known.set(key, asked);
    // A timeout or failure is not remembered: the next asker tries again.
    asked.then(
      (passages) => passages === null && known.delete(key),
      () => known.delete(key),
    );
    return asked;
  };
};

/** The verification metrics of a pipeline, as totals since it started (docs/metrics.md). */
export const verificationMetrics = (prefix: string, v: RewardVerification): Record<string, number> => {
  const { hits, misses, rejected, errors } = v.verdictCache.counts;
  return {
    [`${prefix}.verdictCache.hits`]: hits,
    [`${prefix}.verdictCache.misses`]: misses,
    [`${prefix}.verdictCache.rejected`]: rejected,
    [`${prefix}.verdictCache.errors`]: errors,
    [`${prefix}.retrievalTimeouts`]: v.counts.retrievalTimeouts,
  };
};

/** In this process: the configured retriever index (when a module needs it) and a cache in memory. */
export const localVerification = (config: ExperimentConfig, env: Environment, modules: Modules) =>
  Effect.gen(function* () {
    const retriever = needsEvidence(modules) ? yield* openConfiguredRetriever(config, env) : undefined;
    const verification: RewardVerification = {
      ...(retriever ? { evidence: remembering(async ({ query, k }) => retriever.retrieve(query, { k })) } : {}),
      verdictCache: memoryVerdictCache(),
      onRejectedVerdict: () => {},
      counts: { retrievalTimeouts: 0 },
    };
    return verification;
  });

/**
 * In an actor: the retriever role over NATS and the cache in the experiment's KV bucket. A rejected
 * cache entry is logged with its key (and counted by the cache).
 */
export const natsVerification = (modules: Modules) =>
  Effect.gen(function* () {
    const nats = yield* Nats;
    const experiment = yield* Experiment;
    const bucket = yield* openStateBucket(VERDICT_CACHE_KEYS.key);
    const counts = { retrievalTimeouts: 0 };
    const subject = retrieveSubject(experiment.subjects);
    const ask: EvidenceSource = async ({ query, k, timeoutMs }) => {
      const reply = await Effect.runPromise(
        requestMessage(subject, RetrieveRequestMessage, { query, k }, RETRIEVE_REPLIES, timeoutMs).pipe(
          Effect.either,
          Effect.provideService(Nats, nats),
          Effect.provideService(Experiment, experiment),
        ),
      );
      if (Either.isLeft(reply)) {
        const { kind, reason } = reply.left;
        if (kind === "timeout" || kind === "no-responders") {
          counts.retrievalTimeouts++;
          return null;
        }
        throw new Error(`retrieval on ${subject}: ${reason}`);
      }
      const body = reply.right.body;
      if ("error" in body) throw new Error(`retrieval on ${subject} refused: ${body.error}`);
      return body.documents;
    };
    const verification: RewardVerification = {
      ...(needsEvidence(modules) ? { evidence: remembering(ask) } : {}),
      verdictCache: kvVerdictCache(bucket, VERDICT_CACHE_PREFIX),
      onRejectedVerdict: ({ key, reason }) =>
        nats.logger.warn(
          { subject: `$KV.${experiment.subjects.stateBucket}.${VERDICT_CACHE_PREFIX}.${key}`, reason },
          "malformed verdict in the verification cache: verifying again",
        ),
      counts,
    };
    return verification;
  });

/**
 * Per-claim agreement of the evidence verifier (k passages per claim from the configured index) with
 * the environment's knowledge base, over the distinct claims of each answer (malformed answers have
 * none): `factrl retriever agree`.
 */
export const evidenceAgreement = (config: ExperimentConfig, env: Environment, answers: readonly string[], k: number) =>
  Effect.gen(function* () {
    const world = env.knowledge;
    if (!world) return yield* new NoOracle({ kind: env.kind });
    const retriever = yield* openConfiguredRetriever(config, env);
    // In this process a retrieval cannot time out: the timeout is never consulted.
    const verify = evidenceVerification(async ({ query }) => retriever.retrieve(query, { k }), { k, timeoutMs: 1 });
    const oracle = new ClaimVerifier(world);
    const pairs = yield* Effect.promise(() =>
      Promise.all(
        answers.flatMap((answer) =>
          (distinctClaims(answer) ?? []).map(async (claim) => ({
            oracle: oracle.verdict(claim),
            evidence: (await verify(claim)).verdict,
          })),
        ),
      ),
    );
    const agreement: VerdictAgreement = verdictAgreement(pairs);
    return agreement;
  });
