/**
 * The image tokenizer (as in Chameleon, scaled down): a picture is cut into P×P patches, each patch
 * becomes the id of its nearest code in a codebook learned by k-means (k-means++ seeding) over the
 * patches of the world's pictures, and decoding paints each patch with its code (the mean of the
 * patches k-means gave it). Plain Float32Array math: at 48-dimensional patches and a few hundred codes
 * this is faster than moving the data into tensors. The codebook is saved with the policy (toJson).
 */
import type { Picture } from "../envs/index.ts";
import { mulberry32 } from "./random.ts";

export interface VqCodebook {
  /** Patch side in pixels. */
  readonly patchSize: number;
  /** The picture size the codebook tokenizes (tokens per picture = (width / P) × (height / P)). */
  readonly width: number;
  readonly height: number;
  /** Number of codes (token ids 0 … size − 1). */
  readonly size: number;
  /** size × P×P×3 pixel values (0–255, not rounded), code after code. */
  readonly codes: Float32Array;
}

export interface VqTrainOptions {
  readonly codebookSize: number;
  readonly patchSize: number;
  /** Lloyd iterations at most (stops earlier when no patch changes code). */
  readonly iterations: number;
  /** Seeds the k-means++ draws and the patch sample. */
  readonly seed: number;
  /** Patches to learn from at most (a seeded sample when the pictures have more). */
  readonly maxPatches: number;
}

export const DEFAULT_VQ_OPTIONS: VqTrainOptions = {
  codebookSize: 256,
  patchSize: 4,
  iterations: 25,
  seed: 1,
  maxPatches: 40_000,
};

export class VqError extends Error {
  override readonly name = "VqError";
}

const dimOf = (patchSize: number) => patchSize * patchSize * 3;

export const tokensPerPicture = (codebook: VqCodebook): number =>
  (codebook.width / codebook.patchSize) * (codebook.height / codebook.patchSize);

function checkPicture(picture: Picture, width: number, height: number, what: string): void {
  if (picture.width !== width || picture.height !== height) {
    throw new VqError(
      `${what} is ${picture.width}×${picture.height}; this codebook tokenizes ${width}×${height} pictures`,
    );
  }
  if (picture.pixels.length !== width * height * 3) {
    throw new VqError(
      `${what} has ${picture.pixels.length} bytes, expected ${width * height * 3} (${width}×${height}×3)`,
    );
  }
}

/** Writes the picture's patches, row-major patch order, each patch row-major RGB, into `out` at `offset`. */
function cutPatches(picture: Picture, patchSize: number, out: Float32Array, offset: number): void {
  const across = picture.width / patchSize;
  const down = picture.height / patchSize;
  let o = offset;
  for (let py = 0; py < down; py++)
    for (let px = 0; px < across; px++)
      for (let y = 0; y < patchSize; y++) {
        const row = ((py * patchSize + y) * picture.width + px * patchSize) * 3;
        for (let k = 0; k < patchSize * 3; k++) out[o++] = picture.pixels[row + k] as number;
      }
}

/** Squared distance between vector i of `a` and vector j of `b`, both of dimension d. */
function distance(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let sum = 0;
  const ai = i * d;
  const bj = j * d;
  for (let k = 0; k < d; k++) {
    const diff = (a[ai + k] as number) - (b[bj + k] as number);
    sum += diff * diff;
  }
  return sum;
}

/** The code nearest to patch i; a code's partial sum is abandoned once it exceeds the best so far. */
function nearest(codes: Float32Array, size: number, patches: Float32Array, i: number, d: number): number {
  let best = 0;
  let bestDistance = Number.POSITIVE_INFINITY;
  const pi = i * d;
  for (let c = 0; c < size; c++) {
    const cj = c * d;
    let sum = 0;
    for (let k = 0; k < d && sum < bestDistance; k++) {
      const diff = (patches[pi + k] as number) - (codes[cj + k] as number);
      sum += diff * diff;
    }
    if (sum < bestDistance) {
      bestDistance = sum;
      best = c;
    }
  }
  return best;
}

/** Learns a codebook from pictures (all of one size, a multiple of the patch size). */
export function trainVqCodebook(pictures: readonly Picture[], options: Partial<VqTrainOptions> = {}): VqCodebook {
  const opts = { ...DEFAULT_VQ_OPTIONS, ...options };
  const { patchSize, codebookSize: size } = opts;
  if (pictures.length === 0) throw new VqError("cannot learn a codebook from no pictures");
  if (!Number.isInteger(size) || size < 1) throw new VqError(`codebookSize must be an integer ≥ 1, got ${size}`);
  const first = pictures[0] as Picture;
  const { width, height } = first;
  if (!Number.isInteger(patchSize) || patchSize < 1 || width % patchSize !== 0 || height % patchSize !== 0) {
    throw new VqError(`patchSize ${patchSize} does not divide the ${width}×${height} pictures`);
  }
  pictures.forEach((p, i) => {
    checkPicture(p, width, height, `picture ${i}`);
  });
  const d = dimOf(patchSize);
  const perPicture = (width / patchSize) * (height / patchSize);
  const all = new Float32Array(pictures.length * perPicture * d);
  pictures.forEach((p, i) => {
    cutPatches(p, patchSize, all, i * perPicture * d);
  });
  const random = mulberry32(opts.seed);
  const patches = samplePatches(all, d, opts.maxPatches, random);
  const n = patches.length / d;
  if (n < size) throw new VqError(`${n} patches cannot make ${size} codes; give more pictures or fewer codes`);

  const codes = kMeansPlusPlus(patches, n, d, size, random);
  const assignment = new Int32Array(n).fill(-1);
  const sums = new Float64Array(size * d);
  const counts = new Int32Array(size);
  for (let iteration = 0; iteration < opts.iterations; iteration++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const c = nearest(codes, size, patches, i, d);
      if (c !== assignment[i]) changed++;
      assignment[i] = c;
    }
    if (changed === 0) break;
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const c = assignment[i] as number;
      counts[c] = (counts[c] as number) + 1;
      for (let k = 0; k < d; k++) sums[c * d + k] = (sums[c * d + k] as number) + (patches[i * d + k] as number);
    }
    for (let c = 0; c < size; c++) {
      if (counts[c] === 0) {
        // An empty code takes over the patch worst served by its own code, so no code is wasted.
        let worst = 0;
        let worstDistance = -1;
        for (let i = 0; i < n; i++) {
          const dist = distance(patches, i, codes, assignment[i] as number, d);
          if (dist > worstDistance) {
            worstDistance = dist;
            worst = i;
          }
        }
        codes.set(patches.subarray(worst * d, (worst + 1) * d), c * d);
        assignment[worst] = c;
        continue;
      }
      for (let k = 0; k < d; k++) codes[c * d + k] = (sums[c * d + k] as number) / (counts[c] as number);
    }
  }
  return { patchSize, width, height, size, codes };
}

/** Up to `max` patches drawn without replacement (partial Fisher–Yates over patch indices). */
function samplePatches(all: Float32Array, d: number, max: number, random: () => number): Float32Array {
  const n = all.length / d;
  if (n <= max) return all;
  const order = Int32Array.from({ length: n }, (_, i) => i);
  const out = new Float32Array(max * d);
  for (let i = 0; i < max; i++) {
    const j = i + Math.floor(random() * (n - i));
    const pick = order[j] as number;
    order[j] = order[i] as number;
    order[i] = pick;
    out.set(all.subarray(pick * d, (pick + 1) * d), i * d);
  }
  return out;
}

/** k-means++: each next code is a patch drawn with probability ∝ its squared distance to the nearest code so far. */
function kMeansPlusPlus(patches: Float32Array, n: number, d: number, size: number, random: () => number): Float32Array {
  const codes = new Float32Array(size * d);
  const first = Math.floor(random() * n);
  codes.set(patches.subarray(first * d, (first + 1) * d), 0);
  const closest = new Float64Array(n);
  for (let i = 0; i < n; i++) closest[i] = distance(patches, i, codes, 0, d);
  for (let c = 1; c < size; c++) {
    let total = 0;
    for (let i = 0; i < n; i++) total += closest[i] as number;
    let pick = Math.floor(random() * n); // all patches already coincide with codes: any will do
    if (total > 0) {
      let target = random() * total;
      for (let i = 0; i < n; i++) {
        target -= closest[i] as number;
        if (target < 0) {
          pick = i;
          break;
        }
      }
    }
    codes.set(patches.subarray(pick * d, (pick + 1) * d), c * d);
    for (let i = 0; i < n; i++) {
      const dist = distance(patches, i, codes, c, d);
      if (dist < (closest[i] as number)) closest[i] = dist;
    }
  }
  return codes;
}

/** The picture as token ids: its patches' nearest codes, patches in row-major order. */
export function encodePicture(codebook: VqCodebook, picture: Picture): Int32Array {
  checkPicture(picture, codebook.width, codebook.height, "picture");
  const d = dimOf(codebook.patchSize);
  const count = tokensPerPicture(codebook);
  const patches = new Float32Array(count * d);
  cutPatches(picture, codebook.patchSize, patches, 0);
  const tokens = new Int32Array(count);
  for (let i = 0; i < count; i++) tokens[i] = nearest(codebook.codes, codebook.size, patches, i, d);
  return tokens;
}

/** The picture a token sequence stands for: each patch painted with its code, rounded to bytes. */
export function decodeTokens(codebook: VqCodebook, tokens: ArrayLike<number>): Picture {
  const count = tokensPerPicture(codebook);
  if (tokens.length !== count) {
    throw new VqError(`a picture is ${count} tokens for this codebook, got ${tokens.length}`);
  }
  const bad: string[] = [];
  for (let i = 0; i < tokens.length && bad.length < 5; i++) {
    const t = tokens[i] as number;
    if (!Number.isInteger(t) || t < 0 || t >= codebook.size) bad.push(`${t} at ${i}`);
  }
  if (bad.length > 0) {
    throw new VqError(`token ids outside the codebook (0–${codebook.size - 1}): ${bad.join(", ")}`);
  }
  const { patchSize: p, width, height } = codebook;
  const d = dimOf(p);
  const across = width / p;
  const pixels = new Uint8Array(width * height * 3);
  for (let i = 0; i < count; i++) {
    const code = (tokens[i] as number) * d;
    const top = Math.floor(i / across) * p;
    const left = (i % across) * p;
    for (let y = 0; y < p; y++)
      for (let k = 0; k < p * 3; k++) {
        const value = codebook.codes[code + y * p * 3 + k] as number;
        pixels[((top + y) * width + left) * 3 + k] = Math.min(255, Math.max(0, Math.round(value)));
      }
  }
  return { width, height, pixels };
}

export interface ReconstructionError {
  /** Mean squared error per pixel value (0–255 scale), over all channels. */
  readonly mse: number;
  /** Peak signal-to-noise ratio in dB: 10·log10(255² / mse). */
  readonly psnr: number;
}

/** How far decode(encode(picture)) is from the pictures. */
export function reconstructionError(codebook: VqCodebook, pictures: readonly Picture[]): ReconstructionError {
  if (pictures.length === 0) throw new VqError("reconstruction error of no pictures");
  let sum = 0;
  let values = 0;
  for (const picture of pictures) {
    const decoded = decodeTokens(codebook, encodePicture(codebook, picture));
    for (let i = 0; i < picture.pixels.length; i++) {
      const diff = (picture.pixels[i] as number) - (decoded.pixels[i] as number);
      sum += diff * diff;
    }
    values += picture.pixels.length;
  }
  const mse = sum / values;
  return { mse, psnr: mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse) };
}

/** The codebook as JSON (saved with the policy's checkpoint). */
export interface VqCodebookJson {
  readonly kind: "vq-codebook";
  readonly version: 1;
  readonly patchSize: number;
  readonly width: number;
  readonly height: number;
  readonly size: number;
  readonly codes: readonly number[];
}

export function codebookToJson(codebook: VqCodebook): VqCodebookJson {
  const { patchSize, width, height, size } = codebook;
  return { kind: "vq-codebook", version: 1, patchSize, width, height, size, codes: Array.from(codebook.codes) };
}

/** Reads a saved codebook back; anything malformed is an error naming the field. */
export function codebookFromJson(json: unknown): VqCodebook {
  if (typeof json !== "object" || json === null) throw new VqError("codebook: expected an object");
  const j = json as Partial<Record<keyof VqCodebookJson, unknown>>;
  if (j.kind !== "vq-codebook")
    throw new VqError(`codebook: kind must be "vq-codebook", found ${JSON.stringify(j.kind)}`);
  if (j.version !== 1)
    throw new VqError(`codebook: unsupported version ${JSON.stringify(j.version)} (this build reads 1)`);
  const positive = (field: "patchSize" | "width" | "height" | "size"): number => {
    const value = j[field];
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw new VqError(`codebook: ${field} must be a positive integer, found ${JSON.stringify(value)}`);
    }
    return value;
  };
  const patchSize = positive("patchSize");
  const width = positive("width");
  const height = positive("height");
  const size = positive("size");
  if (width % patchSize !== 0 || height % patchSize !== 0) {
    throw new VqError(`codebook: patchSize ${patchSize} does not divide ${width}×${height}`);
  }
  const expected = size * dimOf(patchSize);
  if (
    !Array.isArray(j.codes) ||
    j.codes.length !== expected ||
    !j.codes.every((v) => typeof v === "number" && Number.isFinite(v))
  ) {
    throw new VqError(`codebook: codes must be ${expected} finite numbers (${size} codes × ${dimOf(patchSize)})`);
  }
  return { patchSize, width, height, size, codes: Float32Array.from(j.codes as number[]) };
}
