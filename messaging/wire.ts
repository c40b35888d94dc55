/**
 * factrl's bytes on the wire: plain msgpack that any language's standard library reads and writes
 * (docs/protocol.md). No msgpackr extension types: a typed array travels as the map
 * `{ dtype: "int32", data: <bin: its little-endian bytes> }`, a Uint8Array as plain `bin`, an
 * undefined map value is left out (an undefined list item is nil), and a 64-bit integer from another
 * language reads as a number. The rest of the code keeps its typed arrays: `toWire` maps them to
 * dtype maps before packing and `fromWire` back after unpacking.
 */
import { endianness } from "node:os";
import { Data } from "effect";
import { Packr } from "msgpackr";

if (endianness() !== "LE") {
  // Typed arrays are sent as their memory; a big-endian host would send the bytes reversed.
  throw new Error("factrl's wire format carries typed arrays little-endian; this big-endian host is not supported");
}

/** The typed arrays with a dtype map, by their numpy dtype name (what a Python reader passes to frombuffer). */
const ARRAY_TYPES = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
} as const;
type WireDtype = keyof typeof ARRAY_TYPES;
const WIRE_DTYPES = Object.keys(ARRAY_TYPES) as readonly WireDtype[];

/** Uint8Array (and Buffer) go as plain bin, so a byte field (a picture) needs no map. */
const DTYPE_OF = new Map<unknown, WireDtype>(
  Object.entries(ARRAY_TYPES).flatMap(([dtype, type]) => (type === Uint8Array ? [] : [[type, dtype as WireDtype]])),
);

/**
 * `useRecords: false`: no shared structures, a receiver needs no state of ours. `moreTypes` off:
 * msgpackr's own extensions stay off the wire. `encodeUndefinedAsNil`: no extension for undefined
 * (`toWire` leaves undefined map values out; what remains, in lists, is nil). `copyBuffers`: a bin
 * decodes to its own aligned buffer, not a view of the network buffer (a typed array is then a view
 * of that copy: one copy per array, as before). `int64AsType`: Python packs ints from 2^32 up as
 * 64-bit ints; they read as numbers, not BigInts. `variableMapSize`: maps over 65 535 keys (a big
 * metrics record) would otherwise fail to encode.
 */
const plain = new Packr({
  useRecords: false,
  moreTypes: false,
  encodeUndefinedAsNil: true,
  copyBuffers: true,
  int64AsType: "number",
  variableMapSize: true,
});

/** A path deeper than this is cut in messages: the reason must stay readable in a bounded log line. */
const MAX_PATH_SHOWN = 8;

/** A dtype map that makes no typed array, or nesting too deep; `path` leads there from `fromWire`'s value. */
export class WireFormatError extends Data.TaggedError("WireFormatError")<{
  readonly path: ReadonlyArray<PropertyKey>;
  readonly reason: string;
}> {
  override get message(): string {
    const shown = this.path.slice(0, MAX_PATH_SHOWN);
    const where = shown.map((key) => `[${typeof key === "number" ? key : JSON.stringify(key)}]`).join("");
    const more = this.path.length - shown.length;
    return `${where || "(top level)"}${more > 0 ? `…(${more} levels more)` : ""}: ${this.reason}`;
  }
}

const isPlainObject = (value: object): value is Record<string, unknown> => {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
};

/**
 * `value` with every typed array (but Uint8Array) replaced by its dtype map, and undefined map
 * values left out (as JSON does). Copy on write: objects and lists holding neither are returned as
 * they are (a metrics event costs a walk, no allocation). The data is a view of the array's memory.
 */
function toWire(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (ArrayBuffer.isView(value)) {
    const dtype = DTYPE_OF.get(value.constructor);
    return dtype === undefined
      ? value
      : { dtype, data: new Uint8Array(value.buffer, value.byteOffset, value.byteLength) };
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      const wire = toWire(item);
      if (wire !== item) {
        copy ??= value.slice();
        copy[i] = wire;
      }
    }
    return copy ?? value;
  }
  if (!isPlainObject(value)) return value;
  let copy: Record<string, unknown> | undefined;
  for (const key in value) {
    const item = value[key];
    const wire = toWire(item);
    if (wire === item && item !== undefined) continue;
    copy ??= { ...value };
    // Undefined values are left out here rather than by msgpackr's skipValues, which costs more.
    if (item === undefined) delete copy[key];
    else copy[key] = wire;
  }
  return copy ?? value;
}

/** A map of exactly `dtype` (a string) and `data` (bin) is a typed array on the wire. */
const isDtypeMap = (value: Record<string, unknown>): boolean => {
  if (typeof value.dtype !== "string" || !(value.data instanceof Uint8Array)) return false;
  let keys = 0;
  for (const _ in value) keys++;
  return keys === 2;
};

const typedArrayOf = (dtype: string, data: Uint8Array): ArrayBufferView => {
  if (!Object.hasOwn(ARRAY_TYPES, dtype)) {
    throw new WireFormatError({
      path: [],
      reason: `unknown dtype ${JSON.stringify(dtype).slice(0, 40)} (known: ${WIRE_DTYPES.join(", ")})`,
    });
  }
  const type = ARRAY_TYPES[dtype as WireDtype];
  const size = type.BYTES_PER_ELEMENT;
  if (data.byteLength % size !== 0) {
    throw new WireFormatError({
      path: [],
      reason: `${dtype} data of ${data.byteLength} bytes is not a whole number of ${size}-byte elements`,
    });
  }
  // copyBuffers gave the bin a buffer of its own, at offset 0: aligned for every dtype.
  return type === Uint8Array ? data : new type(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength / size);
};

/**
 * How deep `fromWire` follows maps and lists. factrl's messages nest a handful of levels; the limit
 * turns a hostile message that msgpackr still unpacks (≈ 10,000 levels) into a clear error instead
 * of a stack overflow in the walk.
 */
const MAX_WIRE_DEPTH = 64;

/** Whether `value` nests maps or lists more than `limit` deep (a walk that stops there: no recursion to overflow). */
export function nestedDeeperThan(value: unknown, limit: number = MAX_WIRE_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== "object" || node === null || ArrayBuffer.isView(node)) continue;
    if (depth >= limit) return true;
    for (const item of Array.isArray(node) ? node : Object.values(node)) stack.push([item, depth + 1]);
  }
  return false;
}

/** `fromWire` one level down: a failure below gets `key` in front of its path. */
const fromWireAt = (value: object, key: PropertyKey, depth: number): unknown => {
  try {
    return fromWire(value, depth);
  } catch (error) {
    if (error instanceof WireFormatError)
      throw new WireFormatError({ path: [key, ...error.path], reason: error.reason });
    throw error;
  }
};

/**
 * Turns every dtype map in a freshly unpacked `value` back into its typed array, in place (the value
 * is ours: nothing else holds it). Throws WireFormatError, with the path, for an unknown dtype or a
 * byte length that is no whole number of elements.
 */
export function fromWire(value: unknown, depth = 0): unknown {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return value;
  if (depth >= MAX_WIRE_DEPTH) {
    throw new WireFormatError({ path: [], reason: `nested more than ${MAX_WIRE_DEPTH} maps or lists deep` });
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" && item !== null) value[i] = fromWireAt(item, i, depth + 1);
    }
    return value;
  }
  const record = value as Record<string, unknown>;
  if (isDtypeMap(record)) return typedArrayOf(record.dtype as string, record.data as Uint8Array);
  for (const key in record) {
    const item = record[key];
    if (typeof item === "object" && item !== null) record[key] = fromWireAt(item, key, depth + 1);
  }
  return value;
}

/** Plain msgpack of a value, typed arrays included. */
export const packWire = (value: unknown): Uint8Array => plain.pack(toWire(value));

/** Plain msgpack, no dtype maps resolved: the envelope codec resolves the body's after its checks. */
export const unpackPlain = (bytes: Uint8Array): unknown => plain.unpack(bytes);

/** A value from plain msgpack, typed arrays restored; throws on bad msgpack and WireFormatError. */
export const unpackWire = (bytes: Uint8Array): unknown => fromWire(plain.unpack(bytes));
