import { describe, expect, it } from "vitest";
import { linearFit, processTrend } from "./soak-stats.ts";

describe("linearFit", () => {
  it("recovers a line exactly", () => {
    const fit = linearFit([
      [0, 1],
      [1, 3],
      [2, 5],
    ]);
    expect(fit.slope).toBeCloseTo(2, 12);
    expect(fit.intercept).toBeCloseTo(1, 12);
  });

  it("fits noisy points by least squares (worked example)", () => {
    // x̄ = 1.5, ȳ = 2.5; Sxy = (−1.5)(−0.5)+(−0.5)(−1.5)+(0.5)(1.5)+(1.5)(0.5) = 3; Sxx = 5 → slope 0.6, intercept 1.6
    const fit = linearFit([
      [0, 2],
      [1, 1],
      [2, 4],
      [3, 3],
    ]);
    expect(fit.slope).toBeCloseTo(0.6, 12);
    expect(fit.intercept).toBeCloseTo(1.6, 12);
  });

  it("has no slope without two distinct x", () => {
    expect(linearFit([[1, 2]]).slope).toBeNaN();
    expect(
      linearFit([
        [1, 2],
        [1, 3],
      ]).slope,
    ).toBeNaN();
  });
});

describe("processTrend", () => {
  it("fits only the samples after the warm-up", () => {
    const samples = [
      { minute: 0, rssMb: 10, fds: 5 }, // warm-up: the jump to 100 MB is start-up, not a leak
      { minute: 1, rssMb: 100, fds: 20 },
      { minute: 2, rssMb: 101, fds: 21 },
      { minute: 3, rssMb: 102, fds: 20 },
      { minute: 4, rssMb: 103, fds: 22 },
    ];
    const trend = processTrend(samples, 1)!;
    expect(trend.rssSlopeMbPerMin).toBeCloseTo(1, 12);
    expect(trend.rssFirstMb).toBe(100);
    expect(trend.rssLastMb).toBe(103);
    expect(trend.rssMaxMb).toBe(103);
    expect(trend.fdGrowth).toBe(2);
    expect(trend.fdMax).toBe(22);
    expect(trend.samples).toBe(4);
  });

  it("reports nothing with fewer than two steady samples", () => {
    expect(processTrend([{ minute: 5, rssMb: 1, fds: 1 }], 1)).toBeUndefined();
  });
});
