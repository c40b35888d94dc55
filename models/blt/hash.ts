/**
 * Hashed byte n-gram ids, reproducing the reference rolling polynomial hash (facebookresearch/blt,
 * `bytelatent/model/blt.py`: `byte_group_hash_function`, `rolling_polynomial_hash`, `primes`):
 * the n-gram ending at position j is the window x[j−n+1 … j] with zeros before the start;
 * its hash is Σᵢ window[i] · primeⁱ (oldest byte × prime⁰) in signed 64-bit arithmetic with
 * wrap-around, then the remainder modulo `buckets` taken non-negative (Python / torch `%`).
 *
 * Fast path without BigInt: each prime power mod 2⁶⁴ is held as two 32-bit halves; a token
 * (< 2⁹) times a half stays below 2⁴¹, and a sum of up to 2¹¹ such terms stays exact in a double.
 */

/** The reference's hash primes; `hashIndex` picks one. */
export const HASH_PRIMES: readonly bigint[] = [
  1000000007n,
  5915587277n,
  1500450271n,
  3267000013n,
  5754853343n,
  4093082899n,
  9576890767n,
  3628273133n,
  2860486313n,
  5463458053n,
  3367900313n,
];

const TWO_32 = 4294967296;
/** Beyond this, (buckets − 1)² no longer fits a double exactly. */
const MAX_BUCKETS = 2 ** 26;
const MAX_N = 2048;

/** Hash id in [0, buckets) of the n-gram ending at each position of `tokens`. */
export function hashNgramIds(tokens: ArrayLike<number>, n: number, buckets: number, hashIndex = 0): number[] {
  return Array.from(hashNgramIdsInto(tokens, n, buckets, hashIndex, new Int32Array(tokens.length)));
}

/** `hashNgramIds` writing into `out` (length ≥ tokens.length), for batches. */
export function hashNgramIdsInto(
  tokens: ArrayLike<number>,
  n: number,
  buckets: number,
  hashIndex: number,
  out: Int32Array,
): Int32Array {
  if (!Number.isInteger(n) || n < 1 || n > MAX_N)
    throw new Error(`hashNgramIds: n must be an integer in [1, ${MAX_N}], got ${n}`);
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) {
    throw new Error(`hashNgramIds: buckets must be an integer in [1, ${MAX_BUCKETS}], got ${buckets}`);
  }
  const { hi, lo } = primePowers(hashIndex, n);
  for (let j = 0; j < tokens.length; j++) {
    const t = tokens[j]!;
    if (!Number.isInteger(t) || t < 0 || t >= 512) {
      throw new Error(`hashNgramIds: token ${j} is ${t}, expected an integer in [0, 512)`);
    }
  }
  const twoTo32ModBuckets = TWO_32 % buckets;
  for (let j = 0; j < tokens.length; j++) {
    let sumLo = 0;
    let sumHi = 0;
    // window[i] = tokens[j − n + 1 + i]; positions before the start are zero padding (no term)
    for (let i = Math.max(0, n - 1 - j); i < n; i++) {
      const t = tokens[j - n + 1 + i]!;
      sumLo += t * lo[i]!;
      sumHi += t * hi[i]!;
    }
    const carry = Math.floor(sumLo / TWO_32);
    const low = sumLo - carry * TWO_32;
    const high = (sumHi + carry) % TWO_32; // the bits above 2⁶⁴ wrap away
    const signedHigh = high >= 2 ** 31 ? high - TWO_32 : high;
    // value = signedHigh · 2³² + low, reduced modulo buckets without leaving exact doubles.
    out[j] = (mod(signedHigh, buckets) * twoTo32ModBuckets + (low % buckets)) % buckets;
  }
  return out;
}

const powerCache = new Map<string, { hi: Float64Array; lo: Float64Array }>();

/** primeⁱ mod 2⁶⁴ for i < n, as 32-bit halves. */
function primePowers(hashIndex: number, n: number) {
  const prime = HASH_PRIMES[hashIndex];
  if (prime === undefined) {
    throw new Error(`hashNgramIds: hashIndex must be an integer in [0, ${HASH_PRIMES.length}), got ${hashIndex}`);
  }
  const key = `${hashIndex}/${n}`;
  let cached = powerCache.get(key);
  if (!cached) {
    const hi = new Float64Array(n);
    const lo = new Float64Array(n);
    let power = 1n;
    for (let i = 0; i < n; i++) {
      hi[i] = Number(power >> 32n);
      lo[i] = Number(power & 0xffffffffn);
      power = BigInt.asUintN(64, power * prime);
    }
    cached = { hi, lo };
    powerCache.set(key, cached);
  }
  return cached;
}

function mod(value: number, m: number): number {
  const r = value % m;
  return r < 0 ? r + m : r;
}
