/**
 * Checkpoints: one directory holding everything needed to resume or to serve a policy.
 *
 *   manifest.json   format, step, model config, weights dtype, trainer state, and for every other
 *                   file its size and sha256 (so corruption is caught and named)
 *   weights.bin     the policy's weights (weights-file format)
 *   optimizer.bin   optimiser state (e.g. Adam's moments and step), names relative to the policy
 *   tokenizer.json  the tokenizer (whatever JSON the caller gives, e.g. its word list)
 *
 * Saving writes a sibling temp directory and renames it into place, so a crash mid-write never
 * replaces a good checkpoint with a half-written one; a crash between moving the old one aside and
 * renaming the new one in is finished by `recoverInterruptedSave` before the next load.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type * as tf from "@tensorflow/tfjs";
import type { Policy, PolicyConfigBase } from "./policy.ts";
import { buildPolicy } from "./registry.ts";
import { decodeNamedTensors, encodeNamedTensors, POLICY_WEIGHTS_KIND } from "./weights-file.ts";

const FORMAT = "factrl-checkpoint/1";
const OPTIMIZER_KIND = "optimizer-state";

export class CheckpointError extends Error {
  override readonly name = "CheckpointError";
}

export interface CheckpointManifest {
  readonly format: typeof FORMAT;
  readonly step: number;
  readonly config: PolicyConfigBase;
  readonly weightsDtype: "float32" | "float16";
  /** JSON the trainer wants back on resume (data cursor, RNG state, metrics so far…). */
  readonly trainerState: unknown;
  readonly files: Record<string, { readonly bytes: number; readonly sha256: string }>;
  readonly createdAt: string;
}

/**
 * What a checkpoint holds: a policy, or any model with named variables and exact weight bytes (the
 * contrastive encoder). Its config goes into the manifest as it is.
 */
export type CheckpointModel = Pick<
  Policy,
  "trainableVariables" | "variableNames" | "exportWeights" | "importWeights" | "dispose"
> & { readonly config: object };

export interface SaveCheckpointOptions {
  readonly policy: CheckpointModel;
  readonly step: number;
  readonly optimizer?: tf.Optimizer;
  readonly tokenizer?: unknown;
  readonly trainerState?: unknown;
  /** "float16" halves the weights' size (lossy; for shipped checkpoints). Default "float32" (exact). */
  readonly weightsDtype?: "float32" | "float16";
}

export async function saveCheckpoint(dir: string, options: SaveCheckpointOptions): Promise<void> {
  const { policy } = options;
  const weightsDtype = options.weightsDtype ?? "float32";
  const files = new Map<string, Uint8Array>();
  files.set("weights.bin", await policyWeights(policy, weightsDtype));
  if (options.optimizer) {
    const toLogical = logicalNamer(policy);
    const state = await options.optimizer.getWeights();
    files.set(
      "optimizer.bin",
      await encodeNamedTensors(
        OPTIMIZER_KIND,
        state.map((w) => ({ name: toLogical(w.name), tensor: w.tensor })),
      ),
    );
  }
  if (options.tokenizer !== undefined) files.set("tokenizer.json", utf8(JSON.stringify(options.tokenizer)));
  const manifest: CheckpointManifest = {
    format: FORMAT,
    step: options.step,
    config: policy.config as PolicyConfigBase,
    weightsDtype,
    trainerState: options.trainerState ?? null,
    files: Object.fromEntries(
      [...files].map(([name, bytes]) => [name, { bytes: bytes.length, sha256: sha256(bytes) }]),
    ),
    createdAt: new Date().toISOString(),
  };
  files.set("manifest.json", utf8(JSON.stringify(manifest, null, 2)));

  await mkdir(dirname(dir), { recursive: true });
  const temp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp);
  for (const [name, bytes] of files) await writeDurably(join(temp, name), bytes);
  // rename() cannot replace a non-empty directory: move the old one aside first, then drop it.
  const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}-${Date.now()}`);
  const hadOld = existsSync(dir);
  if (hadOld) await rename(dir, old);
  await rename(temp, dir);
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/** Is `dir` a checkpoint whose every listed file is there, at its listed size? (Digests: checked on load.) */
async function isComplete(dir: string): Promise<boolean> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as CheckpointManifest;
    for (const [name, { bytes }] of Object.entries(manifest.files)) {
      if ((await stat(join(dir, name))).size !== bytes) return false;
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Finishes a save a crash interrupted. `saveCheckpoint` writes the new checkpoint beside `dir`
 * (`.NAME.tmp-…`), moves the old one aside (`.NAME.old-…`) and renames the new one in: killed between
 * those renames, it leaves no checkpoint at `dir`, and a resume would start over from the initial
 * policy (seen in the chaos suite: a learner SIGKILLed there restarted at step 0). With no checkpoint
 * at `dir`, the newest complete one beside it — the new one, written in full before the renames, else
 * the old one — is renamed into place. The leftovers of interrupted saves are removed. Returns the
 * directory it put in place, if any. Only one process may save to `dir`.
 */
export async function recoverInterruptedSave(dir: string): Promise<string | undefined> {
  const parent = dirname(dir);
  // Nothing to recover where there is no directory (absent, or a file in its place: saving reports that).
  if (!(await stat(parent).catch(() => undefined))?.isDirectory()) return undefined;
  const stamp = (name: string) => Number(/-(\d+)$/.exec(name)?.[1] ?? 0);
  const leftovers = (prefix: string, entries: readonly string[]) =>
    entries
      .filter((name) => name.startsWith(`.${basename(dir)}.${prefix}-`))
      .sort((a, b) => stamp(b) - stamp(a))
      .map((name) => join(parent, name));
  const entries = await readdir(parent);
  const candidates = [...leftovers("tmp", entries), ...leftovers("old", entries)];
  let restored: string | undefined;
  if (!existsSync(join(dir, "manifest.json"))) {
    for (const candidate of candidates) {
      if (await isComplete(candidate)) {
        await rm(dir, { recursive: true, force: true });
        await rename(candidate, dir);
        restored = candidate;
        break;
      }
    }
  }
  for (const leftover of candidates) if (leftover !== restored) await rm(leftover, { recursive: true, force: true });
  return restored;
}

/**
 * Every weight the policy exports — not only the trainable ones: BLT's frozen entropy model and
 * calibrated threshold travel with it — stored as float32 (exact) or float16.
 */
async function policyWeights(policy: CheckpointModel, dtype: "float32" | "float16"): Promise<Uint8Array> {
  const exact = await policy.exportWeights();
  if (dtype === "float32") return exact;
  const tensors = decodeNamedTensors(exact, POLICY_WEIGHTS_KIND, "exported weights");
  try {
    return await encodeNamedTensors(
      POLICY_WEIGHTS_KIND,
      [...tensors].map(([name, tensor]) => ({ name, tensor })),
      dtype,
    );
  } finally {
    for (const tensor of tensors.values()) tensor.dispose();
  }
}

export interface LoadedCheckpoint<M extends CheckpointModel = Policy> {
  readonly policy: M;
  readonly manifest: CheckpointManifest;
  readonly step: number;
  /** Parsed tokenizer.json, or undefined when the checkpoint has none. */
  readonly tokenizer: unknown;
  readonly trainerState: unknown;
}

export interface LoadCheckpointOptions<M extends CheckpointModel = Policy> {
  /** Load into this policy (its config must match the checkpoint's); default: build one from the checkpoint. */
  readonly policy?: M;
  /** Restore optimiser state into this optimiser (must be the same kind that saved it). */
  readonly optimizer?: tf.Optimizer;
}

/** Reads and checks manifest.json; every problem names the file. */
export async function readCheckpointManifest(dir: string): Promise<CheckpointManifest> {
  const path = join(dir, "manifest.json");
  if (!existsSync(dir)) {
    const aside = existsSync(dirname(dir))
      ? (await readdir(dirname(dir))).filter((f) => f.startsWith(`.${basename(dir)}.old-`))
      : [];
    const hint = aside.length > 0 ? ` (a save was interrupted; the previous checkpoint is in ${aside[0]})` : "";
    throw new CheckpointError(`${dir}: no such checkpoint directory${hint}`);
  }
  let manifest: Partial<CheckpointManifest>;
  try {
    manifest = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new CheckpointError(`${path}: unreadable (${(error as Error).message})`);
  }
  if (manifest.format !== FORMAT) {
    throw new CheckpointError(`${path}: format is ${JSON.stringify(manifest.format)}, expected "${FORMAT}"`);
  }
  if (typeof manifest.step !== "number" || typeof manifest.config !== "object" || typeof manifest.files !== "object") {
    throw new CheckpointError(`${path}: missing step, config or files`);
  }
  return manifest as CheckpointManifest;
}

export async function loadCheckpoint<M extends CheckpointModel = Policy>(
  dir: string,
  options: LoadCheckpointOptions<M> = {},
): Promise<LoadedCheckpoint<M>> {
  const manifest = await readCheckpointManifest(dir);
  const read = async (name: string): Promise<Uint8Array | undefined> => {
    const entry = manifest.files[name];
    if (!entry) return undefined;
    const path = join(dir, name);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (error) {
      throw new CheckpointError(`${path}: listed in manifest.json but unreadable (${(error as Error).message})`);
    }
    if (bytes.length !== entry.bytes) {
      throw new CheckpointError(
        `${path}: ${bytes.length} bytes, manifest.json says ${entry.bytes} (truncated or corrupted)`,
      );
    }
    const digest = sha256(bytes);
    if (digest !== entry.sha256) {
      throw new CheckpointError(`${path}: sha256 ${digest} does not match manifest.json's ${entry.sha256} (corrupted)`);
    }
    return bytes;
  };
  if (options.policy) {
    // initSeed only decides fresh weights, which the checkpoint's replace.
    const differences = configDifferences(manifest.config, options.policy.config).filter(
      (d) => !d.startsWith("initSeed:"),
    );
    if (differences.length > 0) {
      throw new CheckpointError(
        `${join(dir, "manifest.json")}: the checkpoint's model config does not match the policy's: ${differences.join("; ")}`,
      );
    }
  }
  const weights = await read("weights.bin");
  if (!weights) throw new CheckpointError(`${join(dir, "manifest.json")}: lists no weights.bin`);
  // Without a model to load into, the manifest's config builds a policy.
  const policy = options.policy ?? (buildPolicy(manifest.config) as unknown as M);
  try {
    await policy.importWeights(weights, join(dir, "weights.bin"));
    if (options.optimizer) {
      const state = await read("optimizer.bin");
      if (!state) throw new CheckpointError(`${dir}: has no optimizer.bin to restore the optimiser from`);
      await restoreOptimizer(options.optimizer, policy, state, join(dir, "optimizer.bin"));
    }
  } catch (error) {
    if (!options.policy) policy.dispose();
    throw error;
  }
  const tokenizerBytes = await read("tokenizer.json");
  return {
    policy,
    manifest,
    step: manifest.step,
    tokenizer: tokenizerBytes ? JSON.parse(new TextDecoder().decode(tokenizerBytes)) : undefined,
    trainerState: manifest.trainerState,
  };
}

async function restoreOptimizer(optimizer: tf.Optimizer, policy: CheckpointModel, bytes: Uint8Array, source: string) {
  const toEngine = engineNamer(policy);
  const decoded = decodeNamedTensors(bytes, OPTIMIZER_KIND, source);
  // setWeights keeps the order given; the order saved is the optimiser's own (by variable).
  await optimizer.setWeights([...decoded].map(([name, tensor]) => ({ name: toEngine(name), tensor })));
  for (const tensor of decoded.values()) tensor.dispose();
}

/** Optimiser state is named after tf's variable names ("dense3/layer0/wq/m"): store the policy's logical ones. */
function logicalNamer(policy: CheckpointModel): (name: string) => string {
  const pairs = policy.trainableVariables
    .map((v, i) => [v.name, policy.variableNames[i]!] as const)
    .sort((a, b) => b[0].length - a[0].length);
  return (name) => {
    for (const [engine, logical] of pairs) {
      if (name === engine || name.startsWith(`${engine}/`)) return `@${logical}${name.slice(engine.length)}`;
    }
    return name;
  };
}

function engineNamer(policy: CheckpointModel): (name: string) => string {
  const byLogical = new Map(policy.variableNames.map((logical, i) => [logical, policy.trainableVariables[i]!.name]));
  const logicalNames = [...byLogical.keys()].sort((a, b) => b.length - a.length);
  return (name) => {
    if (!name.startsWith("@")) return name;
    const rest = name.slice(1);
    for (const logical of logicalNames) {
      if (rest === logical || rest.startsWith(`${logical}/`))
        return byLogical.get(logical)! + rest.slice(logical.length);
    }
    throw new CheckpointError(`optimizer state names unknown variable "${rest}"`);
  };
}

/** Human-readable differences between two configs, field by field (nested paths with dots). */
export function configDifferences(saved: unknown, wanted: unknown, path = ""): string[] {
  if (typeof saved === "object" && saved !== null && typeof wanted === "object" && wanted !== null) {
    const keys = new Set([...Object.keys(saved), ...Object.keys(wanted)]);
    return [...keys].flatMap((key) =>
      configDifferences(
        (saved as Record<string, unknown>)[key],
        (wanted as Record<string, unknown>)[key],
        path ? `${path}.${key}` : key,
      ),
    );
  }
  return saved === wanted
    ? []
    : [`${path}: checkpoint has ${JSON.stringify(saved)}, policy has ${JSON.stringify(wanted)}`];
}

async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
