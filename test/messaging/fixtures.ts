/** Realistic sample messages and a test harness for the messaging tests and benchmarks. */
import { Effect, Layer, type Scope } from "effect";
// The pipeline's messages are realistic samples of what the work queues carry; topology.ts loads no roles.
import {
  type Answer,
  type PromptGroup,
  type RolloutGroup,
  RolloutGroupMessage,
  type ScoredGroup,
} from "../../actors/topology.ts";
import {
  type ConnectionOptions,
  Experiment,
  ExperimentLive,
  encodeEnvelope,
  envelope,
  Nats,
  NatsLive,
} from "../../messaging/index.ts";

let counter = 0;
/** A fresh experiment id per test, so tests sharing one server never see each other's streams. */
export const freshExperiment = (prefix = "t"): string =>
  `${prefix}${process.pid}x${Date.now().toString(36)}x${counter++}`;

export function samplePromptGroup(groupId = "g-1", groupSize = 8): PromptGroup {
  return {
    groupId,
    promptId: "p-42",
    suite: "factworld-train",
    prompt: "Tell me everything you know about Zorvath Ekkal.",
    focus: "Zorvath Ekkal",
    meta: { popularity: "tail", rank: 812 },
    groupSize,
    createdAt: 1_764_000_000_000,
  };
}

export function sampleAnswer(tokens = 96, seed = 1): Answer {
  return {
    tokens: Int32Array.from({ length: tokens }, (_, i) => (i * 131 + seed) % 5000),
    logProbs: Float32Array.from({ length: tokens }, (_, i) => -((i + seed) % 17) / 7),
    text: "<think>Zorvath was born in Quell.</think> Zorvath Ekkal is a painter born in Quell in 1907.".padEnd(
      tokens * 4,
      " and more",
    ),
    finishReason: "stop",
  };
}

export function sampleRolloutGroup(groupId = "g-1", answers = 8, tokens = 96): RolloutGroup {
  return {
    group: samplePromptGroup(groupId, answers),
    promptTokens: Int32Array.from({ length: 24 }, (_, i) => (i * 37) % 5000),
    answers: Array.from({ length: answers }, (_, i) => sampleAnswer(tokens, i)),
    policyVersion: 3,
    timings: { startedAt: 1_764_000_000_100, finishedAt: 1_764_000_001_900 },
    actor: "rollout-1",
  };
}

/**
 * A sample rollout group padded (in its prompt group's meta) so that its envelope, as `publishWork`
 * sends it with msgID `groupId`, is exactly `bytes` long: for tests at the edge of max_payload.
 */
export function paddedRolloutGroup(
  experiment: string,
  groupId: string,
  bytes: number,
  answers = 8,
  tokens = 96,
): RolloutGroup {
  const sample = sampleRolloutGroup(groupId, answers, tokens);
  const sized = (pad: number) => ({ ...sample, group: { ...sample.group, meta: { pad: "x".repeat(pad) } } });
  const bytesOf = (pad: number) =>
    encodeEnvelope(
      envelope(RolloutGroupMessage, sized(pad), { experiment, sender: "tester", id: groupId }),
      Number.POSITIVE_INFINITY,
    ).byteLength;
  const base = 100_000; // msgpack's str32 length prefix: the size grows by one byte a character from here
  const group = sized(base + bytes - bytesOf(base));
  if (bytesOf(base + bytes - bytesOf(base)) !== bytes) throw new Error(`cannot pad ${groupId} to ${bytes} bytes`);
  return group;
}

export function sampleScoredGroup(groupId = "g-1", answers = 8, tokens = 96): ScoredGroup {
  const rollout = sampleRolloutGroup(groupId, answers, tokens);
  return {
    rollout,
    scores: rollout.answers.map((_, i) => ({
      reward: 0.5 + i / 10,
      components: { precision: 0.8, detail: Math.log(1 + i), relevance: 0.5 },
      failures: i === 0 ? [{ module: "relevance", kind: "timeout", message: "judge took > 10 s" }] : [],
    })),
    scorer: "reward-1",
    scoredAt: 1_764_000_002_000,
  };
}

/** Re-runs `probe` until `done` holds for its value (acks are asynchronous) or `timeoutMs` pass; returns the last value. */
export const eventually = <A, E, R>(probe: Effect.Effect<A, E, R>, done: (value: A) => boolean, timeoutMs = 5_000) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMs;
    let value = yield* probe;
    while (!done(value) && Date.now() < deadline) {
      yield* Effect.sleep("50 millis");
      value = yield* probe;
    }
    return value;
  });

/** Runs `program` with a connection to `servers` and an experiment context, closing both afterwards. */
export function runWith<A, E>(
  servers: string,
  experiment: string,
  program: Effect.Effect<A, E, Nats | Experiment | Scope.Scope>,
  options: Partial<ConnectionOptions> = {},
  sender = "tester",
): Promise<A> {
  const layer = Layer.merge(NatsLive({ servers, ...options }), ExperimentLive(experiment, sender));
  return Effect.runPromise(program.pipe(Effect.scoped, Effect.provide(layer)));
}

export { Experiment, Nats };
