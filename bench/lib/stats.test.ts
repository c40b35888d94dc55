import { describe, expect, it } from "vitest";
import { median } from "./stats.ts";

describe("median", () => {
  it("is the middle value of an odd count, the mean of the middle two of an even one, NaN of none", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([1.34, 1.46])).toBeCloseTo(1.4, 12);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });
  it("does not reorder its input", () => {
    const values = [3, 1, 2];
    median(values);
    expect(values).toEqual([3, 1, 2]);
  });
});
