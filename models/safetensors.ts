/**
 * Safetensors, the Hugging Face weight format: an 8-byte little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }` (offsets relative to the
 * end of the header), then the raw little-endian tensor bytes. A model too big for one file is
 * sharded, with `model.safetensors.index.json` (`weight_map`: tensor name → shard file).
 *
 * Reads F32, F16 and BF16 into float32 exactly (both half formats are subsets of float32); writes
 * F32. Every error names the file, and the tensor where there is one.
 */
import { existsSync } from "node:fs";
import { type FileHandle, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

export class SafetensorsError extends Error {
  override readonly name = "SafetensorsError";
}

export type SafetensorsDtype = "F32" | "F16" | "BF16";

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

export interface NamedFloatTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

/** A tensor as read: its values in float32 and the dtype it was stored in. */
export interface StoredTensor extends NamedFloatTensor {
  readonly dtype: SafetensorsDtype;
}

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const elementCount = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** What a safetensors header says of one tensor: where its bytes are, relative to the data's start. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** The header of a file of `fileLength` bytes whose first bytes are `head`; every entry checked to fit in the file. */
function parseHeader(
  head: Uint8Array,
  fileLength: number,
  source: string,
): { readonly dataStart: number; readonly entries: TensorEntry[] } {
  const fail = (what: string): never => {
    throw new SafetensorsError(`${source}: ${what}`);
  };
  if (fileLength < 8) fail(`truncated: ${fileLength} bytes, not even the 8-byte header length`);
  const headerLength = Number(new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true));
  if (8 + headerLength > fileLength)
    fail(`truncated: the header says it is ${headerLength} bytes, the file has ${fileLength - 8} after the length`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + headerLength)));
  } catch (error) {
    return fail(`bad header: not JSON (${(error as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("bad header: not a JSON object");
  const dataStart = 8 + headerLength;
  const dataLength = fileLength - dataStart;
  const entries: TensorEntry[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const { dtype, shape, data_offsets: offsets } = (entry ?? {}) as Record<string, unknown>;
    const at = `tensor ${name}`;
    if (dtype !== "F32" && dtype !== "F16" && dtype !== "BF16")
      fail(`${at}: dtype ${JSON.stringify(dtype)} is not supported (F32, F16, BF16)`);
    if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0))
      fail(`bad header: ${at} has shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((n) => Number.isInteger(n) && n >= 0) ||
      offsets[0] > offsets[1]
    )
      fail(`bad header: ${at} has data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const width = BYTES_PER_ELEMENT[dtype as SafetensorsDtype];
    const count = elementCount(shape as number[]);
    if (end - begin !== count * width)
      fail(
        `bad header: ${at} is ${dtype} ${JSON.stringify(shape)} (${count * width} bytes) but its data_offsets span ${end - begin}`,
      );
    if (end > dataLength)
      fail(`truncated: ${at} ends at byte ${end} of the data, which has ${dataLength} bytes (file cut short?)`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  return { dataStart, entries };
}

/** Every tensor of one safetensors file's bytes; `source` names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source: string): Map<string, StoredTensor> {
  const { dataStart, entries } = parseHeader(bytes, bytes.length, source);
  const tensors = new Map<string, StoredTensor>();
  for (const { name, dtype, shape, begin, end } of entries)
    tensors.set(name, {
      name,
      dtype,
      shape,
      values: toFloat32(bytes.subarray(dataStart + begin, dataStart + end), dtype),
    });
  return tensors;
}

/** Little-endian raw values → float32, exactly. */
function toFloat32(raw: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  // A copy of the bytes (the file's data need not be 4-byte aligned; a Buffer's .slice would be a view).
  if (dtype === "F32" && LITTLE_ENDIAN) return new Float32Array(new Uint8Array(raw).buffer);
  const out = new Float32Array(raw.length / BYTES_PER_ELEMENT[dtype]);
  if (dtype === "F32") {
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < out.length; i++) {
    const half = view.getUint16(2 * i, true);
    bits[i] = dtype === "BF16" ? half << 16 : float16BitsToFloat32Bits(half);
  }
  return out;
}

/** IEEE binary16 → binary32 bit pattern (subnormals, infinities and NaN payloads included). */
function float16BitsToFloat32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  // Subnormal half: normalise it (every one is a normal float32).
  let e = 113;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

/** One safetensors file holding `tensors` as F32, in the given order. */
export function encodeSafetensors(
  tensors: readonly NamedFloatTensor[],
  metadata: Readonly<Record<string, string>> = { format: "pt" },
): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    if (t.values.length !== elementCount(t.shape))
      throw new SafetensorsError(`tensor ${t.name}: ${t.values.length} values for shape ${JSON.stringify(t.shape)}`);
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + 4 * t.values.length] };
    offset += 4 * t.values.length;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8); // the reference writer aligns the data to 8 bytes
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    for (let i = 0; i < t.values.length; i++) view.setFloat32(at + 4 * i, t.values[i]!, true);
    at += 4 * t.values.length;
  }
  return out;
}

export async function readSafetensorsFile(path: string): Promise<Map<string, StoredTensor>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw cannotRead(path, error);
  }
  return parseSafetensors(bytes, path);
}

const cannotRead = (path: string, error: unknown) =>
  new SafetensorsError(`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? error})`);

/**
 * The tensors one safetensors file holds, from its header alone (no weights read): each checked to
 * fit in the file, so a file cut short is found without reading it.
 */
export async function readSafetensorsHeader(path: string): Promise<Map<string, TensorEntry>> {
  let file: FileHandle | undefined;
  try {
    file = await open(path, "r");
    const { size } = await file.stat();
    const length = new Uint8Array(8);
    await file.read(length, 0, Math.min(8, size), 0);
    const headerLength = size < 8 ? 0 : Number(new DataView(length.buffer).getBigUint64(0, true));
    const head = new Uint8Array(8 + Math.min(headerLength, Math.max(0, size - 8)));
    head.set(length);
    if (head.length > 8) await file.read(head, 8, head.length - 8, 8);
    return new Map(parseHeader(head, size, path).entries.map((entry) => [entry.name, entry]));
  } catch (error) {
    if (error instanceof SafetensorsError) throw error;
    throw cannotRead(path, error);
  } finally {
    await file?.close();
  }
}

/**
 * Every tensor of a model directory: `model.safetensors`, or the shards `model.safetensors.index.json`
 * lists (each tensor must be in the shard the index names).
 */
export const readSafetensorsDir = (dir: string): Promise<Map<string, StoredTensor>> =>
  tensorsOfDir(dir, readSafetensorsFile);

/** Every tensor of a model directory as its headers describe it (readSafetensorsHeader), with the file it is in. */
export const readSafetensorsDirHeaders = (dir: string): Promise<Map<string, TensorEntry & { readonly file: string }>> =>
  tensorsOfDir(dir, async (path) => {
    const entries = await readSafetensorsHeader(path);
    return new Map([...entries].map(([name, entry]) => [name, { ...entry, file: path }]));
  });

async function tensorsOfDir<T>(
  dir: string,
  readOne: (path: string) => Promise<Map<string, T>>,
): Promise<Map<string, T>> {
  const single = join(dir, SINGLE_FILE);
  const index = join(dir, INDEX_FILE);
  if (existsSync(single)) return readOne(single);
  if (!existsSync(index)) throw new SafetensorsError(`${dir}: no ${SINGLE_FILE} and no ${INDEX_FILE}`);
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(await readFile(index, "utf8")) as { weight_map?: unknown }).weight_map;
  } catch (error) {
    throw new SafetensorsError(`${index}: not JSON (${(error as Error).message})`);
  }
  if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap))
    throw new SafetensorsError(`${index}: weight_map must be an object of tensor name → shard file`);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string")
      throw new SafetensorsError(`${index}: weight_map.${name} must be a file name, got ${JSON.stringify(shard)}`);
    byShard.set(shard, [...(byShard.get(shard) ?? []), name]);
  }
  const tensors = new Map<string, T>();
  for (const [shard, names] of byShard) {
    const path = join(dir, shard);
    if (!existsSync(path)) throw new SafetensorsError(`${path}: missing (${INDEX_FILE} puts tensor ${names[0]} there)`);
    const stored = await readOne(path);
    for (const name of names) {
      const tensor = stored.get(name);
      if (!tensor) throw new SafetensorsError(`${path}: no tensor ${name} (${INDEX_FILE} says it is there)`);
      tensors.set(name, tensor);
    }
  }
  return tensors;
}

/** Writes `tensors` as one `model.safetensors` in `dir` (F32: exact). */
export async function writeSafetensorsDir(dir: string, tensors: readonly NamedFloatTensor[]): Promise<void> {
  await writeFile(join(dir, SINGLE_FILE), encodeSafetensors(tensors));
}
