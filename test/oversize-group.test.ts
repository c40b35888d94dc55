/**
 * A rollout group too large to publish, through a real rollout actor and a real nats-server with a
 * small max_payload: NATS counts a message's headers (the JetStream msgID) toward that limit, so a
 * group that fits alone but not with its headers used to pass factrl's size check, be refused by the
 * client on every retry for a minute, and come back to be sampled again. It must be dead-lettered at
 * once, alone, naming its size and the limit, counted in `rollout.tooLarge`, while the other groups flow.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deferred, Effect, Either, Fiber, Queue } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishPolicyTokenizer } from "../actors/policy-tokenizer.ts";
import { rewardRole } from "../actors/reward.ts";
import { rolloutRole } from "../actors/rollout.ts";
import { makeRolloutWork } from "../actors/rollout-work.ts";
import { runActor } from "../actors/runtime.ts";
import {
  LEARNER_PROGRESS_KEY,
  NO_LEARNER_PROGRESS,
  PIPELINE_QUEUES,
  POLICY_ARCHITECTURE_KEY,
  PROMPTS_QUEUE,
  type PromptGroup,
  ROLLOUTS_QUEUE,
  RolloutGroupMessage,
  SCORED_QUEUE,
} from "../actors/topology.ts";
import { decodeConfig } from "../configs/index.ts";
import {
  Experiment,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  type LocalServer,
  MetricsEventMessage,
  Nats,
  openWorkFetcher,
  publishPolicy,
  publishWork,
  putState,
  readDeadLetters,
  startLocalServer,
  subscribe,
  WorkOutcome,
  type WorkQueue,
} from "../messaging/index.ts";
import { initBackend, loadCheckpoint, type Policy, type TextFormat, textFormatOfRecord } from "../models/index.ts";
import {
  eventually,
  freshExperiment,
  paddedRolloutGroup,
  runWith,
  samplePromptGroup,
  sampleRolloutGroup,
} from "./messaging/fixtures.ts";

const TINY_POLICY = join(import.meta.dirname, "fixtures", "tiny-policy");
/** Small, yet above the tiny policy's weights (one 220 KB blob chunk). */
const MAX_PAYLOAD = 256 * 1024;
const ACTOR = "rollout-big";

let server: LocalServer;
let dir: string;
let policy: Policy;
let tokenizer: unknown;
let format: TextFormat;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "factrl-oversize-"));
  const conf = join(dir, "nats.conf");
  await writeFile(conf, `max_payload: ${MAX_PAYLOAD}\n`);
  server = await startLocalServer({ extraArgs: ["-c", conf] });
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
  ({ policy, tokenizer } = await loadCheckpoint(TINY_POLICY));
  format = textFormatOfRecord("dense", tokenizer, "the tiny-policy fixture");
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const promptGroup = (groupId: string, pad = 0): PromptGroup => ({
  ...samplePromptGroup(groupId, 2),
  prompt: "Tell me about Zorvath Ekkal .",
  ...(pad > 0 ? { meta: { pad: "x".repeat(pad) } } : {}),
});

/** Fetches and acks up to `want` items from `queue` (10 s at most), returning their group ids. */
const publishedIds = <A>(queue: WorkQueue<A>, want: number, idOf: (body: A) => string) =>
  Effect.gen(function* () {
    const fetcher = yield* openWorkFetcher(queue);
    const ids: string[] = [];
    const deadline = Date.now() + 10_000;
    while (ids.length < want && Date.now() < deadline)
      for (const item of yield* fetcher.fetch({ max: want })) {
        ids.push(idOf(item.body));
        yield* item.settle(WorkOutcome.done);
      }
    return ids;
  });

/** The next `count` metrics reports' values (10 s at most for each). */
const takeReports = (
  messages: Queue.Dequeue<{ readonly body: { readonly values: Record<string, number> } }>,
  count: number,
) =>
  Effect.gen(function* () {
    const reports: Record<string, number>[] = [];
    while (reports.length < count)
      reports.push((yield* Queue.take(messages).pipe(Effect.timeout("10 seconds"))).body.values);
    return reports;
  });

describe("a rollout group too large to publish", () => {
  it("is dead-lettered at once, alone, with its size and the limit, and counted; the other groups flow", async () => {
    const experiment = freshExperiment("big");
    const config = Either.getOrThrow(
      decodeConfig({
        experiment,
        env: { kind: "factworld", size: "tiny" },
        nats: { url: server.url },
        model: { backend: "wasm" },
        // One group a batch: the big group is sampled alone, as below, and its neighbours in batches of their own.
        rollout: { batch: 1, groupSize: 2, maxNewTokens: 6 },
        rewards: { scoredBy: "reward" },
        runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000 },
      }),
    );
    const header = Buffer.byteLength("NATS/1.0\r\nNats-Msg-Id: g-big\r\n\r\n");

    // The size of g-big's rollout group, as the actor will publish it (sampling is seeded per group and
    // answer, so it samples the same answers): padded so that its envelope is 8 bytes under max_payload —
    // it fits alone, and not with its msgID header.
    const work = makeRolloutWork(config, format, Effect.succeed(policy));
    const envelopeBytes = (pad: number) =>
      Effect.runPromise(
        work
          .rollOut([promptGroup("g-big", pad)], policy, 0, ACTOR)
          .pipe(
            Effect.map(
              ({ rollouts }) =>
                encodeEnvelope(
                  envelope(RolloutGroupMessage, rollouts[0]!, { experiment, sender: ACTOR, id: "g-big" }),
                  Number.POSITIVE_INFINITY,
                ).byteLength,
            ),
          ),
      );
    const base = 100_000; // msgpack's str32 length prefix: the size grows by one byte a character from here
    const pad = base + MAX_PAYLOAD - 8 - (await envelopeBytes(base));
    expect(await envelopeBytes(pad)).toBe(MAX_PAYLOAD - 8);

    const started = Date.now();
    const result = await runWith(
      server.url,
      experiment,
      Effect.gen(function* () {
        const { maxPayload } = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const metrics = yield* subscribe(subjects.metrics(ACTOR), [MetricsEventMessage]);
        // What the learner publishes before anyone samples: the tokenizer, the architecture, version 0.
        yield* publishPolicyTokenizer(tokenizer);
        yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
        yield* putState(LEARNER_PROGRESS_KEY, NO_LEARNER_PROGRESS);
        yield* publishPolicy(0, yield* Effect.promise(() => policy.exportWeights()));
        for (const group of [promptGroup("g-0"), promptGroup("g-big", pad), promptGroup("g-2")])
          yield* publishWork(PROMPTS_QUEUE, group, { msgId: group.groupId });

        const drain = yield* Deferred.make<string>();
        const actor = yield* Effect.fork(runActor({ role: rolloutRole, config, id: ACTOR, drain }));
        const deadLetters = yield* eventually(readDeadLetters(PROMPTS_QUEUE), (records) => records.length > 0, 10_000);
        const deadLetteredAfterMs = Date.now() - started;
        const published = yield* publishedIds(ROLLOUTS_QUEUE, 2, (body) => body.group.groupId);
        // The last batch's report (g-2's) comes after its ack: wait for it.
        const reports = yield* takeReports(metrics.messages, 3);
        yield* Deferred.succeed(drain, "test done");
        yield* Fiber.join(actor);
        return { maxPayload, deadLetters, deadLetteredAfterMs, published, reports };
      }),
    );

    expect(result.maxPayload).toBe(MAX_PAYLOAD);
    // Alone, with the reason: the group's size with its headers, and the limit.
    expect(result.deadLetters.map((record) => record.groupId)).toEqual(["g-big"]);
    const [letter] = result.deadLetters;
    expect(letter!.deliveries).toBe(1);
    expect(letter!.reason).toContain(
      `rejected: its rollout group is ${MAX_PAYLOAD - 8 + header} bytes with its headers, ` +
        `over the ${MAX_PAYLOAD}-byte limit on a message: not published; raise the NATS server's max_payload`,
    );
    // Promptly: not after a minute of retries (nor a redelivery and a second sampling).
    expect(result.deadLetteredAfterMs).toBeLessThan(10_000);
    // The other groups flowed.
    expect(result.published.sort()).toEqual(["g-0", "g-2"]);
    // Counted, once, in every report after it.
    const tooLarge = result.reports.map((values) => values["rollout.tooLarge"]);
    expect(tooLarge).toHaveLength(3);
    expect(tooLarge.at(-1)).toBe(1);
    expect(tooLarge.filter((n) => n === 1)).toHaveLength(2);
  }, 30_000);

  it("reward actor: a rollout group whose scored group is too large is dead-lettered at once, not retried, and counted", async () => {
    const experiment = freshExperiment("bigr");
    const config = Either.getOrThrow(
      decodeConfig({
        experiment,
        env: { kind: "factworld", size: "tiny" },
        nats: { url: server.url },
        rewards: { scoredBy: "reward", modules: [{ name: "format", weight: 1 }] },
        runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000 },
      }),
    );
    // A rollout group that fits (64 bytes under max_payload, its 33 header bytes included), and whose
    // scored group — the same plus its scores — does not.
    const padded = (groupId: string, size: number) => paddedRolloutGroup(experiment, groupId, size, 2, 8);
    const started = Date.now();
    const result = await runWith(
      server.url,
      experiment,
      Effect.gen(function* () {
        const { subjects } = yield* Experiment;
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const metrics = yield* subscribe(subjects.metrics("reward-big"), [MetricsEventMessage]);
        yield* publishWork(ROLLOUTS_QUEUE, sampleRolloutGroup("g-r0", 2, 8), { msgId: "g-r0" });
        yield* publishWork(ROLLOUTS_QUEUE, padded("g-rbig", MAX_PAYLOAD - 64), { msgId: "g-rbig" });
        yield* publishWork(ROLLOUTS_QUEUE, sampleRolloutGroup("g-r2", 2, 8), { msgId: "g-r2" });

        const drain = yield* Deferred.make<string>();
        const actor = yield* Effect.fork(runActor({ role: rewardRole, config, id: "reward-big", drain }));
        const deadLetters = yield* eventually(readDeadLetters(ROLLOUTS_QUEUE), (records) => records.length > 0, 10_000);
        const deadLetteredAfterMs = Date.now() - started;
        const published = yield* publishedIds(SCORED_QUEUE, 2, (body) => body.rollout.group.groupId);
        const reports = yield* takeReports(metrics.messages, 3);
        yield* Deferred.succeed(drain, "test done");
        yield* Fiber.join(actor);
        return { deadLetters, deadLetteredAfterMs, published, reports };
      }),
    );

    expect(result.deadLetters.map((record) => record.groupId)).toEqual(["g-rbig"]);
    const [letter] = result.deadLetters;
    expect(letter!.deliveries).toBe(1); // dead-lettered on its first delivery, not after maxDeliver retries
    expect(letter!.reason).toMatch(
      new RegExp(
        `^rejected: its scored group is \\d+ bytes with its headers, over the ${MAX_PAYLOAD}-byte limit on a message: not published`,
      ),
    );
    expect(result.deadLetteredAfterMs).toBeLessThan(8_000); // the actor's start included
    expect(result.published.sort()).toEqual(["g-r0", "g-r2"]);
    expect(result.reports).toHaveLength(3);
    expect(Math.max(...result.reports.map((values) => values["reward.tooLarge"] ?? 0))).toBe(1);
  }, 30_000);
});
