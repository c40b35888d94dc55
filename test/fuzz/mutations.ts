/**
 * Structure-aware mutations of real factrl messages, for the fuzz suite (test/fuzz.test.ts). A mutant
 * starts from a real message as it travels — its plain msgpack tree (typed arrays as `{dtype, data}`
 * maps, docs/protocol.md) or, for KV state, its JSON — and changes it the way a buggy or hostile
 * sender would: a field dropped or added, a value of the wrong type, NaN or an infinity in a number,
 * a huge string or array, a wrong type name or schema version, a bad dtype map; or its bytes are cut
 * short or flipped. Everything is a function of the seed, so a failing mutant can be rebuilt from the
 * seed and its index.
 */
import { createRng } from "../../envs/index.ts";
import { packWire, unpackPlain } from "../../messaging/wire.ts";

/** A deterministic random stream: FactWorld's seeded PRNG, drawing integers below a bound. */
export interface Random {
  /** In [0, 1). */
  readonly next: () => number;
  /** An integer in [0, n). */
  readonly int: (n: number) => number;
  readonly pick: <T>(items: readonly T[]) => T;
}

export function seededRandom(seed: number): Random {
  const rng = createRng(seed);
  return { next: () => rng.next(), int: (n) => rng.int(0, n - 1), pick: (items) => rng.pick(items) };
}

/** The kinds of mutation; a mutant says which it got, so a failure names it. */
export const MUTATION_KINDS = [
  "drop-field",
  "extra-field",
  "wrong-type",
  "non-finite",
  "huge-string",
  "huge-array",
  "bad-typed-array",
  "wrong-version",
  "wrong-message-type",
  "truncated",
  "flipped-bytes",
  "deep-nesting",
  "not-a-map",
] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export interface Mutant {
  readonly kind: MutationKind;
  /** Where in the message the change was made (`body.group.prompt`), for failure messages. */
  readonly where: string;
  readonly bytes: Uint8Array;
}

type Tree = Record<string, unknown> | unknown[];
type Path = readonly (string | number)[];

const isDtypeMap = (value: unknown): value is { dtype: unknown; data: unknown } =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  !(value instanceof Uint8Array) &&
  "dtype" in value &&
  "data" in value;

const isContainer = (value: unknown): value is Tree =>
  typeof value === "object" && value !== null && !(value instanceof Uint8Array);

/** Every path in `tree` (maps and lists, not into a dtype map's bytes), with its value; lists sampled. */
function paths(tree: unknown, prefix: Path = [], out: { path: Path; value: unknown }[] = []) {
  if (!isContainer(tree)) return out;
  const entries: [string | number, unknown][] = Array.isArray(tree)
    ? tree.slice(0, 3).map((item, i) => [i, item])
    : Object.entries(tree);
  for (const [key, value] of entries) {
    const path = [...prefix, key];
    out.push({ path, value });
    if (!isDtypeMap(value)) paths(value, path, out);
  }
  return out;
}

const parentOf = (tree: Tree, path: Path): Tree => {
  let node: unknown = tree;
  for (const key of path.slice(0, -1)) node = (node as Record<string | number, unknown>)[key];
  return node as Tree;
};

/** Sets an own property, even one named `__proto__` (an assignment would change the prototype). */
const setOwn = (node: object, key: string | number, value: unknown) => {
  Object.defineProperty(node, key, { value, enumerable: true, writable: true, configurable: true });
};

const setAt = (tree: Tree, path: Path, value: unknown) => setOwn(parentOf(tree, path), path.at(-1)!, value);

const deleteAt = (tree: Tree, path: Path) => {
  const parent = parentOf(tree, path);
  const key = path.at(-1)!;
  if (Array.isArray(parent) && typeof key === "number") parent.splice(key, 1);
  else delete (parent as Record<string, unknown>)[key as string];
};

/** A string of `length` characters, some of them multi-byte and control characters. */
const longString = (random: Random, length: number) => {
  const unit = ["a", "ü", "\u0000", "\n", "名", "😀", "<think>", " "][random.int(8)]!;
  return unit.repeat(Math.ceil(length / unit.length)).slice(0, length);
};

/** A value of some other type than `value`'s. */
function otherType(random: Random, value: unknown): unknown {
  const candidates: unknown[] = [
    "x",
    "",
    42,
    -1,
    0.5,
    2 ** 53 + 2,
    true,
    null,
    [],
    [1, "two", null],
    {},
    { nested: { deeper: [1] } },
    new Uint8Array([1, 2, 3]),
    { dtype: "int32", data: new Uint8Array(8) },
  ];
  for (;;) {
    const candidate = random.pick(candidates);
    if (typeof candidate !== typeof value || Array.isArray(candidate) !== Array.isArray(value)) return candidate;
  }
}

const NON_FINITE = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, Number.MAX_VALUE, 1e308 * 10];

/** Sizes of the huge strings and arrays: from large to near (and over) NATS' 1 MiB max_payload. */
const HUGE_SIZES = [10_000, 100_000, 1_100_000];

function hugeValue(random: Random, value: unknown): unknown {
  const size = random.pick(HUGE_SIZES);
  if (isDtypeMap(value)) {
    return { dtype: value.dtype, data: new Uint8Array(size - (size % 8)).fill(random.int(256)) };
  }
  if (Array.isArray(value)) {
    // Items repeat (one object, packed many times): the size, not the variety, is the point.
    const item = value[0] ?? random.pick([0, "x", null, {}]);
    return Array.from({ length: Math.max(2, Math.floor(size / packWire(item).byteLength)) }, () => item);
  }
  if (isContainer(value)) {
    return Object.fromEntries(Array.from({ length: Math.floor(size / 32) }, (_, i) => [`k${i}`, i]));
  }
  return longString(random, size);
}

function badTypedArray(random: Random): unknown {
  return random.pick<unknown>([
    { dtype: "int32", data: new Uint8Array(7) },
    { dtype: "float16", data: new Uint8Array(8) },
    { dtype: "__proto__", data: new Uint8Array(8) },
    { dtype: "constructor", data: new Uint8Array(8) },
    { dtype: 3, data: new Uint8Array(8) },
    { dtype: "float32", data: "not bytes" },
    { dtype: "float32", data: new Uint8Array(0) },
    { dtype: "float64", data: new Uint8Array(new Float64Array([Number.NaN, Number.POSITIVE_INFINITY]).buffer) },
    { dtype: "int64", data: new Uint8Array(16).fill(255) },
    { dtype: "uint8", data: new Uint8Array(5) },
  ]);
}

/** Stands for the deep value while the tree is packed (packing 5,000 levels would overflow our own stack). */
const DEEP_PLACEHOLDER = "\u0001deep-nesting\u0001";

/** msgpack (or JSON) of lists and maps nested `depth` deep, written byte by byte. */
function deeplyNested(depth: number, encoding: Encoding): Uint8Array {
  if (encoding === "json") return new TextEncoder().encode(`${"[".repeat(depth)}1${"]".repeat(depth)}`);
  const bytes: number[] = [];
  // fixarray of one item, or fixmap of one entry with key "a".
  for (let i = 0; i < depth; i++) bytes.push(...(i % 2 === 0 ? [0x91] : [0x81, 0xa1, 0x61]));
  bytes.push(0x01);
  return Uint8Array.from(bytes);
}

/** `packed` with the placeholder string's encoding replaced by `inner`. */
function splice(packed: Uint8Array, encoding: Encoding, inner: Uint8Array): Uint8Array {
  const marker =
    encoding === "msgpack" ? packWire(DEEP_PLACEHOLDER) : new TextEncoder().encode(JSON.stringify(DEEP_PLACEHOLDER));
  const at = Buffer.from(packed).indexOf(Buffer.from(marker));
  return Uint8Array.from([...packed.subarray(0, at), ...inner, ...packed.subarray(at + marker.length)]);
}

/** A mutation of a tree: changes it in place, returns where. */
function mutateTree(random: Random, tree: Tree, kind: MutationKind, envelopeFields: boolean): string {
  const all = paths(tree);
  const describe = (path: Path) => path.join(".") || "(top level)";
  const pickPath = (filter: (entry: { path: Path; value: unknown }) => boolean) => {
    const candidates = all.filter(filter);
    return candidates.length === 0 ? undefined : random.pick(candidates);
  };
  switch (kind) {
    case "drop-field": {
      const target = pickPath(() => true)!;
      deleteAt(tree, target.path);
      return describe(target.path);
    }
    case "extra-field": {
      const target = pickPath(({ value }) => isContainer(value) && !Array.isArray(value) && !isDtypeMap(value));
      const path = target?.path ?? [];
      const node = path.length === 0 ? tree : (target!.value as Tree);
      const key = random.pick(["extra", "__proto__", "constructor", "", "dtype", "body", "version", "k".repeat(300)]);
      setOwn(node, key, otherType(random, undefined));
      return `${describe(path)}.${key.slice(0, 20)}`;
    }
    case "wrong-type": {
      const target = pickPath(() => true)!;
      setAt(tree, target.path, otherType(random, target.value));
      return describe(target.path);
    }
    case "non-finite": {
      const target =
        pickPath(({ value }) => typeof value === "number") ?? pickPath(({ value }) => !isContainer(value))!;
      setAt(tree, target.path, random.pick(NON_FINITE));
      return describe(target.path);
    }
    case "huge-string": {
      const target = pickPath(({ value }) => typeof value === "string") ?? pickPath(() => true)!;
      setAt(tree, target.path, longString(random, random.pick(HUGE_SIZES)));
      return describe(target.path);
    }
    case "huge-array": {
      const target = pickPath(({ value }) => isContainer(value)) ?? pickPath(() => true)!;
      setAt(tree, target.path, hugeValue(random, target.value));
      return describe(target.path);
    }
    case "bad-typed-array": {
      const target = pickPath(({ value }) => isDtypeMap(value)) ?? pickPath(() => true)!;
      setAt(tree, target.path, badTypedArray(random));
      return describe(target.path);
    }
    case "wrong-version": {
      const version = random.pick<unknown>([0, -1, 999, 2 ** 40, 1.5, "3", null, Number.NaN]);
      if (envelopeFields) (tree as Record<string, unknown>).version = version;
      else setAt(tree, pickPath(() => true)!.path, version);
      return "version";
    }
    case "wrong-message-type": {
      const type = random.pick<unknown>(["Heartbeat", "ScoredGroup", "", "x".repeat(10_000), 7, null]);
      if (envelopeFields) (tree as Record<string, unknown>).type = type;
      else setAt(tree, pickPath(() => true)!.path, type);
      return "type";
    }
    case "deep-nesting": {
      const target = pickPath(() => true)!;
      setAt(tree, target.path, DEEP_PLACEHOLDER);
      return describe(target.path);
    }
    default:
      throw new Error(`not a tree mutation: ${kind}`);
  }
}

/** How a message travels: a factrl envelope in msgpack, or a KV value in JSON. */
export type Encoding = "msgpack" | "json";

/** A copy: `slice` of a Buffer (what msgpackr packs into) is a view, not a copy. */
const copyOf = (bytes: Uint8Array) => new Uint8Array(bytes);

/** The bytes of a mutant of `original` (a message's bytes as sent). */
export function mutate(random: Random, original: Uint8Array, encoding: Encoding, kind: MutationKind): Mutant {
  if (kind === "truncated") {
    const cut = random.int(original.byteLength);
    return { kind, where: `bytes 0..${cut} of ${original.byteLength}`, bytes: copyOf(original).subarray(0, cut) };
  }
  if (kind === "flipped-bytes") {
    const bytes = copyOf(original);
    const flips = 1 + random.int(8);
    for (let i = 0; i < flips; i++) bytes[random.int(bytes.length)] = random.int(256);
    return { kind, where: `${flips} bytes`, bytes };
  }
  if (kind === "not-a-map") {
    const value = random.pick<unknown>([null, 42, "a string", [1, 2, 3], true, new Uint8Array(4)]);
    return { kind, where: "(top level)", bytes: encode(value, encoding) };
  }
  const tree = decode(original, encoding) as Tree;
  const where = mutateTree(random, tree, kind, encoding === "msgpack");
  const bytes = encode(tree, encoding);
  if (kind !== "deep-nesting") return { kind, where, bytes };
  return { kind, where, bytes: splice(bytes, encoding, deeplyNested(random.pick([70, 500, 5_000]), encoding)) };
}

const decode = (bytes: Uint8Array, encoding: Encoding): unknown =>
  encoding === "msgpack" ? unpackPlain(bytes) : JSON.parse(new TextDecoder().decode(bytes));

/** JSON has no NaN, infinities, bytes or undefined: they become what JSON.stringify makes of them. */
const encode = (value: unknown, encoding: Encoding): Uint8Array =>
  encoding === "msgpack" ? packWire(value) : new TextEncoder().encode(JSON.stringify(value) ?? "null");

/** `count` mutants of `originals` (picked in turn), every kind in turn, from `seed`. */
export function mutants(seed: number, originals: readonly Uint8Array[], encoding: Encoding, count: number): Mutant[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) =>
    mutate(random, originals[i % originals.length]!, encoding, MUTATION_KINDS[i % MUTATION_KINDS.length]!),
  );
}
