/**
 * Patching and hashing against the reference implementation. The cases in reference-cases.json are
 * outputs of facebookresearch/blt's own functions (bytelatent/data/patcher.py and
 * bytelatent/model/blt.py, named in the file's "source"), run under PyTorch on one sequence each.
 * A few are repeated inline below with the reasoning, so the quirks read without the file.
 */
import { describe, expect, it } from "vitest";
import { mulberry32 } from "../random.ts";
import { hashNgramIds } from "./hash.ts";
import { entropyPatchLengths, spacePatchLengths, splitLongPatches, staticPatchLengths } from "./patcher.ts";
import reference from "./reference-cases.json" with { type: "json" };
import { encodeBytes } from "./tokens.ts";

const T = 1.335442066192627; // the reference's default threshold (PatcherArgs.threshold)
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("entropy patching (reference cases)", () => {
  it.each(reference.entropy.map((c) => [c.note, c] as const))("%s", (_note, c) => {
    const lengths = entropyPatchLengths(c.entropies, {
      threshold: c.threshold,
      monotonic: c.monotonic,
      ...(c.tadd === null ? {} : { thresholdAdd: c.tadd }),
      includeNextToken: c.inc,
      ...(c.maxlen === null ? {} : { maxPatchLength: c.maxlen }),
    });
    expect(lengths).toEqual(c.expected);
    expect(sum(lengths)).toBe(c.entropies.length + (c.inc ? 1 : 0));
  });
});

describe("entropy patching (worked)", () => {
  // find_entropy_patch_start_ids: starts [0, 1] always; position p ≥ 2 starts when H[p−1] > T.
  const H = [0.5, 2.0, 0.1, 3.0, T, 0.2];
  it("global: H[1] and H[3] exceed T (p = 2, 4); H[4] = T does not (strict >)", () => {
    expect(entropyPatchLengths(H, { threshold: T, includeNextToken: true })).toEqual([1, 1, 2, 3]);
    // Without the next token the last patch ends at the sequence end.
    expect(entropyPatchLengths(H, { threshold: T, includeNextToken: false })).toEqual([1, 1, 2, 2]);
  });
  it("a high last entropy opens a patch holding only the next token", () => {
    expect(entropyPatchLengths([0.1, 0.1, 0.1, 5], { threshold: T, includeNextToken: true })).toEqual([1, 3, 1]);
  });
  it("monotonic: p = 2 always starts, then rises above the bound", () => {
    // rises: H2−H1 = 1.5 (p=3), H3−H2 = −1, H4−H3 = 0.5 (p=5), H5−H4 = 1.5 (p=6), H6−H5 = 0.1, H7−H6 < 0
    const M = [1.0, 1.5, 3.0, 2.0, 2.5, 4.0, 4.1, 0.5];
    expect(entropyPatchLengths(M, { threshold: 0.4, monotonic: true, includeNextToken: true })).toEqual([
      1, 1, 1, 2, 1, 3,
    ]);
  });
  it("global + monotonic ignores a qualifying rise at position 3", () => {
    // H[2] = 5 rises by 5 > 0.4 and exceeds 1, yet p = 3 never starts; p = 5 (H[4] = 0) fails; p = 6 starts.
    const lengths = entropyPatchLengths([0, 0, 5, 5, 0, 9], {
      threshold: 1,
      thresholdAdd: 0.4,
      includeNextToken: true,
    });
    expect(lengths).toEqual([1, 1, 4, 1]);
  });
  it("rejects non-finite entropies and thresholds, and an empty sequence without the next token", () => {
    expect(() => entropyPatchLengths([0, Number.NaN], { threshold: 1, includeNextToken: true })).toThrow(
      /entropy 1 is NaN/,
    );
    expect(() => entropyPatchLengths([0], { threshold: Number.POSITIVE_INFINITY, includeNextToken: true })).toThrow(
      /threshold/,
    );
    expect(() => entropyPatchLengths([], { threshold: 1, includeNextToken: false })).toThrow(/empty/);
    expect(() => entropyPatchLengths([0, 0], { threshold: 1, includeNextToken: true, maxPatchLength: 0 })).toThrow(
      /maxPatchLength/,
    );
  });
});

describe("space patching", () => {
  it.each(reference.space.map((c) => [c.note, c.inc, c] as const))("%s (next token: %s)", (_note, _inc, c) => {
    const lengths = spacePatchLengths(c.tokens, {
      includeNextToken: c.inc,
      ...(c.maxlen === null ? {} : { maxPatchLength: c.maxlen }),
    });
    expect(lengths).toEqual(c.expected);
    expect(sum(lengths)).toBe(c.tokens.length + (c.inc ? 1 : 0));
  });
  it("worked: BOS | Hello, | ␣world! | ␣␣ok — only the first space-like byte of a run ends a patch", () => {
    // "," ends "Hello,"; the space after it is the second of a run, so it opens " world!"; "!" ends
    // that; both following spaces are again a run after "!", so they stay with "ok".
    const tokens = encodeBytes("Hello, world!  ok", { bos: true });
    expect(spacePatchLengths(tokens, { includeNextToken: false })).toEqual([1, 6, 7, 4]);
  });
  it("rejects an empty sequence and out-of-vocabulary tokens", () => {
    expect(() => spacePatchLengths([], { includeNextToken: true })).toThrow(/empty/);
    expect(() => spacePatchLengths([1, 260], { includeNextToken: true })).toThrow(/token 1 is 260/);
  });
});

describe("static patching and long-patch splitting", () => {
  it.each(reference.static.map((c) => [c.length, c.patchSize, c.inc, c] as const))(
    "length %i, patch size %i, next token %s",
    (_l, _p, _i, c) => {
      expect(staticPatchLengths(c.length, c.patchSize, { includeNextToken: c.inc })).toEqual(c.expected);
    },
  );
  it("split_large_numbers: 10 by 4 → 4, 4, 2; an exact multiple leaves no zero", () => {
    expect(splitLongPatches([1, 10, 8, 3], 4)).toEqual([1, 4, 4, 2, 4, 4, 3]);
  });
  it("rejects a non-integer patch size (the reference would silently truncate 4.5 to 4)", () => {
    expect(() => staticPatchLengths(10, 4.5, { includeNextToken: false })).toThrow(/patchSize/);
  });
});

describe("hashed n-gram ids", () => {
  it.each(reference.hash.map((c) => [c.note, c.n, c.hashIndex, c] as const))(
    "%s (n=%i, hash %i)",
    (_note, _n, _h, c) => {
      expect(hashNgramIds(c.tokens, c.n, c.buckets, c.hashIndex)).toEqual(c.expected);
    },
  );
  it("worked: the 3-gram at position 0 is only the token itself, padded by zeros, times prime⁰ … ²", () => {
    // window [0, 0, 1] → 1 · 1000000007² = 1000000014000000049 → mod 30000 = 49
    expect(hashNgramIds([1], 3, 30000)).toEqual([49]);
    expect(Number(1000000007n ** 2n % 30000n)).toBe(49);
  });
  it("agrees with BigInt signed 64-bit arithmetic on random inputs", () => {
    const next = mulberry32(12345);
    const primes = [1000000007n, 5915587277n, 1500450271n];
    for (let trial = 0; trial < 40; trial++) {
      const tokens = Array.from({ length: 20 }, () => Math.floor(next() * 260));
      const n = 1 + Math.floor(next() * 8);
      const buckets = 1 + Math.floor(next() * 2 ** 26);
      const h = trial % 3;
      const expected = tokens.map((_, j) => {
        let acc = 0n;
        for (let i = 0; i < n; i++) {
          const p = j - n + 1 + i;
          if (p >= 0) acc += BigInt(tokens[p]!) * primes[h]! ** BigInt(i);
        }
        const signed = BigInt.asIntN(64, acc);
        return Number(((signed % BigInt(buckets)) + BigInt(buckets)) % BigInt(buckets));
      });
      expect(hashNgramIds(tokens, n, buckets, h)).toEqual(expected);
    }
  });
  it("rejects bad n, buckets, hash index and tokens", () => {
    expect(() => hashNgramIds([1], 0, 10)).toThrow(/n must be/);
    expect(() => hashNgramIds([1], 3, 0)).toThrow(/buckets/);
    expect(() => hashNgramIds([1], 3, 10, 11)).toThrow(/hashIndex/);
    expect(() => hashNgramIds([1, -1], 3, 10)).toThrow(/token 1 is -1/);
  });
});
