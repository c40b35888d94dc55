/**
 * The retriever role against a real nats-server: two actors over one BM25 index answer
 * `factrl.<exp>.retrieve` as one queue group, `$SRV` finds the endpoint, and a request that is not
 * msgpack, has no query or asks for k ≤ 0 gets an error reply and is counted — the actors keep serving.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Svcm } from "@nats-io/services";
import { Deferred, Effect, Either, Fiber } from "effect";
import { afterAll, describe, expect, inject, it } from "vitest";
import { decodeConfig } from "../configs/index.ts";
import { makeEnvironment } from "../envs/index.ts";
import {
  decodeEnvelope,
  Experiment,
  encodeEnvelope,
  envelope,
  Nats,
  RETRIEVE_REPLIES,
  RetrieveRequestMessage,
  requestMessage,
  retrieveSubject,
} from "../messaging/index.ts";
import { buildRetrievalIndex } from "../models/index.ts";
import { eventually, freshExperiment, runWith } from "../test/messaging/fixtures.ts";
import { retrieverRole } from "./retriever.ts";
import { runActor } from "./runtime.ts";

const natsUrl = inject("natsUrl");
const dir = await mkdtemp(join(tmpdir(), "factrl-retriever-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

const testConfig = (experiment: string, index: string) =>
  Either.getOrThrow(
    decodeConfig({
      experiment,
      nats: { url: natsUrl },
      env: { kind: "factworld", size: "tiny" },
      retrieval: { kind: "bm25", index },
      runtime: { heartbeatMs: 200, drainTimeoutMs: 2_000 },
    }),
  );

describe("retriever role", () => {
  it("serves retrieval as a queue group found by $SRV; bad requests get error replies and are counted", async () => {
    const experiment = freshExperiment("retr");
    const index = join(dir, "bm25");
    const config = testConfig(experiment, index);
    const env = await makeEnvironment(config.env);
    await buildRetrievalIndex(env, "bm25", index);
    const prompt = env.eval[0]!;

    const result = await runWith(
      natsUrl,
      experiment,
      Effect.gen(function* () {
        const { connection } = yield* Nats;
        const { subjects } = yield* Experiment;
        const subject = retrieveSubject(subjects);
        const drain = yield* Deferred.make<string>();
        const actors = yield* Effect.forEach(["retriever-1", "retriever-2"], (id) =>
          Effect.fork(runActor({ role: retrieverRole, config, id, drain })),
        );
        const client = new Svcm(connection as unknown as ConstructorParameters<typeof Svcm>[0]).client();
        const collect = async <A>(iterator: AsyncIterable<A>) => {
          const all: A[] = [];
          for await (const item of iterator) all.push(item);
          return all;
        };
        const infos = yield* eventually(
          Effect.promise(() =>
            client
              .info(subjects.service("retriever"))
              .then(collect)
              // No responders until the actors are up.
              .catch(() => []),
          ),
          (list) => list.filter((i) => i.endpoints.some((e) => e.name === "retrieve")).length === 2,
          20_000,
        );

        const ask = (request: { query: string; k: number; forTraining?: boolean; seed?: number }) =>
          requestMessage(subject, RetrieveRequestMessage, request, RETRIEVE_REPLIES, 5_000);
        const good = yield* ask({ query: prompt.text, k: 3 });
        for (let i = 0; i < 30; i++) yield* ask({ query: env.eval[i % env.eval.length]!.text, k: 2 });

        // Bad input, sent around the client's checks.
        const raw = (bytes: Uint8Array) =>
          Effect.promise(() =>
            connection.request(subject, bytes, { timeout: 5_000 }).then((msg) => ({
              serviceError: msg.headers?.get("Nats-Service-Error") ?? "",
              body: Either.getOrThrow(decodeEnvelope(msg.data, { accept: RETRIEVE_REPLIES })).body,
            })),
          );
        const forged = (body: unknown) =>
          encodeEnvelope({
            ...envelope(RetrieveRequestMessage, { query: "x", k: 1 }, { experiment, sender: "forger" }),
            body,
          });
        const notMsgpack = yield* raw(Uint8Array.of(0xc1, 0x00, 0x01));
        const noQuery = yield* raw(forged({ k: 3 }));
        const zeroK = yield* raw(forged({ query: prompt.text, k: 0 }));
        const negativeK = yield* raw(forged({ query: prompt.text, k: -2 }));
        // Still serving after them.
        const after = yield* ask({ query: prompt.text, k: 1 });

        const stats = yield* Effect.promise(() => client.stats(subjects.service("retriever")).then(collect));
        const endpoints = stats.flatMap((s) => s.endpoints ?? []).filter((e) => e.name === "retrieve");
        yield* Deferred.succeed(drain, "test");
        yield* Effect.forEach(actors, Fiber.await);
        return { infos, good, notMsgpack, noQuery, zeroK, negativeK, after, endpoints, subject };
      }),
    );

    // $SRV.INFO: both actors list the endpoint on the experiment's subject, in one queue group.
    const retrieveEndpoints = result.infos.flatMap((i) => i.endpoints.filter((e) => e.name === "retrieve"));
    expect(retrieveEndpoints.map((e) => e.subject)).toEqual([result.subject, result.subject]);
    expect(new Set(retrieveEndpoints.map((e) => e.queue_group)).size).toBe(1);

    expect(result.good.type).toBe("RetrieveReply");
    const reply = result.good.body as unknown as {
      documents: { id: string; text: string; score: number }[];
      retriever: string;
    };
    expect(reply.retriever).toBe("bm25");
    expect(reply.documents).toHaveLength(3);
    expect(reply.documents[0]!.text).toContain(prompt.focus!.entity);
    expect(result.after.type).toBe("RetrieveReply");

    for (const [bad, pattern] of [
      [result.notMsgpack, /not-msgpack/],
      [result.noQuery, /query/],
      [result.zeroK, /k must be an integer in \[1, 64\]/],
      [result.negativeK, /k must be an integer in \[1, 64\]/],
    ] as const) {
      expect(bad.serviceError).toMatch(/bad retrieval request/);
      expect((bad.body as { error: string }).error).toMatch(pattern);
    }
    // $SRV.STATS: the 36 requests were shared by both actors.
    // Each actor's heartbeat (the STATS data, `factrl status`) counts them as failed, the 32 good ones as processed.
    const counts = result.endpoints.map((e) => e.data as { processed: number; failed: number });
    expect(counts.reduce((n, c) => n + c.failed, 0)).toBe(4);
    expect(counts.reduce((n, c) => n + c.processed, 0)).toBe(32);
    expect(result.endpoints.reduce((n, e) => n + e.num_requests, 0)).toBe(36);
    expect(result.endpoints.every((e) => e.num_requests > 0)).toBe(true);
  }, 60_000);
});
