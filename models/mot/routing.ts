/**
 * Host-side routing of tokens to their modality's weights: a stable grouping of rows by modality
 * slot, computed from token data once per call (never from variables, so gradients flow through the
 * gathers that use it).
 */

/** Rows grouped by slot: `order[i]` is the row placed at sorted position i; `inverse` undoes it. */
export interface Grouping {
  /** Sorted position → row (rows of slot 0 first, each group in row order). */
  readonly order: Int32Array;
  /** Row → sorted position. */
  readonly inverse: Int32Array;
  /** The non-empty groups, in sorted order: their slot and how many rows they hold. */
  readonly groups: readonly { readonly slot: number; readonly rows: number }[];
  /** True when `order` is the identity (one group, or rows already grouped): no gather needed. */
  readonly identity: boolean;
}

/** Groups rows by `slots[row]` ∈ [0, slotCount), stably (a counting sort). */
export function groupBySlot(slots: ArrayLike<number>, slotCount: number): Grouping {
  const counts = new Int32Array(slotCount);
  for (let row = 0; row < slots.length; row++) {
    const slot = slots[row]!;
    if (!Number.isInteger(slot) || slot < 0 || slot >= slotCount) {
      throw new Error(`groupBySlot: row ${row} has slot ${slot}, expected an integer in [0, ${slotCount})`);
    }
    counts[slot]! += 1;
  }
  const next = new Int32Array(slotCount);
  for (let s = 1; s < slotCount; s++) next[s] = next[s - 1]! + counts[s - 1]!;
  const order = new Int32Array(slots.length);
  const inverse = new Int32Array(slots.length);
  let identity = true;
  for (let row = 0; row < slots.length; row++) {
    const at = next[slots[row]!]!++;
    order[at] = row;
    inverse[row] = at;
    if (at !== row) identity = false;
  }
  const groups = [...counts].flatMap((rows, slot) => (rows > 0 ? [{ slot, rows }] : []));
  return { order, inverse, groups, identity };
}
