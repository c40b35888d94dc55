#!/usr/bin/env node
// Builds native/ (the OpenBLAS GEMM addon for the wasm backend) at install time.
// Never fails the install: on any failure it says why and exits 0, and factrl runs on plain wasm.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const addonPath = join(nativeDir, "build", "Release", "factrl_gemm.node");
const say = (msg) => console.log(`[factrl native GEMM] ${msg}`);

function skip(reason) {
  say(`not built: ${reason}`);
  say("factrl will use the plain wasm matMul kernels (slower training; everything else works).");
  process.exit(0);
}

const flag = process.env.FACTRL_NATIVE_GEMM;
if (flag !== undefined && ["0", "false", "off", "no"].includes(flag.toLowerCase())) {
  skip(`disabled by FACTRL_NATIVE_GEMM=${flag}`);
}
if (process.platform !== "linux" && process.platform !== "darwin") {
  skip(`platform ${process.platform} is not supported`);
}

// node-gyp ships with npm; npm tells install scripts where it is.
function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
  ];
  return candidates.find((p) => p !== undefined && p !== "" && existsSync(p));
}

// Use the headers of the running node when they are installed (no download: may be offline).
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = join(dirname(process.execPath), "..");
  return existsSync(join(prefix, "include", "node", "node_api.h")) ? prefix : undefined;
}

const nodeGyp = findNodeGyp();
if (nodeGyp === undefined) skip("node-gyp not found (it ships with npm)");
const nodeDir = findNodeDir();
const args = [nodeGyp, "rebuild", "--directory", nativeDir, ...(nodeDir ? [`--nodedir=${nodeDir}`] : [])];
say(`building with ${nodeGyp}${nodeDir ? ` (node headers from ${nodeDir})` : ""}`);
const build = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 300_000 });
if (build.error !== undefined || build.status !== 0) {
  const output = `${build.stdout ?? ""}${build.stderr ?? ""}`;
  const cause = /cblas\.h|lopenblas/.test(output)
    ? "OpenBLAS not found (Debian/Ubuntu: apt-get install libopenblas-dev)"
    : (build.error?.message ?? `node-gyp exited with ${build.status}`);
  const tail = output.trim().split("\n").slice(-8).join("\n");
  skip(`${cause}\n${tail}`);
}

// A build that links but cannot load or compute is no better than none: check it now.
try {
  const addon = createRequire(import.meta.url)(addonPath);
  const heap = new Float32Array([1, 2, 3, 4, 5, 6, 0, 0]); // a = [1 2 3], b = [4 5 6]ᵀ
  addon.gemm(heap.buffer, 0, 12, 24, 1, 1, 1, 1, 3, false, false, 0, 0, 0);
  if (heap[6] !== 32) throw new Error(`self-test computed ${heap[6]}, expected 32`);
  say(`ok: ${addonPath} (${addon.blasConfig()})`);
} catch (error) {
  skip(`built but unusable: ${error.message}`);
}
