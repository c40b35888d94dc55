import { describe, expect, it } from "vitest";
import { learningRateAt } from "./optimizer.ts";

describe("learning-rate schedule", () => {
  const s = { learningRate: 1, warmupSteps: 10, totalSteps: 110, clipNorm: 0 };
  it("warms up linearly, then decays along a cosine to 10 %", () => {
    expect(learningRateAt(0, s)).toBeCloseTo(0.1);
    expect(learningRateAt(9, s)).toBeCloseTo(1);
    expect(learningRateAt(10, s)).toBeCloseTo(1);
    expect(learningRateAt(60, s)).toBeCloseTo(0.1 + 0.9 * 0.5); // halfway: cos = 0
    expect(learningRateAt(110, s)).toBeCloseTo(0.1);
    expect(learningRateAt(500, s)).toBeCloseTo(0.1);
  });

  it("with decaySteps, a shorter run follows the longer schedule step for step", () => {
    const long = { ...s, totalSteps: 210 };
    const stoppedEarly = { ...s, totalSteps: 110, decaySteps: 210 };
    for (const step of [0, 9, 50, 109]) expect(learningRateAt(step, stoppedEarly)).toBe(learningRateAt(step, long));
  });
});
