// matMul rates on the wasm backend, its own kernels vs the native GEMM (OpenBLAS, 1 and 2 threads),
// for the products of a training step of the default model (d = 128, 4 heads, batch 64 × 96
// tokens): projections, their gradients (transposed operands) and batched attention products.
//
//   node bin/run-ts.mjs bench/gemm.ts [--reps 5]
//
// Rates use the best of `reps` runs (wall clock; the kernels are synchronous, no readback).
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../models/backend.ts";

const argv = process.argv.slice(2);
const REPS = argv.includes("--reps") ? Number(argv[argv.indexOf("--reps") + 1]) : 5;

type Product = { label: string; a: number[]; b: number[]; transposeA: boolean; transposeB: boolean };
const PRODUCTS: Product[] = [
  { label: "projection x·W", a: [6144, 128], b: [128, 128], transposeA: false, transposeB: false },
  { label: "MLP up x·W1", a: [6144, 128], b: [128, 512], transposeA: false, transposeB: false },
  { label: "weight grad xᵀ·dy", a: [6144, 128], b: [6144, 512], transposeA: true, transposeB: false },
  { label: "input grad dy·W1ᵀ", a: [6144, 512], b: [128, 512], transposeA: false, transposeB: true },
  {
    label: "batched, plain (Q·Kᵀ if K were stored transposed)",
    a: [256, 96, 32],
    b: [256, 32, 96],
    transposeA: false,
    transposeB: false,
  },
  { label: "attention A·V; grad dQ = dS·K", a: [256, 96, 96], b: [256, 96, 32], transposeA: false, transposeB: false },
  {
    label: "attention grads dV = Aᵀ·dC, dK = dSᵀ·Q",
    a: [256, 96, 96],
    b: [256, 96, 32],
    transposeA: true,
    transposeB: false,
  },
  {
    label: "attention Q·Kᵀ (K stored like V); grad dA = dC·Vᵀ",
    a: [256, 96, 32],
    b: [256, 96, 32],
    transposeA: false,
    transposeB: true,
  },
];

function gflops(p: Product): number {
  const m = p.transposeA ? (p.a.at(-1) as number) : (p.a.at(-2) as number);
  const k = p.transposeA ? (p.a.at(-2) as number) : (p.a.at(-1) as number);
  const n = p.transposeB ? (p.b.at(-2) as number) : (p.b.at(-1) as number);
  const batch = p.a.length === 3 ? (p.a[0] as number) : 1;
  const a = tf.randomNormal(p.a, 0, 1, "float32", 1);
  const b = tf.randomNormal(p.b, 0, 1, "float32", 2);
  let best = Number.POSITIVE_INFINITY;
  for (let rep = 0; rep <= REPS; rep++) {
    const start = performance.now();
    const c = tf.matMul(a, b, p.transposeA, p.transposeB);
    const elapsed = performance.now() - start;
    c.dispose();
    if (rep > 0) best = Math.min(best, elapsed); // rep 0 warms up
  }
  tf.dispose([a, b]);
  return (2 * batch * m * n * k) / (best / 1000) / 1e9;
}

const plain = { loaded: false as const, reason: "benchmark: plain wasm" };
const columns = [
  { name: "wasm kernel", options: { loadNativeGemm: () => plain } },
  { name: "native, 1 thread", options: { threads: 1 } },
  { name: "native, 2 threads", options: { threads: 2 } },
];
const rates = new Map<string, number[]>();
for (const column of columns) {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} }, ...column.options });
  for (const p of PRODUCTS) rates.set(p.label, [...(rates.get(p.label) ?? []), gflops(p)]);
}

console.log(`| product | shapes | ${columns.map((c) => `${c.name} GFLOP/s`).join(" | ")} | native 1 thread ÷ wasm |`);
console.log(`|---|---|${columns.map(() => "---|").join("")}---|`);
for (const p of PRODUCTS) {
  const [wasm, one, ...rest] = rates.get(p.label) as number[];
  const shapes = `[${p.a}]${p.transposeA ? "ᵀ" : ""} · [${p.b}]${p.transposeB ? "ᵀ" : ""}`;
  const cells = [wasm, one, ...rest].map((r) => (r as number).toFixed(1)).join(" | ");
  console.log(`| ${p.label} | ${shapes} | ${cells} | ${((one as number) / (wasm as number)).toFixed(1)}× |`);
}
