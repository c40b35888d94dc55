/**
 * A second, independent msgpack implementation for the wire-format tests: Python's standard `msgpack`
 * (Debian's python3-msgpack) driven through test/plain_msgpack.py, which refuses every extension
 * type. Values cross as a JSON view: a typed array is {$dtype, $values}, other bytes {$bytes}.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

// Debian's interpreter is the one apt's python3-msgpack installs into (a pyenv python3 may come first on PATH).
const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
const SCRIPT = join(import.meta.dirname, "plain_msgpack.py");

/** JSON has no -0: an array's -0 travels as "-0" (plain_msgpack.py reads it back). */
const keepNegativeZero = (key: string, value: unknown) =>
  key === "$values" ? (value as unknown[]).map((item) => (Object.is(item, -0) ? "-0" : item)) : value;

function runPython(mode: "decode" | "encode", items: readonly unknown[]): unknown[] {
  const input = JSON.stringify(items, keepNegativeZero);
  const run = spawnSync(PYTHON, [SCRIPT, mode], { input, encoding: "utf8" });
  if (run.error !== undefined) throw run.error;
  if (run.status !== 0) {
    const hint = /No module named 'msgpack'/.test(run.stderr) ? " (apt-get install -y python3-msgpack)" : "";
    throw new Error(`${PYTHON} plain_msgpack.py ${mode} failed${hint}: ${run.stderr}`);
  }
  return JSON.parse(run.stdout) as unknown[];
}

/** Each message as Python's msgpack reads it, in the JSON view ({$error} for one it cannot read). */
export const decodeWithPython = (messages: readonly Uint8Array[]): unknown[] =>
  runPython(
    "decode",
    messages.map((bytes) => Buffer.from(bytes).toString("base64")),
  );

/** Each JSON view packed by Python's msgpack (ints as msgpack ints: 64-bit ones from 2^32 up). */
export const encodeWithPython = (views: readonly unknown[]): Uint8Array[] =>
  runPython("encode", views).map((text) => new Uint8Array(Buffer.from(text as string, "base64")));

/** What Python should read for `value`: the JSON view, with undefined map values left out. */
export function jsonView(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: Array.from(value) };
  if (ArrayBuffer.isView(value)) {
    const dtype = value.constructor.name
      .replace(/Array$/, "")
      .replace("BigInt", "int")
      .replace("BigUint", "uint");
    return { $dtype: dtype.toLowerCase(), $values: Array.from(value as unknown as ArrayLike<number | bigint>, Number) };
  }
  if (Array.isArray(value)) return value.map((item) => (item === undefined ? null : jsonView(item)));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(
      Object.entries(value).flatMap(([key, item]) => (item === undefined ? [] : [[key, jsonView(item)]])),
    );
  }
  return value;
}
