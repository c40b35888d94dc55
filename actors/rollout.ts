/**
 * rollout: pulls prompt groups, samples G answers to each with the current policy (tokens and the
 * behaviour log-prob of every token), and publishes rollout groups. It loads a newer policy version
 * between batches, so every group is sampled by exactly one version, which it records.
 *
 * With `rewards.reference: initial-policy` it also answers each prompt once with the frozen initial
 * policy (version 0) — the relevance judge's reference — cached per prompt.
 *
 * Subjects: pulls PromptGroup from the `prompts` work queue (demand-driven: a busy actor takes
 * nothing), publishes RolloutGroup to `rollouts` (msgID = group id), metrics on `metrics.<id>`. A
 * prompt its policy cannot read (a picture of the wrong size) is dead-lettered alone.
 */
import { Deferred, Duration, Effect, Either, Fiber, Schedule } from "effect";
import {
  type Answer,
  Experiment,
  openWorkFetcher,
  publishMessage,
  publishWorkAll,
  type WorkItem,
  WorkOutcome,
} from "../messaging/index.ts";
import type { Policy, SampledSequence } from "../models/index.ts";
import { hash32 } from "./environment.ts";
import { followPolicy } from "./policy-sync.ts";
import { publishedTextFormat } from "./policy-tokenizer.ts";
import type { RoleDefinition } from "./runtime.ts";
import { useBackend } from "./tf-backend.ts";

/** How long one pull waits for prompt groups before asking again. */
const PULL_EXPIRES_MS = 1_000;
/** Tells the server the batch is still being worked on, well inside its ack wait. */
const KEEP_ALIVE = Schedule.spaced(Duration.seconds(5));

/** Runs `work` while telling the server every item is still in progress. */
const keepingAlive = <A, E, R>(items: readonly WorkItem<"prompts">[], work: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const ticker = yield* Effect.fork(
      Effect.repeat(
        Effect.forEach(items, (item) => item.working),
        KEEP_ALIVE,
      ).pipe(Effect.delay(Duration.seconds(5))),
    );
    return yield* work.pipe(Effect.ensuring(Fiber.interrupt(ticker)));
  });

const toAnswer = (sequence: SampledSequence, text: string): Answer => ({
  tokens: sequence.tokens as Int32Array<ArrayBuffer>,
  logProbs: sequence.logProbs as Float32Array<ArrayBuffer>,
  text,
  finishReason: sequence.finishReason,
});

export const rolloutRole: RoleDefinition = {
  name: "rollout",
  description: "samples G answers per prompt group with the current policy; publishes rollout groups",
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      yield* useBackend(config, actor);
      const { subjects } = yield* Experiment;
      const follower = yield* followPolicy;
      // Prompts arrive as text: they are read with the policy's own tokenizer, as the learner trains it.
      const format = yield* publishedTextFormat;
      const prompts = yield* openWorkFetcher("prompts");
      const sampling = {
        temperature: config.rollout.temperature,
        topP: config.rollout.topP,
        maxNewTokens: config.rollout.maxNewTokens,
        stopTokens: format.stopTokens,
      };
      const references = new Map<string, string>();
      let initialPolicy: Policy | undefined;
      yield* Effect.addFinalizer(() => Effect.sync(() => initialPolicy?.dispose()));

      /**
       * Each prompt group's prompt as the policy reads it (its picture's image tokens, then its words).
       * One the policy cannot read — a picture its image tokenizer refuses, or a text-only policy given
       * a picture — is dead-lettered alone, naming the prompt; the rest of the batch goes on.
       */
      const readPrompts = (items: readonly WorkItem<"prompts">[]) =>
        Effect.gen(function* () {
          const read: { readonly item: WorkItem<"prompts">; readonly tokens: Int32Array<ArrayBuffer> }[] = [];
          for (const item of items) {
            const { prompt, picture, promptId, groupId } = item.body;
            const tokens = yield* Effect.try(() => format.promptTokens(prompt, picture)).pipe(Effect.either);
            if (Either.isRight(tokens)) {
              read.push({ item, tokens: tokens.right as Int32Array<ArrayBuffer> });
              continue;
            }
            const reason = `prompt ${promptId} (group ${groupId}) cannot be read by this policy: ${
              tokens.left.error instanceof Error ? tokens.left.error.message : String(tokens.left.error)
            }`;
            yield* Effect.logWarning(reason);
            actor.recordFailed(1);
            yield* item.settle(WorkOutcome.reject(reason));
          }
          return read;
        });
      type ReadPrompt = Effect.Effect.Success<ReturnType<typeof readPrompts>>[number];

      /** The initial policy's answer to each prompt of the batch not answered yet (one batched call). */
      const referencesFor = (batch: readonly ReadPrompt[]) =>
        Effect.gen(function* () {
          if (config.rewards.reference !== "initial-policy") return;
          const missing = [...new Map(batch.map((r) => [r.item.body.promptId, r])).values()].filter(
            (r) => !references.has(r.item.body.promptId),
          );
          if (missing.length === 0) return;
          initialPolicy ??= yield* follower.loadVersion(0);
          const result = yield* Effect.promise(() =>
            initialPolicy!.sample(
              missing.map((r) => r.tokens),
              { ...sampling, seed: hash32(`reference:${config.seed}:${missing[0]!.item.body.promptId}`) },
            ),
          );
          for (const [i, r] of missing.entries()) {
            references.set(r.item.body.promptId, format.answerText(result.sequences[i]!.tokens));
          }
        });

      /** Samples a batch (after loading a newer policy version, if any): its rollout groups, ready to publish. */
      const sampleBatch = (batch: readonly ReadPrompt[]) =>
        Effect.gen(function* () {
          const items = batch.map((r) => r.item);
          // Durations for bench/pipeline.ts: loading weights, sampling, and (publishBatch) messaging.
          const syncStarted = performance.now();
          const { policy, version } = yield* follower.current;
          const syncMs = performance.now() - syncStarted;
          actor.setPolicyVersion(version);
          const startedAt = Date.now();
          const promptTokens = batch.map((r) => r.tokens);
          const rows = items.flatMap((item, i) => Array.from({ length: item.body.groupSize }, () => promptTokens[i]!));
          const seed = hash32(`${config.seed}:${version}:${items.map((i) => i.body.groupId).join(",")}`);
          const result = yield* Effect.promise(() => policy.sample(rows, { ...sampling, seed }));
          yield* referencesFor(batch);
          const finishedAt = Date.now();
          let row = 0;
          const rollouts = items.map((item, i) => {
            const group = item.body;
            const reference = references.get(group.promptId);
            const answers = result.sequences
              .slice(row, row + group.groupSize)
              .map((sequence) => toAnswer(sequence, format.answerText(sequence.tokens)));
            row += group.groupSize;
            return {
              body: {
                group,
                promptTokens: promptTokens[i]!,
                answers,
                policyVersion: version,
                timings: { startedAt, finishedAt },
                actor: actor.id,
                ...(reference === undefined ? {} : { reference }),
              },
              msgId: group.groupId,
            };
          });
          const metrics = {
            "rollout.groups": items.length,
            "rollout.tokens": result.timings.generatedTokens,
            "rollout.tokensPerSecond": (1000 * result.timings.generatedTokens) / Math.max(1, result.timings.totalMs),
            "rollout.sampleMs": result.timings.totalMs,
            "rollout.batchMs": finishedAt - startedAt,
            "rollout.startedAt": startedAt,
            "rollout.syncMs": syncMs,
            "rollout.refusedPointers": follower.refused(),
          };
          return { rollouts, version, metrics };
        });
      type SampledBatch = Effect.Effect.Success<ReturnType<typeof sampleBatch>>;

      /**
       * Publishes a sampled batch's rollout groups together (acks awaited together), then settles its
       * prompt groups: a prompt group is settled only once its rollout group is stored.
       */
      const publishBatch = (
        items: readonly WorkItem<"prompts">[],
        sampled: SampledBatch,
        settled: Set<WorkItem<"prompts">>,
        timings: { readonly fetchMs: number; readonly publishMs: number },
      ) =>
        Effect.gen(function* () {
          const started = performance.now();
          yield* publishWorkAll("rollouts", sampled.rollouts);
          for (const item of items) {
            yield* item.settle(WorkOutcome.done);
            settled.add(item);
          }
          actor.recordProcessed(items.length);
          yield* publishMessage(subjects.metrics(actor.id), "MetricsEvent", {
            source: actor.id,
            values: {
              ...sampled.metrics,
              "rollout.fetchMs": timings.fetchMs,
              // The loop's wait for messaging (the previous batch's acks) vs this batch's own publish-to-acks time.
              "rollout.publishMs": timings.publishMs,
              "rollout.ackMs": performance.now() - started,
            },
            tags: { role: "rollout", policyVersion: String(sampled.version) },
          });
        });

      /** On failure, hands the batch's unsettled prompt groups back: another actor (or this one, later) redoes them. */
      const handingBack =
        (items: readonly WorkItem<"prompts">[], settled: Set<WorkItem<"prompts">>) =>
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
          const batch = yield* readPrompts(fetched);
          if (batch.length === 0) continue;
          const items = batch.map((r) => r.item);
          const settled = new Set<WorkItem<"prompts">>();
          const handBack = handingBack(items, settled);
          yield* actor
            .inHand(
              keepingAlive(
                items,
                Effect.gen(function* () {
                  const sampled = yield* sampleBatch(batch);
                  const waitStarted = performance.now();
                  if (publishing) yield* Fiber.join(publishing);
                  const timings = { fetchMs, publishMs: performance.now() - waitStarted };
                  publishing = yield* forkInHand(
                    keepingAlive(items, publishBatch(items, sampled, settled, timings)),
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
