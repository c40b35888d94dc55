import { Writable } from "node:stream";
import { Effect, Either } from "effect";
import { Packr } from "msgpackr";
import { pino } from "pino";
import { describe, expect, inject, it } from "vitest";
import { PIPELINE_QUEUES, SCORED_QUEUE, ScoredGroupMessage } from "../../actors/topology.ts";
import {
  boundLogValue,
  createLogger,
  DecodeError,
  decodeEnvelope,
  ensureWorkQueues,
  envelope,
  makeLogger,
  openWorkFetcher,
  pendingWork,
  pinoLoggerLayer,
} from "../../messaging/index.ts";
import { Experiment, eventually, freshExperiment, Nats, runWith, sampleScoredGroup } from "./fixtures.ts";

/** A writable collecting the raw lines written to it. */
const lineSink = () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(line);
      done();
    },
  });
  return { lines, sink };
};

/** A scored group whose `rollout.policyVersion` (a number) carries a 900 KB string: untrusted input at its worst. */
const poisonedScoredGroup = () => {
  const group = sampleScoredGroup("g-poison", 2, 4);
  const body = { ...group, rollout: { ...group.rollout, policyVersion: "x".repeat(900_000) } };
  return new Packr({ useRecords: false, moreTypes: true }).pack(
    envelope(ScoredGroupMessage, body as never, { experiment: "e", sender: "forger" }),
  );
};

describe("logging", () => {
  it("routes Effect.log* through pino with annotations, spans and causes as fields", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
        done();
      },
    });
    const logger = pino({ level: "debug" }, sink).child({ experiment: "e1", role: "rollout" });
    await Effect.runPromise(
      Effect.gen(function* () {
        yield* Effect.logInfo("sampled group", 3);
        yield* Effect.logDebug("detail");
        yield* Effect.logError("failed").pipe(Effect.withSpan("step"));
        yield* Effect.fail(new Error("boom")).pipe(
          Effect.catchAllCause((cause) => Effect.logWarning("recovered", cause)),
        );
      }).pipe(Effect.annotateLogs({ group: "g-1" }), Effect.provide(pinoLoggerLayer(logger))),
    );
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [30, "sampled group 3"],
      [20, "detail"],
      [50, "failed"],
      [40, "recovered"],
    ]);
    expect(lines[0]).toMatchObject({ experiment: "e1", role: "rollout", group: "g-1" });
    expect(String(lines[3]?.cause)).toContain("boom");
  });

  it("makes child loggers carrying their bindings", () => {
    const child = makeLogger({ experiment: "e2", role: "learner", id: "0" });
    expect(child.bindings()).toMatchObject({ experiment: "e2", role: "learner", id: "0" });
  });
});

describe("bounded log lines (untrusted input in messages)", () => {
  it("a decode failure names the wrong field and quotes at most a few hundred characters of it", () => {
    const decoded = decodeEnvelope(poisonedScoredGroup(), { accept: [ScoredGroupMessage] });
    if (Either.isRight(decoded)) throw new Error("expected a rejection");
    expect(decoded.left.kind).toBe("bad-body");
    expect(decoded.left.reason).toMatch(
      /^ScoredGroup v\d+: \["rollout"\]\["policyVersion"\]: Expected number, actual "xxx/,
    );
    expect(decoded.left.reason).toMatch(/… \(8\d{5} more characters\)$/);
    expect(decoded.left.reason.length).toBeLessThan(400);
  });

  it("the factrl logger cuts long strings, arrays, objects, nesting, errors and messages, and leaves normal values alone", () => {
    const { lines, sink } = lineSink();
    const huge = "y".repeat(900_000);
    let deep: Record<string, unknown> = { bottom: true };
    for (let i = 0; i < 20; i++) deep = { deeper: deep };
    createLogger(sink).warn(
      {
        subject: "factrl.e.scored",
        reason: huge,
        ids: Array.from({ length: 100_000 }, (_, i) => i),
        tokens: new Int32Array(100_000),
        meta: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])),
        deep,
        err: new DecodeError({ kind: "bad-body", reason: huge }),
      },
      huge,
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThan(12_000);
    const line = JSON.parse(lines[0]!);
    expect(line.subject).toBe("factrl.e.scored");
    expect(line.reason).toBe(`${"y".repeat(2_000)}… (898000 more characters)`);
    expect(line.msg).toBe(line.reason);
    expect(line.ids).toHaveLength(33);
    expect(line.ids.at(-1)).toBe("… (99968 more items)");
    expect(line.tokens).toBe("Int32Array of 100000 elements");
    expect(line.meta["…"]).toBe("9968 more keys");
    expect(JSON.stringify(line.deep)).toMatch(/"\[object\]"/);
    expect(line.err).toMatchObject({ type: "DecodeError", kind: "bad-body", reason: line.reason });
    expect(line.err.message).toBe(`bad-body: ${"y".repeat(1_990)}… (898010 more characters)`);

    // Every normal line: nothing copied.
    const normal = { queue: "scored", seq: 7, ids: [1, 2, 3], nested: { reason: "rejected: no claims" } };
    expect(boundLogValue(normal)).toBe(normal);
  });

  it("a work queue dead-letters a message with a 900 KB wrong-typed field in one short line naming the queue and field", async () => {
    const { lines, sink } = lineSink();
    const pending = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        const { jetstream } = yield* Nats;
        const { subjects } = yield* Experiment;
        yield* Effect.promise(() => jetstream.publish(subjects.work("scored"), poisonedScoredGroup()));
        const fetcher = yield* openWorkFetcher(SCORED_QUEUE);
        expect(yield* fetcher.fetch({ max: 1 })).toEqual([]);
        return yield* eventually(pendingWork(SCORED_QUEUE), (n) => n === 0);
      }),
      { logger: createLogger(sink) },
    );
    expect(pending).toBe(0);
    const deadLettered = lines.filter((line) => line.includes("work item dead-lettered"));
    expect(deadLettered).toHaveLength(1);
    expect(deadLettered[0]!.length).toBeLessThan(1_000);
    expect(JSON.parse(deadLettered[0]!)).toMatchObject({
      queue: "scored",
      reason: expect.stringMatching(/\["rollout"\]\["policyVersion"\]: Expected number.*more characters/),
    });
  });
});
