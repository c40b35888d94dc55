/**
 * The fast check may only say "valid" when Effect's decoder agrees. We mutate valid messages of every
 * type in every field (delete it, or replace it by values of the wrong kind) and compare.
 */
import { Either, Schema } from "effect";
import { describe, expect, it } from "vitest";
import { PIPELINE_MESSAGES } from "../../actors/topology.ts";
import { compileCheck } from "../../messaging/fast-check.ts";
import { RUNTIME_MESSAGES } from "../../messaging/index.ts";
import { samplePromptGroup, sampleRolloutGroup, sampleScoredGroup } from "./fixtures.ts";

/** Every message type factrl sends: a type without a sample here fails below. */
const TYPES = [...RUNTIME_MESSAGES, ...PIPELINE_MESSAGES];

const samples: Record<string, unknown> = {
  PromptGroup: samplePromptGroup(),
  RolloutGroup: sampleRolloutGroup("g", 3, 5),
  ScoredGroup: sampleScoredGroup("g", 2, 4),
  MetricsEvent: { source: "learner", step: 3, values: { loss: 0.5 }, tags: { split: "train" } },
  Heartbeat: { role: "rollout", id: "1", host: "h", pid: 9, uptimeMs: 5, processed: 1, failed: 0, state: "running" },
  ControlRequest: { command: "scale", args: { n: 3 } },
  ControlReply: { ok: true, message: "done", data: { n: 3 } },
};

const WRONG: unknown[] = [
  undefined,
  null,
  "x",
  -1,
  1.5,
  Number.NaN,
  true,
  [],
  {},
  new Int32Array(2),
  new Float32Array(5),
];

/** Every value obtained by breaking one field somewhere inside `value`. */
function* mutations(value: unknown, depth = 0): Generator<unknown> {
  if (depth > 4 || value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return;
  const entries = Object.entries(value as Record<string, unknown>);
  for (const [key, field] of entries) {
    const copy = (replacement: unknown, drop = false) => {
      if (Array.isArray(value)) {
        const next = [...value];
        if (drop) next.splice(Number(key), 1);
        else next[Number(key)] = replacement;
        return next;
      }
      const next: Record<string, unknown> = { ...(value as Record<string, unknown>) };
      if (drop) delete next[key];
      else next[key] = replacement;
      return next;
    };
    yield copy(undefined, true);
    for (const wrong of WRONG) yield copy(wrong);
    for (const inner of mutations(field, depth + 1)) yield copy(inner);
  }
}

describe("fast check", () => {
  it.each(TYPES.map((type) => [type.name, type] as const))("%s: compiles and accepts a valid message", (name, type) => {
    const check = compileCheck(type.schema.ast);
    expect(check).toBeDefined();
    expect(check?.(samples[name])).toBe(true);
  });

  it.each(TYPES.map((type) => [type.name, type] as const))("%s: never accepts what Effect rejects", (name, type) => {
    const schema = type.schema as Schema.Schema<unknown>;
    const check = compileCheck(schema.ast)!;
    const decode = Schema.decodeUnknownEither(schema);
    let accepted = 0;
    let rejected = 0;
    const disagreements: unknown[] = [];
    for (const candidate of mutations(samples[name])) {
      const fast = check(candidate);
      const effect = Either.isRight(decode(candidate));
      if (fast && !effect) disagreements.push(candidate);
      if (fast) accepted += 1;
      else rejected += 1;
    }
    expect(disagreements).toEqual([]);
    expect(rejected).toBeGreaterThan(10); // the mutations do break things
    expect(accepted).toBeGreaterThan(0); // and some stay valid (optional fields, unknown args)
  });
});
