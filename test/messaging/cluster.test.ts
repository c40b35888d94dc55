/**
 * A 3-node JetStream cluster (real nats-server processes, `startLocalCluster`) with `replicas: 3`:
 * work, KV state and blobs go through a node that is SIGKILLed mid-stream and restarted later, with
 * the publisher, the worker and a reader each connected to a different node. Nothing acknowledged is
 * lost, no group is delivered into the work twice, and the restarted node catches up.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Effect, Fiber } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROMPTS_QUEUE } from "../../actors/topology.ts";
import {
  consumeWork,
  ensureWorkQueues,
  experimentSubjects,
  getBlob,
  getState,
  type LocalCluster,
  Nats,
  POLICY_KEY,
  publishPolicy,
  publishWork,
  RETAINED_POLICY_VERSIONS,
  startLocalCluster,
  WorkOutcome,
  weightsBlobName,
} from "../../messaging/index.ts";
import { freshExperiment, runWith, samplePromptGroup } from "./fixtures.ts";

let cluster: LocalCluster;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "factrl-cluster-test-"));
  cluster = await startLocalCluster({ nodes: 3, dir });
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await rm(dir, { recursive: true, force: true });
});

const GROUPS = 120;

/**
 * Waits until a restarted node answers for `stream`: a little after it listens, and after the stream
 * has a leader again (an election when the node killed led it).
 */
const streamReady = async (url: string, stream: string) => {
  for (const deadline = Date.now() + 30_000; ; ) {
    const connection = await connect({ servers: url });
    const ready = await jetstreamManager(connection)
      .then((manager) => manager.streams.info(stream))
      .then(
        () => true,
        () => false,
      );
    await connection.close();
    if (ready) return;
    if (Date.now() > deadline) throw new Error(`${url}: ${stream} not ready after 30 s`);
    await new Promise((done) => setTimeout(done, 250));
  }
};
const weights = (version: number) => Uint8Array.from({ length: 700_000 }, (_, i) => (i * 7 + version) % 251);

describe("a 3-node cluster with replicas 3", () => {
  it("keeps work, state and blobs through a node SIGKILLed mid-stream and restarted", async () => {
    const experiment = freshExperiment("cluster");
    const replicated = { replicas: 3 };

    // Set-up through the first node: every stream has three copies, one per node.
    const streamReplicas = await runWith(
      cluster.nodes[0]!.url,
      experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues([PROMPTS_QUEUE]);
        yield* publishPolicy(1, weights(1));
        const { manager } = yield* Nats;
        const info = yield* Effect.promise(() => manager.streams.info(`factrl_${experiment}_prompts`));
        return {
          configured: info.config.num_replicas,
          peers: (info.cluster?.replicas ?? []).length,
          leader: info.cluster?.leader,
        };
      }),
      replicated,
    );
    expect(streamReplicas).toMatchObject({ configured: 3, peers: 2 });
    // The node killed is the work stream's leader (the hardest case: a new leader must be elected);
    // the publisher and the worker are on the two others.
    const victim = cluster.nodes.find((node) => node.name === streamReplicas.leader)!;
    const [n2, n3] = cluster.nodes.filter((node) => node !== victim) as [typeof victim, typeof victim];
    const n1 = victim;

    // The worker on n3 takes every group; the publisher on n2 publishes them while n1 is killed and restarted.
    const received: string[] = [];
    const worker = Effect.runFork(
      Effect.promise(() =>
        runWith(
          n3.url,
          experiment,
          consumeWork(PROMPTS_QUEUE, (item) =>
            Effect.sync(() => {
              received.push(item.body.groupId);
              return WorkOutcome.done;
            }),
          ),
          replicated,
          "worker",
        ),
      ),
    );
    const published = await runWith(
      n2.url,
      experiment,
      Effect.gen(function* () {
        let acked = 0;
        for (let i = 0; i < GROUPS; i++) {
          if (i === GROUPS / 3) {
            yield* Effect.promise(() => n1.kill());
            expect(n1.server()).toBeUndefined();
          }
          if (i === (2 * GROUPS) / 3) yield* Effect.promise(() => n1.start());
          yield* publishWork(PROMPTS_QUEUE, samplePromptGroup(`g${i}`, 4), { msgId: `g${i}` });
          acked += 1;
          if (i === GROUPS / 2) {
            // While n1 is down: the policy moves on, and its weights are written and read through n2.
            yield* publishPolicy(2, weights(2));
          }
          yield* Effect.sleep("20 millis");
        }
        return acked;
      }),
      replicated,
      "publisher",
    );
    expect(published).toBe(GROUPS);

    const deadline = Date.now() + 30_000;
    while (new Set(received).size < GROUPS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await Effect.runPromise(Fiber.interrupt(worker));
    expect(new Set(received).size).toBe(GROUPS);
    // Redelivery after a lost ack is allowed by the protocol (readers de-duplicate by group id); count it.
    const repeats = received.length - new Set(received).size;
    expect(repeats).toBeLessThanOrEqual(GROUPS / 10);

    // The restarted node serves the newest pointer and both weights versions, from its own copy.
    const fromRestarted = await runWith(
      n1.url,
      experiment,
      Effect.gen(function* () {
        const pointer = (yield* getState(POLICY_KEY))?.value;
        const v2 = yield* getBlob(weightsBlobName(2));
        return {
          version: pointer?.version,
          weights: pointer?.weights,
          v2Length: v2.length,
          v2Sum: v2.reduce((a, b) => a + b, 0),
        };
      }),
      replicated,
      "reader",
    );
    const expected = weights(2);
    expect(fromRestarted).toEqual({
      version: 2,
      weights: weightsBlobName(2),
      v2Length: expected.length,
      v2Sum: expected.reduce((a, b) => a + b, 0),
    });
  }, 120_000);

  it("keeps every retained weights version through restarts of each node after older versions were dropped", async () => {
    // nats-server < 2.9.18 replays a filtered purge on restart as "remove everything up to it"
    // (nats-server#4196): with purges for retention, version 0 and the retained versions vanished
    // from a restarted node's copy — and, once that node led the stream, from every reader.
    const experiment = freshExperiment("cluster-retention");
    const replicated = { replicas: 3 };
    const newest = RETAINED_POLICY_VERSIONS + 4;
    await runWith(
      cluster.nodes[0]!.url,
      experiment,
      Effect.gen(function* () {
        for (let version = 0; version <= newest; version++) yield* publishPolicy(version, weights(version));
        yield* publishPolicy(newest, weights(newest)); // a republished version replaces its blob
      }),
      replicated,
    );
    const retained = [0, ...Array.from({ length: RETAINED_POLICY_VERSIONS }, (_, i) => newest - i)];
    const sums = retained.map((version) => weights(version).reduce((a, b) => a + b, 0));
    for (const node of cluster.nodes) {
      await node.kill();
      await node.start();
      await streamReady(node.url, experimentSubjects(experiment).weightsStream);
      const read = await runWith(
        node.url,
        experiment,
        Effect.gen(function* () {
          const found: number[] = [];
          // Several reads, so that every replica is asked at least once.
          for (let round = 0; round < 6; round++) {
            for (const version of retained) {
              found.push((yield* getBlob(weightsBlobName(version))).reduce((a, b) => a + b, 0));
            }
          }
          const dropped = yield* getBlob(weightsBlobName(newest - RETAINED_POLICY_VERSIONS)).pipe(Effect.flip);
          return { found: found.slice(-retained.length), all: found.length, dropped: dropped.kind };
        }),
        replicated,
        `reader-${node.name}`,
      );
      expect(read, `after restarting ${node.name}`).toEqual({
        found: sums,
        all: 6 * retained.length,
        dropped: "not-found",
      });
    }
  }, 120_000);
});
