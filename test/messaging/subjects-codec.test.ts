import { headers } from "@nats-io/transport-node";
import { Either, Schema } from "effect";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  PIPELINE_MESSAGES,
  PromptGroupMessage,
  RolloutGroupMessage,
  ScoredGroupMessage,
} from "../../actors/topology.ts";
import {
  decodeEnvelope,
  defineMessage,
  encodeEnvelope,
  envelope,
  experimentSubjects,
  HeartbeatMessage,
  headerBytes,
  InvalidNameError,
  MessageTooLargeError,
  type MessageType,
  MetricsEventMessage,
  payloadRoom,
  RUNTIME_MESSAGES,
  validateExperimentId,
} from "../../messaging/index.ts";
import { samplePromptGroup, sampleRolloutGroup, sampleScoredGroup } from "./fixtures.ts";

const meta = { experiment: "exp1", sender: "tester" };
const rawPackr = new Packr({ useRecords: false, moreTypes: true });

describe("subjects", () => {
  it("names every subject and JetStream name of an experiment", () => {
    const s = experimentSubjects("grpo-7_b");
    expect(s.work("prompts")).toBe("factrl.grpo-7_b.prompts");
    expect(s.deadLetter("rollouts")).toBe("factrl.grpo-7_b.deadletter.rollouts");
    expect(s.metrics("learner")).toBe("factrl.grpo-7_b.metrics.learner");
    expect(s.heartbeat("rollout", "3")).toBe("factrl.grpo-7_b.heartbeat.rollout.3");
    expect(s.control("rollout")).toBe("factrl.grpo-7_b.control.rollout");
    expect(s.control("rollout", "3")).toBe("factrl.grpo-7_b.control.rollout.3");
    expect(s.allMetrics).toBe("factrl.grpo-7_b.metrics.>");
    expect(s.stream("scored")).toBe("factrl_grpo-7_b_scored");
    expect(s.deadLetterStream).toBe("factrl_grpo-7_b_deadletter");
    expect(s.weightsStream).toBe("factrl_grpo-7_b_weights");
    expect(s.blobs).toBe("factrl.grpo-7_b.blobs");
    expect(s.stateBucket).toBe("factrl_grpo-7_b_state");
    for (const name of [s.stream("prompts"), s.weightsStream, s.stateBucket, s.consumer("rollouts")]) {
      expect(name).toMatch(/^[A-Za-z0-9_-]+$/);
    }
  });

  it.each([
    ["a.b", /dots/],
    ["a*", /wildcards/],
    ["a>", /wildcards/],
    ["a b", /whitespace/],
    ["a/b", /slashes/],
    ["", /non-empty/],
    ["é", /only letters/],
    ["x".repeat(65), /at most 64/],
  ])("rejects the experiment id %j with a reason", (id, reason) => {
    expect(() => validateExperimentId(id)).toThrow(InvalidNameError);
    expect(() => validateExperimentId(id)).toThrow(reason);
  });

  it("validates roles and ids inside subjects too", () => {
    expect(() => experimentSubjects("ok").heartbeat("roll.out", "1")).toThrow(/invalid role "roll.out"/);
  });
});

describe("codec", () => {
  it("round-trips a scored group with typed arrays intact", () => {
    const body = sampleScoredGroup("g-9");
    const bytes = encodeEnvelope(envelope(ScoredGroupMessage, body, { ...meta, id: "m1", sentAt: 5 }));
    const decoded = decodeEnvelope(bytes, { accept: [ScoredGroupMessage] });
    expect(Either.isRight(decoded)).toBe(true);
    if (Either.isLeft(decoded)) return;
    expect(decoded.right).toMatchObject({
      type: "ScoredGroup",
      version: 5,
      id: "m1",
      sentAt: 5,
      sender: "tester",
    });
    const answer = decoded.right.body.rollout.answers[3];
    expect(answer?.tokens).toBeInstanceOf(Int32Array);
    expect(answer?.logProbs).toBeInstanceOf(Float32Array);
    expect(Array.from(answer?.logProbs ?? [])).toEqual(Array.from(body.rollout.answers[3]?.logProbs ?? []));
    expect(decoded.right.body.scores[0]?.failures[0]?.kind).toBe("timeout");
  });

  it("gives every message a unique id by default", () => {
    const a = envelope(MetricsEventMessage, { source: "x", values: {}, tags: {} }, meta);
    const b = envelope(MetricsEventMessage, { source: "x", values: {}, tags: {} }, meta);
    expect(a.id).not.toBe(b.id);
    expect(a).toMatchObject({ type: "MetricsEvent", version: 1 });
  });

  /** A receiver taking every message type factrl sends, unless told otherwise. */
  const reject = (bytes: Uint8Array, options: { accept?: readonly MessageType<unknown>[] } = {}) => {
    const result = decodeEnvelope(bytes, { accept: options.accept ?? [...RUNTIME_MESSAGES, ...PIPELINE_MESSAGES] });
    if (Either.isRight(result)) throw new Error("expected a rejection");
    return result.left;
  };

  it("says why it rejects each kind of bad input", () => {
    expect(reject(new Uint8Array([0xc1, 0xff, 0x00])).kind).toBe("not-msgpack");
    expect(reject(rawPackr.pack({ hello: "world" }))).toMatchObject({ kind: "bad-envelope" });
    const good = envelope(HeartbeatMessage, heartbeat(), meta);
    expect(reject(rawPackr.pack({ ...good, type: "Nope" }))).toMatchObject({
      kind: "unexpected-type",
      reason: expect.stringMatching(/^got Nope, expected MetricsEvent or Heartbeat or .* or ScoredGroup$/),
    });
    // The type comes from the message: quoted at most a few hundred characters into the reason.
    expect(reject(rawPackr.pack({ ...good, type: "N".repeat(10_000) })).reason.length).toBeLessThan(400);
    expect(reject(rawPackr.pack({ ...good, version: 2 })).reason).toBe(
      "Heartbeat version 2 is not supported (this build reads version 1)",
    );
    expect(reject(rawPackr.pack(good), { accept: [MetricsEventMessage] })).toMatchObject({
      kind: "unexpected-type",
      reason: "got Heartbeat, expected MetricsEvent",
    });
    const wrongShape = reject(rawPackr.pack({ ...good, body: { ...good.body, pid: "12", state: "dancing" } }));
    expect(wrongShape.kind).toBe("bad-body");
    expect(wrongShape.reason).toMatch(/\["pid"\]/);
    expect(wrongShape.reason).toMatch(/\["state"\]/);
    expect(reject(new Uint8Array(2_000_000)).kind).toBe("too-large");
  });

  it("decodes a message type defined anywhere, in the versions its receiver takes", () => {
    const NoteV1 = defineMessage({ name: "Note", version: 1, schema: Schema.Struct({ text: Schema.String }) });
    const NoteV2 = defineMessage({
      name: "Note",
      version: 2,
      schema: Schema.Struct({ text: Schema.String, at: Schema.Number }),
    });
    const v1 = encodeEnvelope(envelope(NoteV1, { text: "hi" }, meta));
    expect(decodeEnvelope(v1, { accept: [NoteV2, NoteV1] })).toMatchObject({
      right: { type: "Note", version: 1, body: { text: "hi" } },
    });
    expect(reject(v1, { accept: [NoteV2] })).toMatchObject({
      kind: "unknown-version",
      reason: "Note version 1 is not supported (this build reads version 2)",
    });
    // Each version's body is checked against its own schema.
    const v2WithoutTime = rawPackr.pack({ ...envelope(NoteV1, { text: "hi" }, meta), version: 2 });
    expect(reject(v2WithoutTime, { accept: [NoteV1, NoteV2] }).reason).toMatch(/^Note v2: \["at"\]: is missing/);
  });

  it("rejects number arrays where typed arrays belong, and mismatched lengths", () => {
    const rollout = sampleRolloutGroup("g", 2, 4);
    const asNumbers = { ...rollout, answers: rollout.answers.map((a) => ({ ...a, tokens: Array.from(a.tokens) })) };
    expect(reject(rawPackr.pack(envelope(RolloutGroupMessage, asNumbers as never, meta))).reason).toMatch(/Int32Array/);
    const short = { ...rollout, answers: [rollout.answers[0]!] };
    expect(reject(rawPackr.pack(envelope(RolloutGroupMessage, short, meta))).reason).toMatch(
      /expected groupSize=2 answers, got 1/,
    );
    const ragged = { ...rollout, answers: rollout.answers.map((a) => ({ ...a, logProbs: new Float32Array(3) })) };
    expect(reject(rawPackr.pack(envelope(RolloutGroupMessage, ragged, meta))).reason).toMatch(/same length/);
  });

  it("carries a prompt's picture as bytes, and rejects a picture of the wrong size naming the prompt", () => {
    const pixels = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => i * 7);
    const group = { ...samplePromptGroup("g-pic"), picture: { width: 4, height: 2, pixels } };
    const decoded = decodeEnvelope(encodeEnvelope(envelope(PromptGroupMessage, group, meta)), {
      accept: [PromptGroupMessage],
    });
    if (Either.isLeft(decoded)) throw new Error(decoded.left.reason);
    const picture = decoded.right.body.picture!;
    expect(picture.pixels).toBeInstanceOf(Uint8Array);
    expect([picture.width, picture.height, ...picture.pixels]).toEqual([4, 2, ...pixels]);
    const short = { ...group, picture: { width: 4, height: 3, pixels } };
    expect(reject(rawPackr.pack(envelope(PromptGroupMessage, short, meta))).reason).toMatch(
      /prompt p-42: its 4×3 picture has 24 bytes of pixels, expected 36/,
    );
    const empty = { ...group, picture: { width: 0, height: 0, pixels: new Uint8Array(0) } };
    expect(reject(rawPackr.pack(envelope(PromptGroupMessage, empty, meta))).reason).toMatch(
      /prompt p-42: its picture is empty \(0×0\)/,
    );
  });

  it("refuses to encode an oversize message, saying how big it is", () => {
    const big = sampleRolloutGroup("g", 8, 50_000);
    expect(() => encodeEnvelope(envelope(RolloutGroupMessage, big, meta))).toThrow(MessageTooLargeError);
    expect(() => encodeEnvelope(envelope(RolloutGroupMessage, big, meta))).toThrow(/over the 1048576-byte limit/);
  });

  it("counts the headers a message is published with, byte for byte as the client sends them", () => {
    const none = headers();
    const msgId = headers();
    msgId.set("Nats-Msg-Id", "g-17");
    const many = headers();
    many.set("Nats-Msg-Id", "dl-factrl_x_scored-4");
    many.set("Factrl-Reason", "rejected: naïve — 3 × too big"); // multi-byte characters count as their bytes
    many.append("Factrl-Reason", "twice");
    const sent = (h: typeof none) => (h as unknown as { encode(): Uint8Array }).encode().byteLength;
    expect(headerBytes(undefined)).toBe(0);
    expect(headerBytes(none)).toBe(sent(none));
    expect(headerBytes(msgId)).toBe("NATS/1.0\r\nNats-Msg-Id: g-17\r\n\r\n".length);
    expect(headerBytes(msgId)).toBe(sent(msgId));
    expect(headerBytes(many)).toBe(sent(many));
    expect(payloadRoom(1_000, msgId)).toBe(1_000 - 31);

    // An envelope that fits the limit alone is refused with the headers it would carry, which are named.
    const message = envelope(RolloutGroupMessage, sampleRolloutGroup("g-17"), meta);
    const size = encodeEnvelope(message).byteLength;
    expect(encodeEnvelope(message, size, undefined).byteLength).toBe(size);
    expect(encodeEnvelope(message, size + 31, msgId).byteLength).toBe(size);
    const error = (() => {
      try {
        encodeEnvelope(message, size + 30, msgId);
      } catch (caught) {
        return caught;
      }
    })() as MessageTooLargeError;
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect(error).toMatchObject({ bytes: size + 31, maxBytes: size + 30, headerBytes: 31 });
    expect(error.message).toMatch(/of envelope and 31 of NATS headers, which the server counts too/);
  });
});

function heartbeat() {
  return {
    role: "rollout",
    id: "3",
    host: "h",
    pid: 12,
    uptimeMs: 10,
    processed: 4,
    failed: 0,
    state: "running" as const,
  };
}
