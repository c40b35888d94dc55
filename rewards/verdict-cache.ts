/**
 * The verification cache: a claim's verdict, keyed by (verifier version, claim, evidence set), so a
 * verifier — above all an expensive judge (the `http:` module) — never verifies the same claim
 * against the same evidence twice in a run. Serial runs keep it in memory; reward actors share one in
 * the experiment's NATS KV bucket (the pipeline declares the key prefix, actors/topology.ts).
 *
 * A stored value that does not read back as a verdict this verifier can give (not JSON, another
 * shape, a label it never gives) is rejected: logged, counted, and the claim is verified again (its
 * fresh verdict overwrites the bad entry).
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";

/** Hits, misses and rejected entries since the cache was made (read by the reward actor's metrics). */
export interface VerdictCacheCounts {
  hits: number;
  misses: number;
  /** Entries found but unreadable (malformed): recomputed. */
  rejected: number;
  /** Reads or writes that failed (the server did not answer): the claim was verified without the cache. */
  errors: number;
}

export interface VerdictCache {
  readonly counts: VerdictCacheCounts;
  /** Verifications running in this process, by key: a second asker waits for the first (a hit). */
  readonly pending: Map<string, Promise<string>>;
  /** The stored value under `key`, or undefined. */
  read(key: string): Promise<string | undefined>;
  write(key: string, value: string): Promise<void>;
}

/** What a verifier brings to the cache: its version (part of every key) and the labels it gives. */
export interface VerifierIdentity<L extends string> {
  readonly version: string;
  readonly labels: readonly L[];
}

/**
 * The cache key of a verdict: a SHA-256 (hex, 40 characters kept) of the verifier's version, the
 * claim's text and the evidence's ids (order-free: the same passages in another order are the same
 * evidence). A hash, so that any claim text becomes a valid KV key of bounded length.
 */
export function verdictKey(verifier: string, claim: string, evidenceIds: readonly string[]): string {
  const hash = createHash("sha256").update(verifier).update("\u0000").update(claim).update("\u0000");
  for (const id of [...evidenceIds].sort()) hash.update(id).update("\u0001");
  return hash.digest("hex").slice(0, 40);
}

/** The stored form of a verdict: `{"v":1,"label":…}` (JSON, so any client can read the bucket). */
export const encodeVerdict = (label: string): string => JSON.stringify({ v: 1, label });

/** The label a stored value holds, or why it is not a verdict of this verifier. */
export function decodeVerdict<L extends string>(
  value: string,
  labels: readonly L[],
): { readonly label: L } | { readonly problem: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return { problem: `not JSON: ${JSON.stringify(value.slice(0, 80))}` };
  }
  const record = parsed as { v?: unknown; label?: unknown } | null;
  if (typeof record !== "object" || record === null || record.v !== 1)
    return { problem: `not a version-1 verdict: ${JSON.stringify(value.slice(0, 80))}` };
  if (!labels.includes(record.label as L))
    return { problem: `label ${JSON.stringify(record.label)} is not one of ${labels.join(", ")}` };
  return { label: record.label as L };
}

const newCounts = (): VerdictCacheCounts => ({ hits: 0, misses: 0, rejected: 0, errors: 0 });

/** Reports a rejected entry (a logger's warn): its key and why. */
export type RejectionLog = (entry: { readonly key: string; readonly reason: string }) => void;

/**
 * The verdict of `claim` against `evidenceIds` by `verifier`: the cached one, else `verify()`'s,
 * stored for the next asker. A cache that fails to answer never fails the verification.
 */
export async function cachedVerdict<L extends string>(
  cache: VerdictCache | undefined,
  verifier: VerifierIdentity<L>,
  claim: string,
  evidenceIds: readonly string[],
  verify: () => Promise<L>,
  onRejected?: RejectionLog,
): Promise<L> {
  if (cache === undefined) return verify();
  const key = verdictKey(verifier.version, claim, evidenceIds);
  const running = cache.pending.get(key);
  if (running !== undefined) {
    cache.counts.hits++;
    return (await running) as L;
  }
  const lookup = lookUp(cache, verifier, key, verify, onRejected);
  cache.pending.set(key, lookup);
  try {
    return await lookup;
  } finally {
    cache.pending.delete(key);
  }
}

async function lookUp<L extends string>(
  cache: VerdictCache,
  verifier: VerifierIdentity<L>,
  key: string,
  verify: () => Promise<L>,
  onRejected: RejectionLog | undefined,
): Promise<L> {
  const stored = await cache.read(key).catch(() => {
    cache.counts.errors++;
    return undefined;
  });
  if (stored !== undefined) {
    const decoded = decodeVerdict(stored, verifier.labels);
    if ("label" in decoded) {
      cache.counts.hits++;
      return decoded.label;
    }
    cache.counts.rejected++;
    onRejected?.({ key, reason: decoded.problem });
  }
  cache.counts.misses++;
  const label = await verify();
  await cache.write(key, encodeVerdict(label)).catch(() => {
    cache.counts.errors++;
  });
  return label;
}

/** A cache in this process (the serial runner, `factrl eval`), forgetting everything past `limit` entries. */
export function memoryVerdictCache(limit = 100_000): VerdictCache {
  const entries = new Map<string, string>();
  return {
    counts: newCounts(),
    pending: new Map(),
    read: async (key) => entries.get(key),
    write: async (key, value) => {
      if (entries.size >= limit) entries.clear();
      entries.set(key, value);
    },
  };
}

/** A cache shared through a NATS KV bucket: every key is `prefix.<hash>`. */
export function kvVerdictCache(kv: KV, prefix: string): VerdictCache {
  const decoder = new TextDecoder();
  return {
    counts: newCounts(),
    pending: new Map(),
    read: async (key) => {
      const entry = await kv.get(`${prefix}.${key}`);
      return entry === null || entry.operation !== "PUT" ? undefined : decoder.decode(entry.value);
    },
    write: async (key, value) => {
      await kv.put(`${prefix}.${key}`, value);
    },
  };
}
