import { describe, expect, it } from "vitest";
import { hardSplit } from "./hard-split.ts";

describe("hardSplit (FACTORY's model-in-the-loop hard split)", () => {
  const prompts = [
    { id: "a", precisions: [1, 1] }, // mean 1
    { id: "b", precisions: [0.5, 0] }, // .25
    { id: "c", precisions: [] }, // no claim: never ranked
    { id: "d", precisions: [0.25] }, // .25, ties with b: by id
    { id: "e", precisions: [0.75, 0.25] }, // .5
  ];

  it("keeps round(share · n) prompts with the least precise answers, least precise first, ties by id", () => {
    expect(hardSplit(prompts, 0.4)).toEqual(["b", "d"]); // round(0.4 · 5) = 2
    expect(hardSplit(prompts, 0.6)).toEqual(["b", "d", "e"]);
    expect(hardSplit(prompts, 0)).toEqual([]);
    // all of them: the unranked one is still not hard
    expect(hardSplit(prompts, 1)).toEqual(["b", "d", "e", "a"]);
  });

  it("names the bad argument", () => {
    expect(() => hardSplit(prompts, 1.2)).toThrow(/^share: 1.2/);
    expect(() => hardSplit([{ id: "x", precisions: [0.5, 2] }], 0.5)).toThrow(
      /^prompts: prompts\[0\]\.precisions\[1\] is 2/,
    );
  });
});
