/**
 * Retrieval-augmented rollouts against a real nats-server: the rollout work asks a retriever actor for
 * each prompt's documents and samples with them before the prompt; a retriever that never answers
 * costs one timeout and the batch is sampled without evidence, counted — never a hang; with no
 * retriever at all the request fails at once, counted the same way.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deferred, Effect, Either, Fiber } from "effect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeConfig, type ExperimentConfig } from "../configs/index.ts";
import { makeEnvironment } from "../envs/index.ts";
import { Experiment, Nats, retrieveSubject } from "../messaging/index.ts";
import { buildRetrievalIndex, initBackend, loadCheckpoint, type Policy, textFormatOfRecord } from "../models/index.ts";
import { freshExperiment, runWith, samplePromptGroup } from "../test/messaging/fixtures.ts";
import { natsEvidence } from "./evidence.ts";
import { retrieverRole } from "./retriever.ts";
import { makeRolloutWork } from "./rollout-work.ts";
import { runActor } from "./runtime.ts";

const natsUrl = inject("natsUrl");
const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");
const dir = await mkdtemp(join(tmpdir(), "factrl-evidence-"));
const index = join(dir, "bm25");
afterAll(() => rm(dir, { recursive: true, force: true }));

const configOf = (experiment: string, timeoutMs: number): ExperimentConfig =>
  Either.getOrThrow(
    decodeConfig({
      experiment,
      nats: { url: natsUrl },
      env: { kind: "factworld", size: "tiny" },
      retrieval: { kind: "bm25", index },
      rollout: { maxNewTokens: 4, retrieval: { k: 2, timeoutMs } },
      rewards: { reference: "knowledge-base" },
      runtime: { heartbeatMs: 200, drainTimeoutMs: 2_000 },
    }),
  );

let policy: Policy;
let format: ReturnType<typeof textFormatOfRecord>;
let prompts: string[];

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
  const env = await makeEnvironment(configOf("x", 1).env);
  await buildRetrievalIndex(env, "bm25", index);
  prompts = env.eval.slice(0, 3).map((p) => p.text);
  const loaded = await loadCheckpoint(TINY_POLICY);
  policy = loaded.policy;
  format = textFormatOfRecord("dense", loaded.tokenizer, "tiny-policy");
}, 60_000);
afterAll(() => policy?.dispose());

const groups = () => prompts.map((prompt, i) => ({ ...samplePromptGroup(`g-${i}`, 2), prompt }));

/** One rollout batch of the three prompts with evidence from NATS, and how long it took. */
const rollOutOverNats = (config: ExperimentConfig) =>
  Effect.gen(function* () {
    const work = makeRolloutWork(
      config,
      format,
      Effect.succeed(policy),
      yield* natsEvidence(config.rollout.retrieval!),
    );
    const started = performance.now();
    const batch = yield* work.rollOut(groups(), policy, 0, "rollout-test");
    return { batch, ms: performance.now() - started };
  });

describe("retrieval-augmented rollouts over NATS", () => {
  it("prepend the retriever actor's documents to each prompt", async () => {
    const experiment = freshExperiment("rag");
    const config = configOf(experiment, 5_000);
    const { batch } = await runWith(
      natsUrl,
      experiment,
      Effect.gen(function* () {
        const drain = yield* Deferred.make<string>();
        const actor = yield* Effect.fork(runActor({ role: retrieverRole, config, id: "retriever-1", drain }));
        // Until the actor serves, a request has no responders: retried until it has.
        let result = yield* rollOutOverNats(config);
        for (let i = 0; i < 100 && result.batch.metrics["rollout.retrieval.missed"] !== 0; i++) {
          yield* Effect.sleep("100 millis");
          result = yield* rollOutOverNats(config);
        }
        yield* Deferred.succeed(drain, "test");
        yield* Fiber.await(actor);
        return result;
      }),
    );
    expect(batch.rollouts).toHaveLength(3);
    expect(batch.metrics["rollout.retrieval.requests"]).toBe(3);
    expect(batch.metrics["rollout.retrieval.missed"]).toBe(0);
    expect(batch.metrics["rollout.retrieval.documents"]).toBeGreaterThanOrEqual(1);
    const plain = groups().map((g) => format.promptTokens(g.prompt).length);
    batch.rollouts.forEach((r, i) => {
      // The documents come first, the prompt (and <sep>) last.
      expect(r.promptTokens.length).toBeGreaterThan(plain[i]!);
      expect(Array.from(r.promptTokens.slice(-plain[i]! + 1))).toEqual(
        Array.from(format.promptTokens(r.group.prompt).slice(1)),
      );
      expect(r.answers).toHaveLength(2);
    });
    expect(batch.metrics["rollout.promptTokens"]).toBeGreaterThan(Math.max(...plain));
  }, 60_000);

  it("go on without evidence when the retriever never answers: one timeout per batch, counted", async () => {
    const experiment = freshExperiment("ragmute");
    const config = configOf(experiment, 300);
    const { batch, ms, heard } = await runWith(
      natsUrl,
      experiment,
      Effect.gen(function* () {
        const { connection } = yield* Nats;
        const { subjects } = yield* Experiment;
        // A retriever that takes every request and answers none.
        let heard = 0;
        const mute = connection.subscribe(retrieveSubject(subjects), { callback: () => void (heard += 1) });
        yield* Effect.promise(() => connection.flush());
        const result = yield* rollOutOverNats(config);
        mute.unsubscribe();
        return { ...result, heard };
      }),
    );
    expect(heard).toBe(3);
    expect(batch.rollouts).toHaveLength(3);
    expect(batch.metrics["rollout.retrieval.missed"]).toBe(3);
    expect(batch.metrics["rollout.retrieval.documents"]).toBe(0);
    // Sampled from the prompts alone.
    batch.rollouts.forEach((r) =>
      expect(Array.from(r.promptTokens)).toEqual(Array.from(format.promptTokens(r.group.prompt))),
    );
    // The three requests waited together, once: about 300 ms, far from a hang.
    expect(batch.metrics["rollout.retrieval.ms"]).toBeGreaterThanOrEqual(290);
    expect(batch.metrics["rollout.retrieval.ms"]).toBeLessThan(3_000);
    expect(ms).toBeLessThan(20_000);
  }, 60_000);

  it("go on without evidence when no retriever runs: no responders, counted", async () => {
    const experiment = freshExperiment("ragnone");
    const { batch } = await runWith(natsUrl, experiment, rollOutOverNats(configOf(experiment, 5_000)));
    expect(batch.rollouts).toHaveLength(3);
    expect(batch.metrics["rollout.retrieval.missed"]).toBe(3);
    // No responders is known at once: nothing waited for the 5 s timeout.
    expect(batch.metrics["rollout.retrieval.ms"]).toBeLessThan(4_000);
  }, 60_000);

  it("refuse to start retrieval-augmented work without an evidence source", () => {
    expect(() => makeRolloutWork(configOf("x", 1), format, Effect.succeed(policy))).toThrow(/needs an evidence source/);
  });
});
