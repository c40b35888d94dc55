/**
 * rollout: pulls prompt groups, samples G answers to each with the current policy (tokens and the
 * behaviour log-prob of every token), and publishes rollout groups. It loads a newer policy version
 * between batches, so every group is sampled by exactly one version, which it records.
 *
 * With `rewards.reference: initial-policy` it also answers each prompt once with the frozen initial
 * policy (version 0) — the relevance judge's reference — cached per prompt.
 *
 * When the rollout actors score (`rewards.scoredBy`), it scores each group right after sampling with
 * the reward role's own work (makeScoring) and publishes the scored group instead: one process and one
 * queue hop fewer per group, the same msgID, so the learner's exactly-once use is unchanged.
 *
 * Subjects: pulls PromptGroup from the `prompts` work queue (demand-driven: a busy actor takes
 * nothing), publishes RolloutGroup to `rollouts` — or ScoredGroup to `scored` when it scores — (msgID
 * = group id), metrics on `metrics.<id>`. A prompt its policy cannot read (a picture of the wrong
 * size, more tokens than its context) is dead-lettered alone, and so is one whose group is too large
 * to publish. With `rollout.retrieval` it asks a retriever (`factrl.<exp>.retrieve`, request/reply
 * bounded by `rollout.retrieval.timeoutMs`) for each prompt's documents and prepends them; a prompt
 * whose evidence does not come in time is sampled without it (`rollout.retrieval.missed`).
 */
import { Deferred, Effect, Fiber } from "effect";
import { rolloutActorsScore } from "../configs/index.ts";
import {
  Experiment,
  MetricsEventMessage,
  openWorkFetcher,
  publishMessage,
  publishWork,
  RETRIEVE_ENDPOINT,
  type WorkItem,
  WorkOutcome,
} from "../messaging/index.ts";
import { memoryFigures } from "../models/index.ts";
import { natsEvidence } from "./evidence.ts";
import { followPolicy } from "./policy-sync.ts";
import { publishedTextFormat } from "./policy-tokenizer.ts";
import { openScoring, tooLargeReason } from "./reward.ts";
import { makeRolloutWork } from "./rollout-work.ts";
import type { RoleDefinition } from "./runtime.ts";
import { useBackend } from "./tf-backend.ts";
import { PROMPTS_QUEUE, type PromptGroup, ROLLOUTS_QUEUE, SCORED_QUEUE, type ScoredGroup } from "./topology.ts";
import { verificationMetrics } from "./verification.ts";

/** How long one pull waits for prompt groups before asking again. */
const PULL_EXPIRES_MS = 1_000;

/** The reward role's figures (reward.*) for a batch this actor scored itself. */
const scoringMetrics = (scored: readonly ScoredGroup[], scoreMs: number): Record<string, number> => {
  const scores = scored.flatMap((group) => group.scores);
  return {
    "reward.mean": scores.reduce((sum, s) => sum + s.reward, 0) / Math.max(1, scores.length),
    "reward.failures": scores.reduce((n, s) => n + s.failures.length, 0),
    "reward.answers": scores.length,
    "reward.scoreMs": scoreMs,
  };
};

export const rolloutRole: RoleDefinition = {
  name: "rollout",
  description: "samples G answers per prompt group with the current policy; publishes rollout groups",
  takes: [PROMPTS_QUEUE],
  gives: [ROLLOUTS_QUEUE],
  // Retrieval-augmented rollouts (rollout.retrieval) ask their experiment's retriever.
  asks: [RETRIEVE_ENDPOINT],
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      yield* useBackend(config, actor);
      const { subjects } = yield* Experiment;
      const follower = yield* followPolicy;
      // Prompts arrive as text: they are read with the policy's own tokenizer, as the learner trains it.
      const format = yield* publishedTextFormat;
      const prompts = yield* openWorkFetcher(PROMPTS_QUEUE);
      const retrieval = config.rollout.retrieval;
      const evidence = retrieval === undefined ? undefined : yield* natsEvidence(retrieval);
      const work = makeRolloutWork(config, format, follower.loadVersion(0), evidence);
      yield* Effect.addFinalizer(() => Effect.sync(() => work.dispose()));
      const scorer = rolloutActorsScore(config) ? yield* openScoring(config) : undefined;
      const score = scorer?.score;

      /**
       * Samples a batch (after loading a newer policy version, if any): its rollout groups, ready to
       * publish, and its items still to settle. A prompt the policy cannot read is dead-lettered
       * alone, naming the prompt; the rest of the batch goes on.
       */
      const sampleBatch = (fetched: readonly WorkItem<PromptGroup>[], settled: Set<WorkItem<PromptGroup>>) =>
        Effect.gen(function* () {
          // Durations for the metrics: loading weights, then sampling (in work.rollOut's figures).
          const syncStarted = performance.now();
          const { policy, version } = yield* follower.current;
          const syncMs = performance.now() - syncStarted;
          actor.setPolicyVersion(version);
          const batch = yield* work.rollOut(
            fetched.map((item) => item.body),
            policy,
            version,
            actor.id,
          );
          // Scored here when this actor scores; a module failing one answer fails that answer only.
          const scoreStarted = performance.now();
          const scored = score
            ? yield* Effect.promise(() => Promise.all(batch.rollouts.map((rollout) => score(rollout, actor.id))))
            : undefined;
          const scoring =
            scored && scorer
              ? {
                  ...scoringMetrics(scored, performance.now() - scoreStarted),
                  ...verificationMetrics("reward", scorer.verification),
                }
              : {};
          // The work hands back the very group objects it was given: each names its item.
          const itemOf = new Map(fetched.map((item) => [item.body, item]));
          for (const { group, reason } of batch.unreadable) {
            yield* Effect.logWarning(reason);
            actor.recordFailed(1);
            const item = itemOf.get(group)!;
            yield* item.settle(WorkOutcome.reject(reason));
            settled.add(item);
          }
          return {
            items: batch.rollouts.map((r) => itemOf.get(r.group)!),
            // Each group's publish, stored under its group id (a redelivered prompt's republish is a no-op).
            publishes: batch.rollouts.map((body, i) =>
              scored
                ? publishWork(SCORED_QUEUE, scored[i]!, { msgId: body.group.groupId })
                : publishWork(ROLLOUTS_QUEUE, body, { msgId: body.group.groupId }),
            ),
            version,
            metrics: {
              ...batch.metrics,
              ...scoring,
              "rollout.syncMs": syncMs,
              "rollout.refusedPointers": follower.refused(),
              // As the learner's: a leaked tensor grows the tensors, changing sampling shapes only the wasm heap.
              ...memoryFigures("rollout.memory"),
            },
          };
        });
      type SampledBatch = Effect.Effect.Success<ReturnType<typeof sampleBatch>>;

      /**
       * Publishes a sampled batch's rollout groups, each alone (acks awaited together), then settles
       * its prompt groups: a prompt group is settled only once its rollout group is stored. A rollout
       * group over the limit with the headers it would carry (docs/messaging.md, "The envelope") is
       * refused before sending: its prompt group is dead-lettered at once, alone, with the group's size
       * and the limit, and counted (`rollout.tooLarge`) — the rest of the batch goes on.
       */
      // Shares of the wall time between batch reports: sampling (busy), and weights/acks (stalled).
      let reportedAt = performance.now();
      /** Groups refused for their size since the actor started (`rollout.tooLarge`). */
      let tooLarge = 0;
      const what = score ? "scored" : "rollout";
      const publishBatch = (
        sampled: SampledBatch,
        settled: Set<WorkItem<PromptGroup>>,
        timings: { readonly fetchMs: number; readonly publishMs: number },
      ) =>
        Effect.gen(function* () {
          const started = performance.now();
          const outcomes = yield* Effect.forEach(
            sampled.publishes,
            (publish) =>
              publish.pipe(
                Effect.as(WorkOutcome.done),
                Effect.catchTag("MessageTooLargeError", (error) =>
                  Effect.sync(() => {
                    tooLarge += 1;
                    return WorkOutcome.reject(tooLargeReason(`its ${what} group`, error));
                  }),
                ),
              ),
            { concurrency: "unbounded" },
          );
          let published = 0;
          for (const [i, item] of sampled.items.entries()) {
            const outcome = outcomes[i]!;
            if (outcome._tag === "Done") published += 1;
            else {
              yield* Effect.logWarning(
                `prompt group ${item.body.groupId.slice(0, 80)} dead-lettered: ${outcome.reason}`,
              );
              actor.recordFailed(1);
            }
            yield* item.settle(outcome);
            settled.add(item);
          }
          actor.recordProcessed(published);
          const now = performance.now();
          const wallMs = now - reportedAt;
          reportedAt = now;
          const ackMs = now - started;
          const metrics: Readonly<Record<string, number | undefined>> = sampled.metrics;
          const [sampleMs, syncMs] = [metrics["rollout.sampleMs"] ?? 0, metrics["rollout.syncMs"] ?? 0];
          yield* publishMessage(subjects.metrics(actor.id), MetricsEventMessage, {
            source: actor.id,
            values: {
              ...sampled.metrics,
              "rollout.fetchMs": timings.fetchMs,
              // The loop's wait for messaging (the previous batch's acks) vs this batch's own publish-to-acks time.
              "rollout.publishMs": timings.publishMs,
              "rollout.ackMs": ackMs,
              "rollout.tooLarge": tooLarge,
              "rollout.busyShare": Math.min(1, sampleMs / wallMs),
              "rollout.stalledShare": Math.min(1, (syncMs + timings.publishMs + ackMs) / wallMs),
            },
            tags: { role: "rollout", policyVersion: String(sampled.version) },
          });
        });

      /** On failure, hands the batch's unsettled prompt groups back: another actor (or this one, later) redoes them. */
      const handingBack =
        (items: readonly WorkItem<PromptGroup>[], settled: Set<WorkItem<PromptGroup>>) =>
        <A, E, R>(work: Effect.Effect<A, E, R>) =>
          work.pipe(
            Effect.asVoid,
            Effect.catchAllCause((cause) =>
              Effect.gen(function* () {
                yield* Effect.logWarning("rollout batch failed; handing it back", cause);
                const unsettled = items.filter((item) => !settled.has(item));
                actor.recordFailed(unsettled.length);
                yield* Effect.forEach(unsettled, (item) => item.settle(WorkOutcome.retry("rollout failed", 500)), {
                  discard: true,
                });
              }).pipe(Effect.ignore),
            ),
          );

      /**
       * Forks `work` as work in hand and returns once it is counted, so a drain waits for it too. If the
       * drain began first, `handBack` hands the batch back instead.
       */
      const forkInHand = <E, R>(work: Effect.Effect<void, E, R>, handBack: ReturnType<typeof handingBack>) =>
        Effect.gen(function* () {
          const counted = yield* Deferred.make<void>();
          const fiber = yield* Effect.fork(
            actor
              .inHand(Effect.zipRight(Deferred.succeed(counted, undefined), work))
              .pipe(handBack, Effect.ensuring(Deferred.succeed(counted, undefined))),
          );
          yield* Deferred.await(counted);
          return fiber;
        });

      return Effect.gen(function* () {
        // Publish-behind: a batch's acks arrive while the next batch is fetched and sampled; the loop
        // waits for them only before handing off the next batch's publish (at most one outstanding).
        let publishing: Fiber.RuntimeFiber<void> | undefined;
        while (!actor.isDraining()) {
          const fetchStarted = performance.now();
          const fetched = yield* prompts.fetch({ max: config.rollout.batch, expiresMs: PULL_EXPIRES_MS });
          const fetchMs = performance.now() - fetchStarted;
          if (fetched.length === 0) continue;
          const settled = new Set<WorkItem<PromptGroup>>();
          const handBack = handingBack(fetched, settled);
          yield* actor
            .inHand(
              prompts.keepingAlive(
                () => fetched.filter((item) => !settled.has(item)),
                Effect.gen(function* () {
                  const sampled = yield* sampleBatch(fetched, settled);
                  if (sampled.items.length === 0) return;
                  const waitStarted = performance.now();
                  if (publishing) yield* Fiber.join(publishing);
                  const timings = { fetchMs, publishMs: performance.now() - waitStarted };
                  publishing = yield* forkInHand(
                    prompts.keepingAlive(
                      () => sampled.items.filter((item) => !settled.has(item)),
                      publishBatch(sampled, settled, timings),
                    ),
                    handBack,
                  );
                }),
              ),
            )
            .pipe(handBack);
        }
        if (publishing) yield* Fiber.join(publishing);
      });
    }),
};
