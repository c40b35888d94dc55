import { Writable } from "node:stream";
import { Effect } from "effect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { makeLogger, pinoLoggerLayer } from "../../messaging/index.ts";

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
