/**
 * Patching: how BLT cuts a byte stream into patches. Each function returns patch lengths for one
 * sequence and reproduces, row by row, the reference implementation (facebookresearch/blt,
 * `bytelatent/data/patcher.py`), quirks included:
 *
 * - Entropy and space patching always start patches at positions 0 and 1 (`first_ids = [0, 1]`),
 *   so the first patch is the single BOS byte.
 * - Position p ≥ 2 starts an entropy patch from the entropy at p − 1 (the uncertainty of the
 *   prediction *of* byte p), so patching is causal: a generator knows whether the next byte starts
 *   a patch before choosing it.
 * - Comparisons are strict (`>`): an entropy equal to the threshold does not start a patch.
 * - `includeNextToken` patches one extra, not-yet-seen position at the end (lengths sum to
 *   length + 1); BLT's forward uses it so the decoder knows which patch the next byte falls in.
 * - Monotonic mode: position 2 always starts a patch; then p starts one when H[p−1] − H[p−2] > threshold.
 * - Global + monotonic mode: position 2 always starts a patch and position 3 never does (the
 *   reference ANDs with the negated first-start mask shifted by one); then p starts one when
 *   H[p−1] − H[p−2] > thresholdAdd and H[p−1] > threshold. If `monotonic` is also set, monotonic
 *   wins (the reference checks it first).
 * - Space mode: a byte that is not an ASCII letter or digit and not a UTF-8 continuation byte is
 *   "space-like"; the byte after the first of a run of space-like bytes starts a patch; special
 *   tokens (< 4) always end a patch. The rule does not depend on `includeNextToken`, which only
 *   decides whether the final position counts.
 * - A maximum patch length splits every longer patch into full-length pieces plus the remainder
 *   (`split_large_numbers`), after the boundaries are chosen.
 */
import { BLT_VOCAB_SIZE, BYTE_OFFSET } from "./tokens.ts";

export interface EntropyPatchOptions {
  /** Global threshold (or the monotonic bound when `monotonic` is set). */
  readonly threshold: number;
  /** Approximately-monotonic rule: a patch starts where entropy rises by more than `threshold`. */
  readonly monotonic?: boolean;
  /** Set: the combined rule, `threshold` global and `thresholdAdd` on the rise. */
  readonly thresholdAdd?: number;
  readonly includeNextToken: boolean;
  readonly maxPatchLength?: number;
}

/** Patch lengths from next-byte entropies (natural log), one per position of the sequence. */
export function entropyPatchLengths(entropies: ArrayLike<number>, opts: EntropyPatchOptions): number[] {
  const length = entropies.length;
  checkFinite("threshold", opts.threshold);
  if (opts.thresholdAdd !== undefined) checkFinite("thresholdAdd", opts.thresholdAdd);
  for (let i = 0; i < length; i++) {
    if (!Number.isFinite(entropies[i])) throw new Error(`entropyPatchLengths: entropy ${i} is ${entropies[i]}`);
  }
  const total = length + (opts.includeNextToken ? 1 : 0);
  const starts = [0, 1];
  // The reference's mask over entropies[1:] covers positions 2 … length (one fewer without the next token).
  for (let p = 2; p <= total - 1; p++) {
    const current = entropies[p - 1]!;
    let start: boolean;
    if (opts.monotonic) {
      start = p === 2 || current - entropies[p - 2]! > opts.threshold;
    } else if (opts.thresholdAdd !== undefined) {
      start = p === 2 || (p > 3 && current - entropies[p - 2]! > opts.thresholdAdd && current > opts.threshold);
    } else {
      start = current > opts.threshold;
    }
    if (start) starts.push(p);
  }
  return finishLengths(starts, total, opts.maxPatchLength, "entropyPatchLengths");
}

/** Patch lengths that end patches after space-like bytes (BLT tokens: byte b = b + 4). */
export function spacePatchLengths(
  tokens: ArrayLike<number>,
  opts: { readonly includeNextToken: boolean; readonly maxPatchLength?: number },
): number[] {
  const length = tokens.length;
  if (length === 0) throw new Error("spacePatchLengths: empty sequence (the reference rejects it too)");
  for (let i = 0; i < length; i++) {
    const t = tokens[i]!;
    if (!Number.isInteger(t) || t < 0 || t >= BLT_VOCAB_SIZE) {
      throw new Error(`spacePatchLengths: token ${i} is ${t}, outside [0, ${BLT_VOCAB_SIZE})`);
    }
  }
  const total = length + (opts.includeNextToken ? 1 : 0);
  const starts = [0, 1];
  for (let p = 2; p <= length; p++) {
    const i = p - 1;
    const endsPatch = tokens[i]! < BYTE_OFFSET || (isSpaceLike(tokens[i]!) && !isSpaceLike(tokens[i - 1]!));
    if (endsPatch) starts.push(p);
  }
  return finishLengths(starts, total, opts.maxPatchLength, "spacePatchLengths");
}

/** Fixed-size patches; the last one holds the remainder. */
export function staticPatchLengths(
  length: number,
  patchSize: number,
  opts: { readonly includeNextToken: boolean },
): number[] {
  if (!Number.isInteger(length) || length < 0)
    throw new Error(`staticPatchLengths: length must be an integer ≥ 0, got ${length}`);
  checkPositiveInt("patchSize", patchSize);
  const total = length + (opts.includeNextToken ? 1 : 0);
  const lengths = new Array<number>(Math.ceil(total / patchSize)).fill(patchSize);
  if (total % patchSize !== 0) lengths[lengths.length - 1] = total % patchSize;
  return lengths;
}

/** Splits every patch longer than `max` into `max`-long pieces plus the remainder. */
export function splitLongPatches(lengths: readonly number[], max: number): number[] {
  checkPositiveInt("maxPatchLength", max);
  const out: number[] = [];
  for (let rest of lengths) {
    while (rest > max) {
      out.push(max);
      rest -= max;
    }
    out.push(rest);
  }
  return out;
}

/** Not an ASCII letter or digit and not a UTF-8 continuation byte (special tokens count too). */
function isSpaceLike(token: number): boolean {
  const b = token - BYTE_OFFSET;
  return b < 0x30 || (0x39 < b && b < 0x41) || (0x5a < b && b < 0x61) || (0x7a < b && b < 0x80) || b >= 0xc0;
}

/** Lengths between sorted starts up to `total`; a zero-length last patch is dropped (as the reference trims). */
function finishLengths(starts: number[], total: number, maxPatchLength: number | undefined, caller: string): number[] {
  if (total < 1) throw new Error(`${caller}: empty sequence without the next token (the reference rejects it too)`);
  const lengths = starts.map((s, k) => (k + 1 < starts.length ? starts[k + 1]! : total) - s);
  while (lengths.length > 0 && lengths[lengths.length - 1] === 0) lengths.pop();
  return maxPatchLength === undefined ? lengths : splitLongPatches(lengths, maxPatchLength);
}

function checkFinite(name: string, value: number): void {
  if (!Number.isFinite(value)) throw new Error(`patching: ${name} must be a finite number, got ${value}`);
}

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`patching: ${name} must be a positive integer, got ${value}`);
}
