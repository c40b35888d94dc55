import { join } from "node:path";
import { Deferred, Effect, Either, Exit, Fiber, Queue } from "effect";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { decodeConfig, type ExperimentConfig } from "../configs/index.ts";
import { citSelect, type Environment, ensembleEmbedding, makeEnvironment } from "../envs/index.ts";
import {
  Experiment,
  ensureWorkQueues,
  MetricsEventMessage,
  openWorkFetcher,
  publishPolicy,
  putState,
  subscribe,
  WorkOutcome,
} from "../messaging/index.ts";
import {
  embedTexts,
  initBackend,
  loadCheckpoint,
  type Policy,
  type TextFormat,
  textFormatOfRecord,
} from "../models/index.ts";
import { freshExperiment, runWith } from "../test/messaging/fixtures.ts";
import { citDue, curateByPolicy } from "./cit-curation.ts";
import { curatorRole, promptGroupAt } from "./curator.ts";
import { experimentEnvironment } from "./environment.ts";
import { publishPolicyTokenizer } from "./policy-tokenizer.ts";
import { runActor } from "./runtime.ts";
import {
  LEARNER_PROGRESS_KEY,
  NO_LEARNER_PROGRESS,
  PIPELINE_QUEUES,
  POLICY_ARCHITECTURE_KEY,
  PROMPTS_QUEUE,
} from "./topology.ts";

const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");

let policy: Policy;
let tokenizer: unknown;
let format: TextFormat;

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
  ({ policy, tokenizer } = await loadCheckpoint(TINY_POLICY));
  format = textFormatOfRecord("dense", tokenizer, "the tiny-policy fixture");
});

const citConfig = (cit: Record<string, unknown>, extra: Record<string, unknown> = {}): ExperimentConfig =>
  Either.getOrThrow(
    decodeConfig({
      experiment: "cit",
      env: { kind: "factworld", size: "tiny" },
      curation: { strategy: "cit", checks: "off", cit },
      ...extra,
    }),
  );

/** Each pool prompt's highest cosine similarity to the target's names, computed here from the definition. */
function similaritiesByHand(env: Environment, names: readonly string[], templates: readonly string[]): number[] {
  const entries = names.map((name) =>
    ensembleEmbedding(
      embedTexts(
        policy,
        format,
        templates.map((t) => t.replaceAll("{}", name)),
      ),
    ),
  );
  return embedTexts(
    policy,
    format,
    env.train.map((p) => p.text),
  ).map((item) => Math.max(...entries.map((e) => e.reduce((sum, x, j) => sum + x * item[j]!, 0))));
}

describe("CiT in the RL loop: the selection", () => {
  it("keeps the prompts closest to the target by the policy's embeddings, and hands out only those", async () => {
    const env = await makeEnvironment({ kind: "factworld", size: "tiny" });
    const asked = env.train.find((p) => p.suite === "longfact")!;
    const name = asked.focus!.entity;
    const config = citConfig({
      target: { entities: [name] },
      templates: ["Tell me about {} ."],
      threshold: 0.999,
      minRatio: 0.1,
    });
    expect(() => promptGroupAt(env, config, 0)).toThrow(/before the first selection/);

    const round = curateByPolicy(env, config.curation, policy, format, 7);
    const sims = similaritiesByHand(env, [name], ["Tell me about {} ."]);
    const keptIds = new Set(citSelect(sims, 0.999, 0.1).map((i) => env.train[i]!.id));
    expect(round).toMatchObject({ version: 7, kept: keptIds.size, keptShare: keptIds.size / env.train.length });
    // The prompt that is the template filled with the name has similarity 1: kept. Few others pass 0.999,
    // so the floor holds: the top 10 % by similarity, every one closer than every prompt dropped.
    expect(keptIds.has(asked.id)).toBe(true);
    expect(keptIds.size).toBe(Math.floor(0.1 * env.train.length));
    const keptSims = env.train.flatMap((p, i) => (keptIds.has(p.id) ? [sims[i]!] : []));
    const droppedSims = env.train.flatMap((p, i) => (keptIds.has(p.id) ? [] : [sims[i]!]));
    expect(Math.min(...keptSims)).toBeGreaterThanOrEqual(Math.max(...droppedSims));
    const handedOut = Array.from({ length: 300 }, (_, n) => promptGroupAt(env, config, n).promptId);
    expect(handedOut.every((id) => keptIds.has(id))).toBe(true);
    expect(new Set(handedOut).size).toBe(keptIds.size); // uniform over the kept ones: each shows up in 300 draws
  });

  it("target tail: the kept share and the tail share of what is kept, as reported", async () => {
    const env = await makeEnvironment({ kind: "factworld", size: "tiny" });
    const config = citConfig({ target: "tail", threshold: 0.95, minRatio: 0.3 });
    const round = curateByPolicy(env, config.curation, policy, format, 0);
    const kept = new Set(Array.from({ length: 500 }, (_, n) => promptGroupAt(env, config, n).promptId));
    expect(round.kept).toBeGreaterThanOrEqual(Math.floor(0.3 * env.train.length));
    expect(kept.size).toBe(round.kept);
    const keptPrompts = env.train.filter((p) => kept.has(p.id));
    expect(round.keptTailShare).toBeCloseTo(
      keptPrompts.filter((p) => p.bucket === "tail").length / keptPrompts.length,
      10,
    );
  });

  it("is due before the first selection and at each multiple of `every` (a resumed run re-aligns)", () => {
    expect(citDue(undefined, 0, 10)).toBe(true);
    expect(citDue(0, 9, 10)).toBe(false);
    expect(citDue(0, 10, 10)).toBe(true);
    expect(citDue(13, 19, 10)).toBe(false); // resumed at 13: the next one at 20, as uninterrupted
    expect(citDue(13, 20, 10)).toBe(true);
  });

  it("refuses bad settings before anything starts, naming the path", () => {
    const problem = (cit: Record<string, unknown>) => {
      const decoded = decodeConfig({ experiment: "cit", curation: { strategy: "cit", cit } });
      return Either.isLeft(decoded) ? String(decoded.left) : "accepted";
    };
    expect(problem({ threshold: 1.5 })).toContain("curation.cit.threshold: expected a number in [-1, 1], found 1.5");
    expect(problem({ threshold: -1.01 })).toContain("curation.cit.threshold");
    expect(problem({ minRatio: 0 })).toContain("curation.cit.minRatio: expected a number in (0, 1], found 0");
    expect(problem({ minRatio: 1.2 })).toContain("curation.cit.minRatio");
    expect(problem({ target: { entities: [] } })).toContain("curation.cit.target");
    expect(problem({ target: { entities: [] } })).toContain('found {"entities":[]}');
    expect(problem({ target: "torso" })).toContain("curation.cit.target");
    expect(problem({ templates: ["about NAME"] })).toContain(
      "curation.cit.templates[0]: expected a template with a name placeholder",
    );
    expect(problem({ every: 0 })).toContain("curation.cit.every");
    expect(problem({ threshold: -1, minRatio: 1, target: "head", every: 3 })).toBe("accepted");
  });
});

describe("CiT in the RL loop: the curator actor over NATS", () => {
  it("selects with the policy it follows, hands out only that selection, and re-selects with the newer version after `every` steps", async () => {
    const window = 12;
    const cit = { target: "tail", every: 2, threshold: 0.999, minRatio: 0.25 };
    const config = citConfig(cit, {
      experiment: freshExperiment("cit"),
      nats: { url: inject("natsUrl") },
      curation: { strategy: "cit", checks: "off", maxGroupsInFlight: window, cit },
      runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000 },
    });
    const first = await policy.exportWeights();
    const other = (await loadCheckpoint(TINY_POLICY)).policy;
    for (const v of other.trainableVariables) v.assign(v.mul(-1.5).add(0.05));
    const second = await other.exportWeights();

    // What each version hands out, computed here on an environment of our own (selections are per environment).
    const env = { ...(await Effect.runPromise(experimentEnvironment(config))) };
    const groupsBy = (p: Policy, from: number) => {
      curateByPolicy(env, config.curation, p, format, 0);
      return Array.from({ length: window }, (_, i) => promptGroupAt(env, config, from + i).promptId);
    };
    const expectedFirst = groupsBy(policy, 0);
    const expectedSecond = groupsBy(other, window);
    expect(groupsBy(policy, window)).not.toEqual(expectedSecond); // else the test could not tell the versions apart

    const result = await runWith(
      inject("natsUrl"),
      config.experiment,
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { subjects } = yield* Experiment;
        const metrics = yield* subscribe(subjects.metrics("curator-cit"), [MetricsEventMessage]);
        // What the learner publishes before anyone samples: the tokenizer, the architecture, version 0.
        yield* publishPolicyTokenizer(tokenizer);
        yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
        yield* putState(LEARNER_PROGRESS_KEY, NO_LEARNER_PROGRESS);
        yield* publishPolicy(0, first);
        const drain = yield* Deferred.make<string>();
        const curator = yield* Effect.fork(runActor({ role: curatorRole, config, id: "curator-cit", drain }));

        const prompts = yield* openWorkFetcher(PROMPTS_QUEUE);
        const take = (count: number) =>
          Effect.gen(function* () {
            const got = new Map<string, string>();
            const deadline = Date.now() + 60_000;
            while (got.size < count && Date.now() < deadline)
              for (const item of yield* prompts.fetch({ max: count })) {
                got.set(item.body.groupId, item.body.promptId);
                yield* item.settle(WorkOutcome.done);
              }
            return got;
          });
        const firstGroups = yield* take(window);
        // The learner takes two steps with every group: progress first, then version 2's weights.
        yield* putState(LEARNER_PROGRESS_KEY, { ...NO_LEARNER_PROGRESS, step: 2, policyVersion: 2, consumed: window });
        yield* publishPolicy(2, second);
        const secondGroups = yield* take(window);
        yield* putState(LEARNER_PROGRESS_KEY, {
          ...NO_LEARNER_PROGRESS,
          step: 2,
          policyVersion: 2,
          consumed: 2 * window,
          done: true,
        });
        const exit = yield* Fiber.await(curator);
        const received = yield* Queue.takeAll(metrics.messages);
        return { firstGroups, secondGroups, exit, metrics: [...received].map((m) => m.body.values) };
      }),
    );
    const inOrder = (groups: Map<string, string>, from: number) =>
      Array.from({ length: window }, (_, i) => groups.get(`g${from + i}`));
    expect(inOrder(result.firstGroups, 0)).toEqual(expectedFirst);
    expect(inOrder(result.secondGroups, window)).toEqual(expectedSecond);
    expect(Exit.isSuccess(result.exit)).toBe(true);
    const rounds = result.metrics.filter((v) => v["curation.cit.version"] !== undefined);
    expect(rounds.map((v) => v["curation.cit.version"])).toEqual([0, 2]);
    expect(rounds[0]!["curation.cit.keptShare"]).toBeGreaterThanOrEqual(0.25 - 1 / env.train.length);
    const handedOut = result.metrics.flatMap((v) => (v["curation.handedOut"] === undefined ? [] : [v]));
    expect(handedOut.at(-1)!["curation.handedOut"]).toBe(2 * window);
    const tail = [...expectedFirst, ...expectedSecond].filter(
      (id) => env.train.find((p) => p.id === id)!.bucket === "tail",
    );
    expect(handedOut.at(-1)!["curation.handedOut.tailShare"]).toBeCloseTo(tail.length / (2 * window), 10);
  }, 120_000);
});
