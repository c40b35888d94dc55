/**
 * A self-describing, exact byte format for named tensors (model weights, optimiser state):
 *   "FRLW" | u32 LE header length | header JSON { format: 1, kind, specs } | tf.io.encodeWeights data
 * The header lets a reader name exactly which tensor is missing or has the wrong shape.
 */
import * as tf from "@tensorflow/tfjs";

const MAGIC = "FRLW";
/** `kind` of a policy's weights (`Policy.exportWeights`). */
export const POLICY_WEIGHTS_KIND = "policy-weights";
const FORMAT = 1;

export class WeightsFormatError extends Error {
  override readonly name = "WeightsFormatError";
}

/**
 * A trainable variable holding `values`. The tensor it is made from is freed: tf.variable shares its
 * data, and the tensor's own reference would keep a second copy alive once the variable is assigned
 * new weights (a loaded checkpoint or an import then held every weight twice).
 */
export function trainableVariable(values: Float32Array, shape: readonly number[], name: string): tf.Variable {
  return tf.tidy(() => tf.variable(tf.tensor(values, shape as number[]), true, name));
}

export interface NamedTensor {
  readonly name: string;
  readonly tensor: tf.Tensor;
}

/**
 * `dtype: "float16"` stores float32 tensors as IEEE half floats (half the bytes, ~3 significant
 * digits; for shipping small checkpoints); the default is exact.
 */
export async function encodeNamedTensors(
  kind: string,
  tensors: readonly NamedTensor[],
  dtype: "float32" | "float16" = "float32",
): Promise<Uint8Array> {
  const encoded = await tf.io.encodeWeights(tensors.map((t) => ({ name: t.name, tensor: t.tensor })));
  const { data, specs } = dtype === "float16" ? toFloat16(encoded) : encoded;
  const header = new TextEncoder().encode(JSON.stringify({ format: FORMAT, kind, specs }));
  const out = new Uint8Array(8 + header.length + data.byteLength);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(4, header.length, true);
  out.set(header, 8);
  out.set(new Uint8Array(data), 8 + header.length);
  return out;
}

/**
 * Decodes bytes from `encodeNamedTensors`. `source` names where the bytes came from (a file path)
 * in every error. The caller owns the returned tensors.
 */
export function decodeNamedTensors(bytes: Uint8Array, expectedKind: string, source: string): Map<string, tf.Tensor> {
  const fail = (why: string): never => {
    throw new WeightsFormatError(`${source}: ${why}`);
  };
  if (bytes.length < 8 || new TextDecoder().decode(bytes.subarray(0, 4)) !== MAGIC) {
    fail("not a factrl weights file (bad magic bytes)");
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (8 + headerLength > bytes.length) fail(`truncated: header says ${headerLength} bytes, file has ${bytes.length}`);
  let header: { format?: unknown; kind?: unknown; specs?: tf.io.WeightsManifestEntry[] };
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (error) {
    return fail(`unreadable header (${(error as Error).message})`);
  }
  if (header.format !== FORMAT) fail(`format ${String(header.format)}, expected ${FORMAT}`);
  if (header.kind !== expectedKind) fail(`holds "${String(header.kind)}", expected "${expectedKind}"`);
  const specs = header.specs ?? [];
  const bytesPer = (s: tf.io.WeightsManifestEntry) => (s.quantization?.dtype === "float16" ? 2 : 4);
  const expectedBytes = specs.reduce((sum, s) => sum + bytesPer(s) * s.shape.reduce((a, b) => a * b, 1), 0);
  // A copy, never a view: Node Buffers share one pooled ArrayBuffer, and decodeWeights reads `.buffer`.
  const data = new Uint8Array(bytes.subarray(8 + headerLength));
  if (data.byteLength !== expectedBytes) {
    fail(`data is ${data.byteLength} bytes, the header's tensors need ${expectedBytes} (truncated or corrupted)`);
  }
  const decoded = tf.io.decodeWeights(data.buffer, specs);
  return new Map(Object.entries(decoded));
}

/**
 * Checks that `decoded` holds exactly the tensors `expected` describes (names and shapes), and
 * throws one error listing every mismatch otherwise.
 */
export function checkTensorsMatch(
  decoded: ReadonlyMap<string, tf.Tensor>,
  expected: readonly { readonly name: string; readonly shape: readonly number[] }[],
  source: string,
): void {
  const problems: string[] = [];
  for (const { name, shape } of expected) {
    const got = decoded.get(name);
    if (!got) problems.push(`missing "${name}"`);
    else if (got.shape.join("x") !== shape.join("x")) {
      problems.push(`"${name}" has shape [${got.shape}], the model needs [${shape}]`);
    }
  }
  const known = new Set(expected.map((e) => e.name));
  for (const name of decoded.keys()) if (!known.has(name)) problems.push(`unexpected "${name}"`);
  if (problems.length > 0) throw new WeightsFormatError(`${source}: ${problems.join("; ")}`);
}

/** A policy's variables under their logical names, as `POLICY_WEIGHTS_KIND` bytes. */
export function encodePolicyWeights(variables: readonly tf.Variable[], names: readonly string[]): Promise<Uint8Array> {
  return encodeNamedTensors(
    POLICY_WEIGHTS_KIND,
    variables.map((tensor, i) => ({ name: names[i]!, tensor })),
  );
}

/**
 * Assigns `POLICY_WEIGHTS_KIND` bytes to a policy's variables once every tensor checks out (nothing
 * is assigned otherwise). `storedName` maps a variable's name to its name in the bytes; several
 * variables may read one stored tensor (MoT loading dense weights into every modality).
 */
export function assignPolicyWeights(
  variables: readonly tf.Variable[],
  names: readonly string[],
  bytes: Uint8Array,
  source: string,
  storedName: (name: string) => string = (name) => name,
): void {
  const decoded = decodeNamedTensors(bytes, POLICY_WEIGHTS_KIND, source);
  try {
    const expected = new Map(variables.map((v, i) => [storedName(names[i]!), v.shape] as const));
    checkTensorsMatch(
      decoded,
      [...expected].map(([name, shape]) => ({ name, shape })),
      source,
    );
    for (const [i, v] of variables.entries()) v.assign(decoded.get(storedName(names[i]!))!);
  } finally {
    for (const t of decoded.values()) t.dispose();
  }
}

/** float32 tensors → half floats, marked as tfjs float16 quantization so decodeWeights expands them. */
function toFloat16(encoded: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] }) {
  const floats = new Float32Array(encoded.data);
  const halves = new Uint16Array(floats.length);
  for (let i = 0; i < floats.length; i++) halves[i] = float32ToFloat16(floats[i]!);
  for (const spec of encoded.specs) {
    if (spec.dtype !== "float32")
      throw new WeightsFormatError(`float16 storage needs float32 tensors, ${spec.name} is ${spec.dtype}`);
  }
  const specs = encoded.specs.map((s) => ({ ...s, quantization: { dtype: "float16" as const } }));
  return { data: halves.buffer, specs };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary32 → binary16, round to nearest even; overflow → ±Inf. */
export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0); // Inf / NaN
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to ±0
    mantissa |= 0x800000; // subnormal half: shift the implicit bit in
    const shift = 14 - e;
    const half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    return sign | (half + (rest > midpoint || (rest === midpoint && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}
