/**
 * A self-describing, exact byte format for named tensors (model weights, optimiser state):
 *   "FRLW" | u32 LE header length | header JSON { format: 1, kind, specs } | tf.io.encodeWeights data
 * The header lets a reader name exactly which tensor is missing or has the wrong shape.
 */
import * as tf from "@tensorflow/tfjs";

const MAGIC = "FRLW";
const FORMAT = 1;

export class WeightsFormatError extends Error {
  override readonly name = "WeightsFormatError";
}

export interface NamedTensor {
  readonly name: string;
  readonly tensor: tf.Tensor;
}

export async function encodeNamedTensors(kind: string, tensors: readonly NamedTensor[]): Promise<Uint8Array> {
  const { data, specs } = await tf.io.encodeWeights(tensors.map((t) => ({ name: t.name, tensor: t.tensor })));
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
  const expectedBytes = specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  const data = bytes.slice(8 + headerLength);
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
