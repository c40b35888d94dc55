/**
 * The wire format is plain msgpack (docs/protocol.md): Python's standard msgpack library, refusing
 * every extension type, reads each message type factrl publishes field for field, and what Python
 * writes decodes to factrl's typed messages.
 */
import { Effect, Either } from "effect";
import { describe, expect, inject, it } from "vitest";
import {
  PIPELINE_MESSAGES,
  PIPELINE_QUEUES,
  PROMPTS_QUEUE,
  PromptGroupMessage,
  ROLLOUTS_QUEUE,
  RolloutGroupMessage,
  SCORED_QUEUE,
  ScoredGroupMessage,
} from "../../actors/topology.ts";
import {
  ControlReplyMessage,
  ControlRequestMessage,
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  ensureWorkQueues,
  envelope,
  HeartbeatMessage,
  type MessageBody,
  type MessageType,
  MetricsEventMessage,
  packWire,
  publishWork,
  RUNTIME_MESSAGES,
  unpackWire,
  type WorkQueue,
} from "../../messaging/index.ts";
import { decodeWithPython, encodeWithPython, jsonView } from "../plain-msgpack.ts";
import {
  Experiment,
  freshExperiment,
  Nats,
  runWith,
  samplePromptGroup,
  sampleRolloutGroup,
  sampleScoredGroup,
} from "./fixtures.ts";

const meta = { experiment: "exp1", sender: "rollout-1", id: "m-1", sentAt: 1_764_000_000_500 };

const TYPES = {
  PromptGroup: PromptGroupMessage,
  RolloutGroup: RolloutGroupMessage,
  ScoredGroup: ScoredGroupMessage,
  MetricsEvent: MetricsEventMessage,
  Heartbeat: HeartbeatMessage,
  ControlRequest: ControlRequestMessage,
  ControlReply: ControlReplyMessage,
};
type TypeName = keyof typeof TYPES;
/** Every message type factrl sends: the first test fails when one has no sample here. */
const EVERY_TYPE: readonly MessageType<unknown>[] = [...RUNTIME_MESSAGES, ...PIPELINE_MESSAGES];
/** Any of them, to decode what Python wrote. */
const accept = { accept: EVERY_TYPE };

/** One of every message type. */
const samples: { readonly [N in TypeName]: MessageBody<(typeof TYPES)[N]> } = {
  PromptGroup: { ...samplePromptGroup("g-1", 8), focus: undefined },
  RolloutGroup: { ...sampleRolloutGroup("g-2", 8, 100), reference: "Zorvath Ekkal is a painter." },
  ScoredGroup: sampleScoredGroup("g-3", 8, 100),
  MetricsEvent: { source: "learner", step: 12, values: { loss: 0.25, rewardMean: -0.5 }, tags: { suite: "train" } },
  // As the runtime sends them: no policy version yet, a drain reply without data.
  Heartbeat: {
    role: "rollout",
    id: "rollout-1",
    host: "h1",
    pid: 4242,
    uptimeMs: 1500,
    processed: 3,
    failed: 0,
    policyVersion: undefined,
    state: "running",
  },
  ControlRequest: { command: "scale", args: { role: "rollout", count: 3 } },
  ControlReply: { ok: true, message: "rollout-1 draining", data: undefined },
};
const names = Object.keys(samples) as TypeName[];
const envelopes = names.map((name) => envelope(TYPES[name] as MessageType<unknown>, samples[name], meta));

describe("the wire format, read and written by Python's msgpack", () => {
  it("has a sample of every message type factrl sends", () => {
    expect([...names].sort()).toEqual(EVERY_TYPE.map((type) => type.name).sort());
    expect(names.map((name) => TYPES[name])).toEqual(expect.arrayContaining([...EVERY_TYPE]));
  });

  it("Python reads every message type factrl publishes, field for field", () => {
    const read = decodeWithPython(envelopes.map((message) => encodeEnvelope(message)));
    expect(read).toEqual(envelopes.map(jsonView));
    // Spelled out for the pipeline's arrays: dtype maps with little-endian data.
    const scored = read[names.indexOf("ScoredGroup")] as {
      version: number;
      body: { rollout: { answers: { tokens: unknown; logProbs: unknown }[] } };
    };
    expect(scored.version).toBe(5);
    const answer = samples.ScoredGroup.rollout.answers[5]!;
    expect(scored.body.rollout.answers[5]!.tokens).toEqual({ $dtype: "int32", $values: Array.from(answer.tokens) });
    expect(scored.body.rollout.answers[5]!.logProbs).toEqual({
      $dtype: "float32",
      $values: Array.from(answer.logProbs),
    });
    // Undefined fields are left out, not sent as an extension.
    expect(read[names.indexOf("PromptGroup")]).toMatchObject({ body: { groupId: "g-1" } });
    expect((read[names.indexOf("PromptGroup")] as { body: object }).body).not.toHaveProperty("focus");
    expect((read[names.indexOf("ControlReply")] as { body: object }).body).toEqual({
      ok: true,
      message: "rollout-1 draining",
    });
  });

  it("what Python writes decodes to factrl's messages, typed arrays and 64-bit ints included", () => {
    // Python packs epoch milliseconds as 64-bit ints and arrays as dtype maps of its own making.
    const written = encodeWithPython(envelopes.map(jsonView));
    const decoded = written.map((bytes) => decodeEnvelope(bytes, accept));
    for (const [i, result] of decoded.entries()) {
      if (Either.isLeft(result)) throw new Error(`${names[i]}: ${result.left.message}`);
      expect(result.right).toEqual(envelopes[i]);
    }
    const rollout = decoded[names.indexOf("RolloutGroup")] as Either.Right<
      never,
      Envelope<MessageBody<typeof RolloutGroupMessage>>
    >;
    expect(rollout.right.body.promptTokens).toBeInstanceOf(Int32Array);
    expect(rollout.right.body.answers[7]!.logProbs).toBeInstanceOf(Float32Array);
    expect(rollout.right.body.answers[7]!.logProbs).toEqual(samples.RolloutGroup.answers[7]!.logProbs);
    expect(rollout.right.sentAt).toBe(1_764_000_000_500);
  });

  it("every dtype reaches Python as documented, and bytes (a picture) as bin", () => {
    const arrays = {
      i8: Int8Array.of(-128, 127),
      u16: Uint16Array.of(65535, 1),
      i16: Int16Array.of(-32768, 2),
      i32: Int32Array.of(-2147483648, 2147483647),
      u32: Uint32Array.of(4294967295, 0),
      i64: BigInt64Array.of(-(2n ** 40n), 7n),
      u64: BigUint64Array.of(2n ** 40n, 0n),
      f32: Float32Array.of(-1 / 3, 1e30),
      f64: Float64Array.of(Math.PI, -0.5),
      picture: Uint8Array.of(0x89, 0x50, 0x4e, 0x47),
      empty: new Int32Array(0),
    };
    const [read] = decodeWithPython([packWire(arrays)]);
    expect(read).toEqual(jsonView(arrays));
    expect((read as Record<string, unknown>).picture).toEqual({ $bytes: [0x89, 0x50, 0x4e, 0x47] });
    // …and back from Python's bytes, each to its own typed array.
    const [back] = encodeWithPython([read]);
    const restored = unpackWire(back!) as typeof arrays;
    expect(restored).toEqual(arrays);
    expect(restored.i64).toBeInstanceOf(BigInt64Array);
    expect(restored.picture).toBeInstanceOf(Uint8Array);
  });

  it("the work queues store plain msgpack: Python reads what the pipeline publishes", async () => {
    /** The bytes the queue's stream stores for `body`. */
    const stored = <A>(queue: WorkQueue<A>, body: A) =>
      Effect.gen(function* () {
        const { manager } = yield* Nats;
        const { subjects } = yield* Experiment;
        const ack = yield* publishWork(queue, body, { msgId: `g-${queue.name}` });
        const message = yield* Effect.promise(() =>
          manager.streams.getMessage(subjects.stream(queue.name), { seq: ack.seq }),
        );
        return message!.data;
      });
    const bytes = await runWith(
      inject("natsUrl"),
      freshExperiment(),
      Effect.gen(function* () {
        yield* ensureWorkQueues(PIPELINE_QUEUES);
        return [
          yield* stored(PROMPTS_QUEUE, samples.PromptGroup),
          yield* stored(ROLLOUTS_QUEUE, samples.RolloutGroup),
          yield* stored(SCORED_QUEUE, samples.ScoredGroup),
        ];
      }),
      {},
      "rollout-7",
    );
    const read = decodeWithPython(bytes) as { type: string; version: number; sender: string; body: unknown }[];
    expect(read.map(({ type, version, sender }) => ({ type, version, sender }))).toEqual([
      { type: "PromptGroup", version: 3, sender: "rollout-7" },
      { type: "RolloutGroup", version: 5, sender: "rollout-7" },
      { type: "ScoredGroup", version: 5, sender: "rollout-7" },
    ]);
    expect(read.map((message) => message.body)).toEqual(
      [samples.PromptGroup, samples.RolloutGroup, samples.ScoredGroup].map(jsonView),
    );
  });
});

describe("typed arrays on the wire", () => {
  const reject = (body: unknown, type: MessageType<unknown> = RolloutGroupMessage) => {
    const result = decodeEnvelope(packWire({ ...envelope(type, {}, meta), body }), accept);
    if (Either.isRight(result)) throw new Error("expected a rejection");
    return result.left;
  };
  const wireRollout = () => {
    const rollout = sampleRolloutGroup("g", 2, 4) as unknown as Record<string, unknown>;
    return { ...rollout, answers: (rollout.answers as object[]).map((answer) => ({ ...answer })) } as {
      answers: Record<string, unknown>[];
    };
  };

  it("names the field of a dtype map that makes no array: ragged bytes, an unknown dtype", () => {
    const ragged = wireRollout();
    ragged.answers[1]!.tokens = { dtype: "int32", data: new Uint8Array(7) };
    expect(reject(ragged)).toMatchObject({
      kind: "bad-body",
      reason:
        'RolloutGroup v5: ["answers"][1]["tokens"]: int32 data of 7 bytes is not a whole number of 4-byte elements',
    });
    const unknown = wireRollout();
    unknown.answers[0]!.logProbs = { dtype: "float33", data: new Uint8Array(8) };
    expect(reject(unknown).reason).toMatch(
      /^RolloutGroup v5: \["answers"\]\[0\]\["logProbs"\]: unknown dtype "float33"/,
    );
    // A dtype map of the wrong type is the schema's to reject.
    const wrongType = wireRollout();
    wrongType.answers[0]!.tokens = { dtype: "float32", data: new Uint8Array(16) };
    expect(reject(wrongType).reason).toMatch(/\["answers"\]\[0\]\["tokens"\]: Expected Int32Array/);
  });

  it("rejects hostile nesting with a clear error, never a stack overflow", () => {
    /** A ControlRequest whose args hold `depth` lists one inside the other, as bytes (msgpackr would not pack it). */
    const nestedRequest = (depth: number) => {
      const bytes = Buffer.from(packWire({ ...envelope(ControlRequestMessage, {} as never, meta), body: "@body@" }));
      const marker = Buffer.from(packWire("@body@"));
      const at = bytes.indexOf(marker);
      const lists = Buffer.alloc(depth, 0x91); // a one-item list, `depth` times, around a nil
      const body = [Uint8Array.of(0x82), packWire("command"), packWire("x"), packWire("args"), Uint8Array.of(0x81)];
      return Buffer.concat([
        bytes.subarray(0, at),
        ...body,
        packWire("n"),
        lists,
        Uint8Array.of(0xc0),
        bytes.subarray(at + marker.length),
      ]);
    };
    expect(decodeEnvelope(nestedRequest(1_000), accept)).toMatchObject({
      left: {
        kind: "bad-body",
        reason: expect.stringMatching(
          /^ControlRequest v1: \["args"\]\["n"\](\[0\]){6}…\(56 levels more\): nested more than 64 maps or lists deep$/,
        ),
      },
    });
    // Somewhere up to 20,000 levels msgpackr's own recursion gives up (where depends on the stack);
    // below that the walk must not be the one to overflow: every depth is a DecodeError, none throws.
    const kinds = new Set<string>();
    for (let depth = 500; depth <= 20_000; depth += 250) {
      const result = decodeEnvelope(nestedRequest(depth), accept);
      if (Either.isRight(result)) throw new Error(`accepted ${depth} levels`);
      kinds.add(result.left.kind);
    }
    expect([...kinds].sort()).toEqual(["bad-body", "not-msgpack"]);
  });

  it("decoded arrays own their memory: changing the received bytes changes nothing", () => {
    const bytes = encodeEnvelope(envelope(RolloutGroupMessage, sampleRolloutGroup("g", 2, 4), meta));
    const decoded = decodeEnvelope(bytes, { accept: [RolloutGroupMessage] });
    if (Either.isLeft(decoded)) throw decoded.left;
    const before = Array.from(decoded.right.body.answers[0]!.tokens);
    bytes.fill(0);
    expect(Array.from(decoded.right.body.answers[0]!.tokens)).toEqual(before);
  });
});
