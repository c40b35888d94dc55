import { Either } from "effect";
import { describe, expect, it } from "vitest";
import { actorCount, autoRolloutActors } from "./actor-count.ts";
import { decodeConfig } from "./loader.ts";

const actors = (set: Record<string, unknown>, rollout: Record<string, unknown> = {}) =>
  Either.getOrThrow(decodeConfig({ experiment: "counts", actors: set, rollout }));

describe("actor counts sized from the machine", () => {
  it("auto: one core per learner, the rest sampling, at least one rollout actor", () => {
    expect(autoRolloutActors(2, 1)).toBe(1);
    expect(autoRolloutActors(8, 1)).toBe(7);
    expect(autoRolloutActors(1, 1)).toBe(1);
    expect(autoRolloutActors(4, 0)).toBe(4); // the learner runs on another host
  });

  it("is the default, resolved per machine", () => {
    const defaults = actors({});
    expect(defaults.actors.rollout).toBe("auto");
    expect(actorCount(defaults, "rollout", 2)).toBe(1);
    expect(actorCount(defaults, "rollout", 16)).toBe(15);
  });

  it("an explicit count wins, 0 included", () => {
    expect(actorCount(actors({ rollout: 3 }), "rollout", 2)).toBe(3);
    expect(actorCount(actors({ rollout: 0 }), "rollout", 16)).toBe(0);
    expect(actorCount(actors({ reward: 2 }), "reward", 16)).toBe(2);
  });

  it("retrieval-augmented rollouts start a retriever even when actors.retriever is 0", () => {
    expect(actorCount(actors({}), "retriever", 2)).toBe(0);
    expect(actorCount(actors({}, { retrieval: { k: 2 } }), "retriever", 2)).toBe(1);
    expect(actorCount(actors({ retriever: 3 }, { retrieval: { k: 2 } }), "retriever", 2)).toBe(3);
  });

  it("rejects anything else with the field's path", () => {
    const decoded = decodeConfig({ experiment: "counts", actors: { rollout: "many" } });
    expect(Either.isLeft(decoded)).toBe(true);
    if (Either.isLeft(decoded)) expect(decoded.left.problems.join("\n")).toMatch(/actors\.rollout/);
  });
});
