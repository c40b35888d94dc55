import { describe, expect, it } from "vitest";
import { generatePrompts } from "../factworld/prompts.ts";
import { generateWorld } from "../factworld/world.ts";
import { CurationArgumentError, tailShare } from "./balance.ts";
import { worldMetadata } from "./metadata.ts";
import { BalancedStream, balancePool, balanceThreshold, entryCounts, matchPool } from "./pool.ts";

describe("matching and counting a pool", () => {
  it("matches every text against the metadata and counts matches per entry", () => {
    const matches = matchPool(["a red hat .", "red", "nothing here", "hat and red hat"], ["red", "hat", "blue"]);
    expect(matches).toEqual([[0, 1], [0], [], [0, 1]]);
    // an item counts once per entry, however often it names it
    expect(entryCounts(matches, 3)).toEqual([3, 2, 0]);
    expect(() => matchPool(["x"], [])).toThrow(/^entries: the metadata list is empty/);
  });

  it("picks t over the entries that matched: zeros hold no share and would pull t to 0", () => {
    // matched counts 1 2 3 4 90 (total 100): running shares .01 .03 .06 .10 1 → closest to .05 is 3
    expect(balanceThreshold([0, 1, 0, 2, 3, 4, 90], 0.05)).toBe(3);
    expect(balanceThreshold([0, 0], 0.5)).toBeUndefined();
  });
});

describe("balancePool (offline MetaCLIP)", () => {
  const entries = ["head", "tail1", "tail2"];
  const texts = [...Array.from({ length: 100 }, () => "head"), "tail1", "tail2", "head and tail1", "no entry"];

  it("keeps every tail item, caps the head near t, drops what matches nothing", () => {
    // counts head 101, tail1 2, tail2 1: running shares 1/104, 3/104, 1 → closest to 0.02 is 2 (t)
    const result = balancePool(texts, entries, { seed: 5, tailShare: 0.02 });
    expect(result.counts).toEqual([101, 2, 1]);
    expect(result.threshold).toBe(2);
    expect(result.unmatched).toBe(1);
    expect(result.kept).toEqual(expect.arrayContaining([100, 101, 102]));
    expect(result.kept).not.toContain(103);
    const heads = result.kept.filter((i) => i < 100).length;
    expect(heads).toBeLessThanOrEqual(8); // expected 100 · 2/101 ≈ 2
  });

  it("is a function of the seed: same seed same items, another seed other head items", () => {
    const a = balancePool(texts, entries, { seed: 5, tailShare: 0.5 });
    expect(balancePool(texts, entries, { seed: 5, tailShare: 0.5 }).kept).toEqual(a.kept);
    expect(balancePool(texts, entries, { seed: 6, tailShare: 0.5 }).kept).not.toEqual(a.kept);
  });

  it("names the bad argument", () => {
    expect(() => balancePool(texts, entries, { seed: 1, tailShare: 1.5 })).toThrow(/^tailShare: 1.5/);
    expect(() => balancePool(texts, entries, { seed: 0.5, tailShare: 0.5 })).toThrow(/^seed: 0.5/);
    expect(() => balancePool(texts, [], { seed: 1, tailShare: 0.5 })).toThrow(CurationArgumentError);
  });
});

describe("BalancedStream (online MetaCLIP)", () => {
  const world = generateWorld({ size: "default" });
  const entries = worldMetadata(world);
  const train = generatePrompts(world).filter((p) => p.split === "train");
  // A prompt log: each prompt asked 1 + round(2000 · popularity) times, so head entities own most of it.
  const log = train.flatMap((p) =>
    Array.from({ length: 1 + Math.round(2000 * world.entities[p.focus.entityId]!.popularity) }, () => p),
  );
  const logMatches = matchPool(
    log.map((p) => p.text),
    entries,
  );

  const handedOut = (stream: { at(n: number): number }, n: number) => Array.from({ length: n }, (_, i) => stream.at(i));
  const bucketShare = (indices: readonly number[], bucket: string) =>
    indices.filter((i) => log[i]!.bucket === bucket).length / indices.length;

  it("item n is a function of the seed and n: a new stream asked for n replays to the same items", () => {
    const first = new BalancedStream(logMatches, entries.length, { seed: 3, tailShare: 0.3 });
    const items = handedOut(first, 600);
    const rebuilt = new BalancedStream(logMatches, entries.length, { seed: 3, tailShare: 0.3 });
    expect(rebuilt.at(599)).toBe(items[599]); // straight to the cursor: replays 0..598 first
    expect(handedOut(rebuilt, 600)).toEqual(items);
    expect(rebuilt.handedOutCounts()).toEqual(
      entryCounts(
        items.map((i) => logMatches[i]!),
        entries.length,
      ),
    );
    expect(handedOut(new BalancedStream(logMatches, entries.length, { seed: 4, tailShare: 0.3 }), 600)).not.toEqual(
      items,
    );
  });

  it("hands the tail of a head-heavy pool more prompts than uniform sampling, and raises the tail's share of matches", () => {
    const n = 2000;
    const uniform = new BalancedStream(logMatches, entries.length, { seed: 1, tailShare: 1 }); // t = max: keeps all
    const balanced = new BalancedStream(logMatches, entries.length, { seed: 1, tailShare: 0.3 });
    const u = handedOut(uniform, n);
    const b = handedOut(balanced, n);
    // uniform mirrors the pool: about a quarter tail, half head
    expect(bucketShare(u, "tail")).toBeLessThan(0.3);
    expect(bucketShare(u, "head")).toBeGreaterThan(0.45);
    expect(bucketShare(b, "tail")).toBeGreaterThan(bucketShare(u, "tail") + 0.1);
    expect(bucketShare(b, "head")).toBeLessThan(bucketShare(u, "head") - 0.15);
    // MetaCLIP's measure: the entries in uniform's tail (count under its t) hold a larger share of the matches
    const counts = uniform.handedOutCounts();
    const t = balanceThreshold(counts, 0.3)!;
    const uniformTail = counts.flatMap((c, e) => (c > 0 && c < t ? [e] : []));
    const shareOf = (c: readonly number[]) => uniformTail.reduce((a, e) => a + c[e]!, 0) / c.reduce((a, b) => a + b, 0);
    expect(tailShare(counts, t)).toBeCloseTo(shareOf(counts), 12);
    expect(shareOf(balanced.handedOutCounts())).toBeGreaterThan(shareOf(counts) + 0.1);
  });

  it("leaves a pool that is already flat about as it is (FactWorld's generated suites: one prompt per entity)", () => {
    const matches = matchPool(
      train.map((p) => p.text),
      entries,
    );
    const stream = new BalancedStream(matches, entries.length, { seed: 1, tailShare: 0.3 });
    const items = handedOut(stream, 2000);
    const poolTail = train.filter((p) => p.bucket === "tail").length / train.length;
    const tail = items.filter((i) => train[i]!.bucket === "tail").length / items.length;
    expect(Math.abs(tail - poolTail)).toBeLessThan(0.04);
  });

  it("never hands out an item that matches nothing, and names bad arguments", () => {
    const stream = new BalancedStream([[], [0], []], 1, { seed: 1, tailShare: 0.5 });
    expect(new Set(handedOut(stream, 20))).toEqual(new Set([1]));
    expect(() => new BalancedStream([[], []], 1, { seed: 1, tailShare: 0.5 })).toThrow(/^matches: no item/);
    expect(() => new BalancedStream([[2]], 1, { seed: 1, tailShare: 0.5 })).toThrow(/^matches: matches\[0\]/);
    expect(() => new BalancedStream([[0]], 0, { seed: 1, tailShare: 0.5 })).toThrow(/^entryCount/);
    expect(() => new BalancedStream([[0]], 1, { seed: 1, tailShare: -0.1 })).toThrow(/^tailShare/);
    expect(() => stream.at(-1)).toThrow(/^sequence: -1/);
  });
});

describe("worldMetadata", () => {
  it("is every entity name, then every literal attribute value once", () => {
    const world = generateWorld({ size: "tiny" });
    const entries = worldMetadata(world);
    expect(entries.slice(0, world.entities.length)).toEqual(world.entities.map((e) => e.name));
    expect(new Set(entries).size).toBe(entries.length);
    expect(entries.some((e) => /^\d{4}$/.test(e))).toBe(true); // years are attribute values too
    const literal = world.entities.flatMap((e) => e.facts.filter((f) => f.objectId === undefined).map((f) => f.object));
    expect(new Set(entries.slice(world.entities.length))).toEqual(new Set(literal));
  });
});
