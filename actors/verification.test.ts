/**
 * The evidence reward and the shared verdict cache in actors, against a real nats-server: a reward
 * actor asks the retriever role for passages and fills the cache in the experiment's KV bucket; a
 * second reward actor, started after the first has gone, scores the same claims from the cache; a
 * malformed entry is rejected and recomputed; with no retriever left, claims time out as unverifiable
 * and the actor counts them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deferred, Effect, Either, Fiber } from "effect";
import { afterAll, describe, expect, inject, it } from "vitest";
import { decodeConfig } from "../configs/index.ts";
import { isRelation, makeEnvironment, renderReference } from "../envs/index.ts";
import {
  decodeEnvelope,
  Experiment,
  ensureWorkQueues,
  MetricsEventMessage,
  Nats,
  openStateBucket,
  openWorkFetcher,
  publishWork,
  RETRIEVE_REPLIES,
  RetrieveRequestMessage,
  requestMessage,
  retrieveSubject,
  WorkOutcome,
} from "../messaging/index.ts";
import { buildRetrievalIndex } from "../models/index.ts";
import { eventually, freshExperiment, runWith, sampleRolloutGroup } from "../test/messaging/fixtures.ts";
import { retrieverRole } from "./retriever.ts";
import { createExperimentRewards, rewardRole } from "./reward.ts";
import { runActor } from "./runtime.ts";
import { PIPELINE_QUEUES, ROLLOUTS_QUEUE, type RolloutGroup, SCORED_QUEUE, VERDICT_CACHE_PREFIX } from "./topology.ts";
import { evidenceAgreement, localVerification } from "./verification.ts";

const natsUrl = inject("natsUrl");
const dir = await mkdtemp(join(tmpdir(), "factrl-verification-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A tiny world's config with a BM25 index at `name` (not built), its environment, and a birthplace fact of it. */
const tinyWorld = async (name: string) => {
  const index = join(dir, name);
  const config = Either.getOrThrow(
    decodeConfig({ experiment: name, env: { kind: "factworld", size: "tiny" }, retrieval: { kind: "bm25", index } }),
  );
  const env = await makeEnvironment(config.env);
  const world = env.knowledge!;
  const entity = world.entities.find((e) => e.facts.some((f) => f.relation === "birthplace"))!;
  const place = entity.facts.find((f) => f.relation === "birthplace")!.object;
  const bornIn = (where: string) => `<think> x </think> ${entity.name} was born in ${where} .`;
  return { index, config, env, world, place, bornIn };
};

describe("evidence reward and verdict cache across reward actors", () => {
  it("the second reward actor hits the first one's verdicts; a bad entry is recomputed; no retriever → unverifiable, counted", async () => {
    const experiment = freshExperiment("verd");
    const index = join(dir, "bm25");
    const config = Either.getOrThrow(
      decodeConfig({
        experiment,
        nats: { url: natsUrl },
        env: { kind: "factworld", size: "tiny" },
        retrieval: { kind: "bm25", index },
        rewards: {
          modules: [
            { name: "format", weight: 1 },
            { name: "evidence", weight: 1, options: { k: 3, timeoutMs: 1_000 } },
          ],
        },
        runtime: { heartbeatMs: 200, drainTimeoutMs: 2_000 },
      }),
    );
    const env = await makeEnvironment(config.env);
    await buildRetrievalIndex(env, "bm25", index);
    // Four answers: the knowledge base's reference answers to four eval prompts (claims the corpus states).
    const prompts = env.eval.filter((p) => p.focus).slice(0, 4);
    const world = env.knowledge!;
    const answers = prompts.map(({ focus }) =>
      renderReference(world, {
        focus: {
          entityId: world.byName.get(focus!.entity)!.id,
          entity: focus!.entity,
          aspects: focus!.aspects.filter(isRelation),
        },
      }),
    );
    const group = (id: string): RolloutGroup => {
      const sample = sampleRolloutGroup(id, answers.length, 8);
      return { ...sample, answers: sample.answers.map((a, i) => ({ ...a, text: answers[i]! })) };
    };

    const result = await runWith(
      natsUrl,
      experiment,
      Effect.gen(function* () {
        const { connection } = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const metrics = new Map<string, Record<string, number>>();
        const sub = connection.subscribe(subjects.allMetrics, {
          callback: (_, msg) => {
            const decoded = decodeEnvelope(msg.data, { accept: [MetricsEventMessage] });
            if (Either.isRight(decoded)) {
              const { source, values } = decoded.right.body;
              if ("reward.verdictCache.hits" in values) metrics.set(source, { ...values });
            }
          },
        });
        yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()));
        const scored = yield* openWorkFetcher(SCORED_QUEUE);
        const takeScored = eventually(scored.fetch({ max: 1 }), (items) => items.length > 0, 20_000).pipe(
          Effect.tap((items) => Effect.forEach(items, (item) => item.settle(WorkOutcome.done))),
          Effect.map((items) => items[0]!.body),
        );

        const retrieverDrain = yield* Deferred.make<string>();
        const retriever = yield* Effect.fork(
          runActor({ role: retrieverRole, config, id: "retriever-1", drain: retrieverDrain }),
        );
        // Serving before any reward actor asks (else the first claims find no responders).
        yield* eventually(
          requestMessage(
            retrieveSubject(subjects),
            RetrieveRequestMessage,
            { query: "x", k: 1 },
            RETRIEVE_REPLIES,
            500,
          ).pipe(Effect.either),
          Either.isRight,
          20_000,
        );
        const runReward = (id: string, groupId: string) =>
          Effect.gen(function* () {
            const drain = yield* Deferred.make<string>();
            const actor = yield* Effect.fork(runActor({ role: rewardRole, config, id, drain }));
            yield* publishWork(ROLLOUTS_QUEUE, group(groupId), { msgId: groupId });
            const body = yield* takeScored;
            const values = yield* eventually(
              Effect.sync(() => metrics.get(id)),
              (v) => v !== undefined,
              10_000,
            );
            yield* Deferred.succeed(drain, "test");
            yield* Fiber.await(actor);
            return { scores: body.scores, values: values! };
          });

        // The first actor verifies every claim (once: the cache is empty) and stores the verdicts.
        const first = yield* runReward("reward-1", "g-1");
        const bucket = yield* openStateBucket("test");
        const keys = yield* Effect.promise(async () => {
          const found: string[] = [];
          for await (const key of await bucket.keys(`${VERDICT_CACHE_PREFIX}.>`)) found.push(key);
          return found;
        });
        // One entry made unreadable: the second actor must reject it, verify that claim again, rewrite it.
        yield* Effect.promise(() => bucket.put(keys[0]!, "not a verdict"));
        const second = yield* runReward("reward-2", "g-2");
        const rewritten = yield* Effect.promise(() => bucket.get(keys[0]!));

        // No retriever: every claim's retrieval times out.
        yield* Deferred.succeed(retrieverDrain, "test");
        yield* Fiber.await(retriever);
        const third = yield* runReward("reward-3", "g-3");
        return { first, second, third, keys, rewritten: new TextDecoder().decode(rewritten!.value) };
      }),
    );

    // Claims over the group's answers (two prompts may share an entity, so claims repeat): each distinct
    // one verified once, its repeats waiting for that verdict (hits), every verdict stored under its key.
    const misses = result.first.values["reward.verdictCache.misses"]!;
    const claims = misses + result.first.values["reward.verdictCache.hits"]!;
    expect(misses).toBeGreaterThan(4);
    expect(result.keys).toHaveLength(misses);
    // The evidence reward scores the reference answers from passages alone: mostly supported.
    const evidence = result.first.scores.map((s) => s.components.evidence!);
    expect(evidence.every((e) => e > 0.5)).toBe(true);
    expect(result.first.scores.every((s) => s.components["evidence.timeouts"] === 0)).toBe(true);

    expect(result.second.values).toMatchObject({
      "reward.verdictCache.hits": claims - 1,
      "reward.verdictCache.misses": 1,
      "reward.verdictCache.rejected": 1,
      "reward.retrievalTimeouts": 0,
    });
    expect(result.second.scores.map((s) => s.components.evidence)).toEqual(evidence);
    expect(JSON.parse(result.rewritten)).toMatchObject({ v: 1 });

    // One request per distinct claim (repeats wait for it), each counted once; every claim unverifiable.
    expect(result.third.values["reward.retrievalTimeouts"]).toBe(misses);
    expect(result.third.values["reward.verdictCache.misses"]).toBe(0);
    expect(result.third.scores.every((s) => s.components.evidence === 0 && s.failures.length === 0)).toBe(true);
    expect(result.third.scores.reduce((n, s) => n + s.components["evidence.timeouts"]!, 0)).toBe(claims);
  }, 120_000);

  it("agreement with the oracle (factrl retriever agree): the knowledge base's answers agree, a wrong claim is caught", async () => {
    const { index, config, env, world, place, bornIn } = await tinyWorld("agree");
    await buildRetrievalIndex(env, "bm25", index);
    const elsewhere = world.entities.find((e) => e.type === "place" && e.name !== place)!.name;
    const answers = [bornIn(place), bornIn(elsewhere), "not an answer"];
    const agreement = await Effect.runPromise(evidenceAgreement(config, env, answers, 5));
    expect(agreement.claims).toBe(2);
    expect(agreement.matrix.supported.supported).toBe(1);
    expect(agreement.matrix.contradicted.contradicted).toBe(1);
    expect(agreement.agreement).toBe(1);
  }, 60_000);

  it("in one process (serial runs, factrl eval): the configured index, opened only when a module needs passages", async () => {
    const { index, config, env, place, bornIn } = await tinyWorld("local");
    const evidence = [{ name: "evidence", weight: 1, options: {} }];
    // No index yet: a config naming `evidence` fails with the index's error; one without it never opens it.
    const missing = await Effect.runPromise(Effect.either(localVerification(config, env, evidence)));
    expect(Either.isLeft(missing) && missing.left.message).toMatch(/no retrieval index at .*factrl retriever build/);
    const none = await Effect.runPromise(localVerification(config, env, [{ name: "format", weight: 1, options: {} }]));
    expect(none.evidence).toBeUndefined();

    await buildRetrievalIndex(env, "bm25", index);
    const local = await Effect.runPromise(localVerification(config, env, evidence));
    const pipeline = await createExperimentRewards(config, env, undefined, evidence, local);
    const item = { prompt: { id: "p", text: "q" }, answer: bornIn(place) };
    const [first, second] = await pipeline.score([item, item]);
    expect(first!.components.evidence).toBe(1);
    expect(second!.components.evidence).toBe(1);
    expect(local.verdictCache.counts).toMatchObject({ misses: 1, hits: 1 });
    await pipeline.close();
  }, 60_000);
});
