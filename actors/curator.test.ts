import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deferred, Effect, Either, Exit, Fiber, Layer } from "effect";
import { pack } from "msgpackr";
import { describe, expect, inject, it } from "vitest";
import { decodeConfig, type ExperimentConfig } from "../configs/index.ts";
import { makeEnvironment } from "../envs/index.ts";
import {
  connectNats,
  deadLetterCount,
  Experiment,
  ensureWorkQueues,
  envelope,
  experimentSubjects,
  getState,
  Nats,
  openWorkFetcher,
  WorkOutcome,
  type WorkQueue,
} from "../messaging/index.ts";
import { addDeadLetteredGroups, curatorRole, groupSequence, promptGroupAt, uniformPrompt } from "./curator.ts";
import { checkTrainingPool } from "./prompt-choice.ts";
import { runActor } from "./runtime.ts";
import { CURATOR_CURSOR_KEY, PIPELINE_QUEUES, PromptGroupMessage } from "./topology.ts";

const natsUrl = inject("natsUrl");

describe("curator prompts", () => {
  const configWith = (curation: Record<string, unknown>, size: "tiny" | "default" = "tiny") =>
    Either.getOrThrow(decodeConfig({ experiment: "strategy", env: { kind: "factworld", size }, curation }));

  it("picks each group's prompt by curation.strategy (uniform), the same for the same seed and sequence", async () => {
    const config = configWith({ strategy: "uniform", checks: "off" });
    const env = await makeEnvironment(config.env);
    const ids = Array.from({ length: 50 }, (_, n) => promptGroupAt(env, config, n).promptId);
    expect(ids).toEqual(Array.from({ length: 50 }, (_, n) => uniformPrompt(env.train, config.seed, n).id));
    expect(new Set(ids).size).toBeGreaterThan(40);
  });

  it("refuses a strategy that does not exist, and a tail share outside [0, 1], before anything starts", () => {
    const problem = (curation: Record<string, unknown>) => {
      const decoded = decodeConfig({ experiment: "strategy", curation });
      return Either.isLeft(decoded) ? String(decoded.left) : "accepted";
    };
    expect(problem({ strategy: "popular" })).toContain(
      'curation.strategy: expected "uniform" | "balanced" | "cit", found "popular"',
    );
    expect(problem({ tailShare: 1.5 })).toContain("curation.tailShare: expected a number in [0, 1], found 1.5");
    expect(problem({ checks: "strict" })).toContain("curation.checks:");
    expect(problem({ strategy: "balanced" })).toBe("accepted");
  });

  it("balanced: the same seed and cursor give the same prompts, also for a curator that starts over at its cursor", async () => {
    const config = configWith({ strategy: "balanced" }, "default");
    const env = await makeEnvironment(config.env);
    const ids = Array.from({ length: 300 }, (_, n) => promptGroupAt(env, config, n).promptId);
    // A restarted curator (a new process: a new environment object) asked straight for group 299 replays 0..298.
    const restarted = { ...env };
    expect(promptGroupAt(restarted, config, 299).promptId).toBe(ids[299]);
    expect(Array.from({ length: 300 }, (_, n) => promptGroupAt(restarted, config, n).promptId)).toEqual(ids);
    const reseeded = { ...config, seed: config.seed + 1 };
    expect(Array.from({ length: 300 }, (_, n) => promptGroupAt(env, reseeded, n).promptId)).not.toEqual(ids);
  });

  it("balanced hands the tail of a head-heavy prompt pool more groups than uniform does", async () => {
    const base = await makeEnvironment(configWith({}, "default").env);
    const world = base.knowledge!;
    // A prompt log: each training prompt asked 1 + round(2000 · popularity) times (head entities own most of it).
    const popularity = new Map(world.entities.map((e) => [e.name, e.popularity]));
    const log = base.train.flatMap((p) =>
      Array.from({ length: 1 + Math.round(2000 * popularity.get(p.focus!.entity)!) }, (_, k) => ({
        ...p,
        id: `${p.id}#${k}`,
      })),
    );
    const source = { kind: "prompt-log", train: log, knowledge: world };
    const tailShareOf = (strategy: string) => {
      const config = configWith({ strategy, checks: "off" }, "default");
      const groups = Array.from({ length: 1500 }, (_, n) => promptGroupAt(source, config, n));
      return groups.filter((g) => g.meta.bucket === "tail").length / groups.length;
    };
    const uniform = tailShareOf("uniform");
    const balanced = tailShareOf("balanced");
    expect(uniform).toBeLessThan(0.3);
    expect(balanced).toBeGreaterThan(uniform + 0.1);
  });

  it("checks: report hands rejected prompts out and lists them; enforce never hands them out", async () => {
    const dir = mkdtempSync(join(tmpdir(), "factrl-checks-"));
    const report = { ...configWith({ checks: "report" }), output: { ...configWith({ checks: "report" }).output, dir } };
    const env = await makeEnvironment(report.env);
    const values = await Effect.runPromise(checkTrainingPool(report, env));
    const listed = readFileSync(join(dir, "strategy", "rejected-prompts.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(values["curation.rejected.ambiguous"]).toBe(listed.length);
    expect(values["curation.pool"]).toBe(env.train.length);
    expect(listed[0]).toMatchObject({ reason: "ambiguous", suite: expect.any(String), text: expect.any(String) });
    const rejected = new Set(listed.map((l) => l.id));
    const handedOut = (config: ExperimentConfig) =>
      Array.from({ length: 400 }, (_, n) => promptGroupAt(env, config, n).promptId);
    expect(handedOut(report).some((id) => rejected.has(id))).toBe(true);
    const enforce = { ...report, curation: { ...report.curation, checks: "enforce" as const } };
    expect(handedOut(enforce).some((id) => rejected.has(id))).toBe(false);
    expect(await Effect.runPromise(checkTrainingPool(enforce, env))).toMatchObject({
      "curation.pool": env.train.length - listed.length,
    });
  });
});

describe("curator credits", () => {
  it("counts a dead-lettered group once, and only a group it issued", () => {
    expect([groupSequence("g0"), groupSequence("g12"), groupSequence("g012"), groupSequence("x1")]).toEqual([
      0,
      12,
      undefined,
      undefined,
    ]);
    const settled = new Set<string>();
    addDeadLetteredGroups(settled, ["g1", "g1", "g5", "g6", "g99", "junk", "g-1"], 6);
    expect([...settled].sort()).toEqual(["g1", "g5"]);
  });

  it("garbage dead-lettered on the three queues returns no credits: the in-flight window holds", async () => {
    const window = 6;
    const config: ExperimentConfig = Either.getOrThrow(
      decodeConfig({
        experiment: `curator-${process.pid}-${Date.now().toString(36)}`,
        nats: { url: natsUrl },
        curation: { maxGroupsInFlight: window },
        runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000 },
      }),
    );
    const client = Layer.merge(
      Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "curator-test" })),
      Layer.succeed(Experiment, { subjects: experimentSubjects(config.experiment), sender: "test" }),
    );
    const program = Effect.gen(function* () {
      yield* ensureWorkQueues(PIPELINE_QUEUES);
      const { jetstream } = yield* Nats;
      const { subjects } = yield* Experiment;
      const published = Effect.map(getState(CURATOR_CURSOR_KEY), (entry) => entry?.value.published ?? 0);
      const drain = yield* Deferred.make<string>();
      const curator = yield* Effect.fork(runActor({ role: curatorRole, config, id: "curator-t", drain }));
      while ((yield* published) < window) yield* Effect.sleep("50 millis");

      // Garbage on every queue: random bytes, bodies that name no group, a group never issued, and
      // (many times) a group that was issued and is dead-lettered for real below.
      const bodyNaming = (queue: WorkQueue<unknown>, groupId: string) =>
        queue.name === "prompts"
          ? { groupId }
          : queue.name === "rollouts"
            ? { group: { groupId } }
            : { rollout: { group: { groupId } } };
      let garbage = 0;
      for (const queue of PIPELINE_QUEUES) {
        const send = (bytes: Uint8Array) =>
          Effect.promise(() => jetstream.publish(subjects.work(queue.name), bytes)).pipe(
            Effect.tap(() => {
              garbage += 1;
            }),
          );
        for (let i = 0; i < 10; i++) yield* send(Uint8Array.from({ length: 40 + i }, (_, j) => (j * 31 + i) % 256));
        for (const groupId of ["g0", "g0", "g0", "g999999", "x3"]) {
          const forged = envelope(PromptGroupMessage, bodyNaming(queue, groupId) as never, {
            experiment: config.experiment,
            sender: "forger",
          });
          yield* send(pack(forged));
        }
      }

      // Readers of the three queues: garbage is dead-lettered on receipt; g0 is rejected for real (one
      // credit); the other real groups are handed back for much later, so they stay in flight.
      const readers = yield* Effect.forEach(PIPELINE_QUEUES, (queue) =>
        Effect.fork(
          Effect.gen(function* () {
            const fetcher = yield* openWorkFetcher(queue);
            for (;;) {
              for (const item of yield* fetcher.fetch({ max: 20 })) {
                const real = queue.name === "prompts" ? (item.body as { groupId: string }).groupId : "";
                yield* item.settle(
                  real === "g0" ? WorkOutcome.reject("unusable prompt") : WorkOutcome.retry("later", 600_000),
                );
              }
            }
          }),
        ),
      );
      const deadLetters = Effect.forEach(PIPELINE_QUEUES, deadLetterCount).pipe(
        Effect.map((counts) => counts.reduce((a, b) => a + b, 0)),
      );
      const deadline = Date.now() + 20_000;
      while ((yield* deadLetters) < garbage + 1 && Date.now() < deadline) yield* Effect.sleep("100 millis");
      yield* Effect.sleep("5 seconds"); // two of the curator's recounts
      const result = { deadLettered: yield* deadLetters, published: yield* published };
      for (const reader of readers) yield* Fiber.interrupt(reader);
      yield* Deferred.succeed(drain, "test");
      expect(Exit.isSuccess(yield* Fiber.await(curator))).toBe(true);
      return result;
    });
    const result = await Effect.runPromise(Effect.scoped(Effect.provide(program, client)));
    expect(result.deadLettered).toBe(3 * 15 + 1);
    // One credit came back (g0, dead-lettered for real and named 9 more times by garbage): one more group.
    expect(result.published).toBe(window + 1);
  }, 60_000);
});
