import { mkdtempSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  encodeSafetensors,
  INDEX_FILE,
  parseSafetensors,
  readSafetensorsDir,
  SafetensorsError,
} from "./safetensors.ts";

/** A safetensors file with hand-laid raw bytes per tensor (any dtype), as another writer would make it. */
function rawFile(entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.bytes.length] };
    offset += e.bytes.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const e of entries) {
    out.set(e.bytes, at);
    at += e.bytes.length;
  }
  return out;
}

const u16 = (values: number[]) => new Uint8Array(Uint16Array.from(values).buffer);

/** binary16 by its definition: (−1)^s · 2^(e−15) · (1 + m/1024), subnormals 2^−14 · m/1024. */
function halfByDefinition(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

describe("safetensors", () => {
  const root = mkdtempSync(join(tmpdir(), "safetensors-"));
  const tempDir = () => mkdtemp(join(root, "case-"));
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("round-trips F32 tensors bit for bit, header aligned to 8 bytes", () => {
    const a = Float32Array.from([1.5, -0, Number.NaN, 3.4e38, 1e-45, -7]);
    const b = Float32Array.from([0.1, 0.2]);
    const bytes = encodeSafetensors([
      { name: "a", shape: [2, 3], values: a },
      { name: "b.weight", shape: [2], values: b },
    ]);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLength) % 8).toBe(0);
    const read = parseSafetensors(bytes, "x.safetensors");
    expect(read.get("a")!.shape).toEqual([2, 3]);
    expect(read.get("a")!.dtype).toBe("F32");
    expect(new Uint32Array(read.get("a")!.values.buffer)).toEqual(new Uint32Array(a.buffer));
    expect(read.get("b.weight")!.values).toEqual(b);
  });

  it("reads every F16 value exactly as binary16 defines it", () => {
    const all = Array.from({ length: 65536 }, (_, h) => h);
    const read = parseSafetensors(
      rawFile([{ name: "h", dtype: "F16", shape: [65536], bytes: u16(all) }]),
      "f16.safetensors",
    ).get("h")!;
    for (const h of all) {
      const expected = halfByDefinition(h);
      if (Number.isNaN(expected)) expect(read.values[h], `0x${h.toString(16)}`).toBeNaN();
      else expect(Object.is(read.values[h], expected) || read.values[h] === expected, `0x${h.toString(16)}`).toBe(true);
    }
    expect(Object.is(read.values[0x8000], -0)).toBe(true);
  });

  it("reads BF16 as the top half of a float32", () => {
    const read = parseSafetensors(
      rawFile([{ name: "w", dtype: "BF16", shape: [4], bytes: u16([0x3f80, 0xc040, 0x0001, 0x7f80]) }]),
      "bf16.safetensors",
    ).get("w")!;
    expect(Array.from(read.values)).toEqual([1, -3, 2 ** -133, Number.POSITIVE_INFINITY]);
  });

  it("names the file and the tensor of a truncated file", () => {
    const bytes = encodeSafetensors([
      { name: "first", shape: [4], values: new Float32Array(4) },
      { name: "model.norm.weight", shape: [4], values: new Float32Array(4) },
    ]);
    expect(() => parseSafetensors(bytes.subarray(0, bytes.length - 3), "m.safetensors")).toThrow(
      /m\.safetensors: truncated: tensor model\.norm\.weight ends at byte 32 of the data, which has 29 bytes/,
    );
    expect(() => parseSafetensors(bytes.subarray(0, 5), "m.safetensors")).toThrow(/m\.safetensors: truncated/);
    expect(() => parseSafetensors(bytes.subarray(0, 20), "m.safetensors")).toThrow(
      /m\.safetensors: truncated: the header says/,
    );
  });

  it("names the file and the tensor of a bad header", () => {
    const garbage = rawFile([]);
    garbage.set(new TextEncoder().encode("{x"), 8);
    expect(() => parseSafetensors(garbage, "g.safetensors")).toThrow(/g\.safetensors: bad header: not JSON/);
    const wrongSpan = rawFile([{ name: "w", dtype: "F32", shape: [3], bytes: new Uint8Array(8) }]);
    expect(() => parseSafetensors(wrongSpan, "s.safetensors")).toThrow(
      /s\.safetensors: bad header: tensor w is F32 \[3\] \(12 bytes\) but its data_offsets span 8/,
    );
    const int8 = rawFile([{ name: "q", dtype: "I8", shape: [2], bytes: new Uint8Array(2) }]);
    expect(() => parseSafetensors(int8, "q.safetensors")).toThrow(
      /q\.safetensors: tensor q: dtype "I8" is not supported/,
    );
  });

  it("reads sharded checkpoints through the index, naming a missing shard and a missing tensor", async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, "a.safetensors"),
      encodeSafetensors([{ name: "x", shape: [1], values: Float32Array.of(1) }]),
    );
    await writeFile(
      join(dir, "b.safetensors"),
      encodeSafetensors([{ name: "y", shape: [1], values: Float32Array.of(2) }]),
    );
    const index = (map: Record<string, string>) =>
      writeFile(join(dir, INDEX_FILE), JSON.stringify({ metadata: {}, weight_map: map }));
    await index({ x: "a.safetensors", y: "b.safetensors" });
    const read = await readSafetensorsDir(dir);
    expect([...read.keys()].sort()).toEqual(["x", "y"]);
    expect(read.get("y")!.values[0]).toBe(2);

    await index({ x: "a.safetensors", y: "c.safetensors" });
    await expect(readSafetensorsDir(dir)).rejects.toThrow(
      /c\.safetensors: missing \(model\.safetensors\.index\.json puts tensor y there\)/,
    );
    await index({ x: "a.safetensors", z: "b.safetensors" });
    await expect(readSafetensorsDir(dir)).rejects.toThrow(/b\.safetensors: no tensor z/);
    await expect(readSafetensorsDir(await tempDir())).rejects.toThrow(SafetensorsError);
  });
});
