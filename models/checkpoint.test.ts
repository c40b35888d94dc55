import { mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initBackend } from "./backend.ts";
import { loadCheckpoint, recoverInterruptedSave, saveCheckpoint } from "./checkpoint.ts";
import { type DenseConfig, DensePolicy } from "./dense.ts";

const config: DenseConfig = {
  backbone: "dense",
  vocabSize: 30,
  maxSeqLen: 16,
  specialTokens: { pad: 0, bos: 1, eos: 2, thinkOpen: 3, thinkClose: 4 },
  initSeed: 5,
  dModel: 16,
  nLayers: 1,
  nHeads: 2,
  dFF: 32,
  positions: "rope",
};
const root = mkdtempSync(join(tmpdir(), "factrl-ckpt-"));

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

/** One Adam step on a next-token loss, so the optimiser has moments to save. */
function trainStep(policy: DensePolicy, optimizer: tf.Optimizer) {
  const tokens = Int32Array.of(1, 7, 8, 9, 2, 1, 10, 11, 12, 2);
  optimizer.minimize(
    () => {
      const { logProbs, mask } = policy.answerLogProbs({
        prompts: [tokens.subarray(0, 2), tokens.subarray(5, 7)],
        answers: [tokens.subarray(2, 5), tokens.subarray(7, 10)],
      });
      return tf.neg(tf.div(tf.sum(logProbs), tf.sum(mask))) as tf.Scalar;
    },
    false,
    policy.trainableVariables as tf.Variable[],
  );
}

describe("checkpoints", () => {
  const policy = new DensePolicy(config);
  const optimizer = tf.train.adam(1e-2);
  afterAll(() => policy.dispose());

  it("round-trips weights, optimiser state, step, config, tokenizer and trainer state exactly", async () => {
    trainStep(policy, optimizer);
    trainStep(policy, optimizer);
    const dir = join(root, "exact");
    const tokenizer = { words: ["<pad>", "<bos>", "a"] };
    await saveCheckpoint(dir, { policy, optimizer, step: 2, tokenizer, trainerState: { cursor: 17 } });

    const restoredOptimizer = tf.train.adam(1e-2);
    const loaded = await loadCheckpoint(dir, { optimizer: restoredOptimizer });
    expect(loaded.step).toBe(2);
    expect(loaded.tokenizer).toEqual(tokenizer);
    expect(loaded.trainerState).toEqual({ cursor: 17 });
    expect(loaded.policy.config).toEqual(config);
    loaded.policy.trainableVariables.forEach((v, i) => {
      expect(v.dataSync()).toEqual(policy.trainableVariables[i]!.dataSync());
    });
    const saved = await optimizer.getWeights();
    const restored = await restoredOptimizer.getWeights();
    expect(restored.length).toBe(saved.length);
    restored.forEach((w, i) => {
      expect(w.tensor.dataSync()).toEqual(saved[i]!.tensor.dataSync());
    });

    // The same next step from both: the restored optimiser continues, not restarts (a restarted
    // Adam would move every weight by ~lr = 1e-2). Not bit-exact: tfjs recomputes Adam's β^t on restore.
    trainStep(policy, optimizer);
    trainStep(loaded.policy as DensePolicy, restoredOptimizer);
    loaded.policy.trainableVariables.forEach((v, i) => {
      const expected = policy.trainableVariables[i]!.dataSync();
      for (const [j, x] of v.dataSync().entries()) expect(Math.abs(x - expected[j]!)).toBeLessThan(1e-6);
    });
    loaded.policy.dispose();
  });

  it("holds no tensor after saving the optimiser's state (its iteration count was leaked once per save)", async () => {
    trainStep(policy, optimizer);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await saveCheckpoint(join(root, "no-leak"), { policy, optimizer, step: i });
    expect(tf.memory().numTensors).toBe(before);
  });

  it("replaces an existing checkpoint whole, leaving no temp directories", async () => {
    const dir = join(root, "replace");
    await saveCheckpoint(dir, { policy, step: 1 });
    await saveCheckpoint(dir, { policy, step: 9 });
    expect((await loadCheckpoint(dir, { policy })).step).toBe(9);
    expect(readdirSync(root).filter((f) => f.startsWith(".replace"))).toEqual([]);
  });

  it("a save killed between its two renames is finished before the next load: the newer checkpoint, not none", async () => {
    // Found by the chaos suite: a learner SIGKILLed there left no checkpoint and restarted at step 0.
    const dir = join(root, "interrupted");
    await saveCheckpoint(dir, { policy, step: 2 });
    // What saveCheckpoint of step 3 leaves when killed after moving step 2 aside: both beside `dir`.
    await saveCheckpoint(join(root, ".interrupted.tmp-77-2000"), { policy, step: 3 });
    renameSync(dir, join(root, ".interrupted.old-77-2001"));
    expect(await recoverInterruptedSave(dir)).toBe(join(root, ".interrupted.tmp-77-2000"));
    expect((await loadCheckpoint(dir, { policy })).step).toBe(3);
    expect(readdirSync(root).filter((f) => f.startsWith(".interrupted"))).toEqual([]);

    // Killed while writing the new one (incomplete: no manifest yet) after the old one was moved
    // aside: the old one comes back.
    await saveCheckpoint(join(root, ".interrupted.tmp-78-3000"), { policy, step: 4 });
    writeFileSync(join(root, ".interrupted.tmp-78-3000", "manifest.json"), "{");
    renameSync(dir, join(root, ".interrupted.old-78-3001"));
    expect(await recoverInterruptedSave(dir)).toBe(join(root, ".interrupted.old-78-3001"));
    expect((await loadCheckpoint(dir, { policy })).step).toBe(3);
    expect(readdirSync(root).filter((f) => f.startsWith(".interrupted"))).toEqual([]);

    // Nothing was interrupted: nothing to do.
    expect(await recoverInterruptedSave(dir)).toBeUndefined();
    expect(await recoverInterruptedSave(join(root, "never-saved"))).toBeUndefined();
  });

  it("float16 storage halves weights.bin and stays within half precision", async () => {
    const full = join(root, "f32");
    const half = join(root, "f16");
    await saveCheckpoint(full, { policy, step: 0 });
    await saveCheckpoint(half, { policy, step: 0, weightsDtype: "float16" });
    const size = (dir: string) => readFileSync(join(dir, "weights.bin")).length;
    // 2 bytes saved per parameter, less the header's quantisation notes.
    expect(size(full) - size(half)).toBeGreaterThan(1.8 * policy.parameterCount());
    const loaded = await loadCheckpoint(half);
    loaded.policy.trainableVariables.forEach((v, i) => {
      const original = policy.trainableVariables[i]!.dataSync();
      for (const [j, x] of v.dataSync().entries()) {
        expect(Math.abs(x - original[j]!)).toBeLessThanOrEqual(Math.abs(original[j]!) / 1024 + 1e-7);
      }
    });
    loaded.policy.dispose();
  });

  it("a corrupted file fails naming the file and the mismatch", async () => {
    const dir = join(root, "corrupt");
    await saveCheckpoint(dir, { policy, step: 3 });
    const path = join(dir, "weights.bin");
    const bytes = readFileSync(path);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(path, bytes);
    await expect(loadCheckpoint(dir)).rejects.toThrow(`${path}: sha256`);
    writeFileSync(path, bytes.subarray(0, 100));
    await expect(loadCheckpoint(dir)).rejects.toThrow(`${path}: 100 bytes, manifest.json says`);
    writeFileSync(join(dir, "manifest.json"), "{ not json");
    await expect(loadCheckpoint(dir)).rejects.toThrow(`${join(dir, "manifest.json")}: unreadable`);
    await expect(loadCheckpoint(join(root, "absent"))).rejects.toThrow("no such checkpoint directory");
  });

  it("a checkpoint of another model shape is refused naming the differing fields", async () => {
    const dir = join(root, "mismatch");
    await saveCheckpoint(dir, { policy, step: 0 });
    const wider = new DensePolicy({ ...config, dFF: 48, nLayers: 2 });
    await expect(loadCheckpoint(dir, { policy: wider })).rejects.toThrow(
      /manifest\.json: the checkpoint's model config does not match the policy's: nLayers: checkpoint has 1, policy has 2; dFF: checkpoint has 32, policy has 48/,
    );
    wider.dispose();
  });
});
