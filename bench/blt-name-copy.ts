// Does a byte-level policy copy the asked entity's name from the prompt? (docs/models.md, "Teaching
// the copy"). For each checkpoint: 48 train-split and 29 eval-split bio prompts, each followed by
// `<think> The question is about `, decoded at temperature 0.05; a copy is the exact name then " ".
// Works on pretrained-only checkpoints too (they have seen the format only in name-echo documents).
//
//   node bin/run-ts.mjs bench/blt-name-copy.ts CHECKPOINT [CHECKPOINT ...]
//
// The control (`--dense-control STEPS OUT`): a dense byte LM of the BLT's global size (2 layers,
// d 128, full attention, RoPE) trained on name-echo documents only, with the BLT's optimiser and
// windows (Adam, lr 3e-3, 50 warm-up steps, cosine; 16 windows of 256 bytes), saved to OUT and probed.
// `--repeat-control STEPS`: the same dense byte LM on the plainest copy task (repeatControl).
import * as tf from "@tensorflow/tfjs";
import {
  createRng,
  generatePrompts,
  generateWorld,
  madeUpName,
  nameEchoDocuments,
  WORLD_SIZES,
} from "../envs/index.ts";
import { initBackend } from "../models/backend.ts";
import { BOS, decodeBytes, EOS, encodeBytes, PAD } from "../models/blt/index.ts";
import { DensePolicy } from "../models/dense.ts";
import {
  BYTE_TOKENIZER_RECORD,
  byteTextFormat,
  createOptimizer,
  loadCheckpoint,
  type Policy,
  saveCheckpoint,
} from "../models/index.ts";
import { DEFAULT_PRETRAIN, trainLanguageModel, windowBatches } from "../pretrain/index.ts";

await initBackend({ backend: "auto", measure: false, logger: { info: () => {} } });
const world = generateWorld(WORLD_SIZES.default);
const bio = generatePrompts(world).filter((p) => p.suite === "bio");
const PREFIX = encodeBytes("<think> The question is about ");

async function copies(policy: Policy, split: "train" | "eval", count: number): Promise<string> {
  const prompts = bio.filter((p) => p.split === split).slice(0, count);
  const result = await policy.sample(
    prompts.map((p) => Int32Array.from([...byteTextFormat.promptTokens(p.text), ...PREFIX])),
    { temperature: 0.05, maxNewTokens: 24, seed: 1 },
  );
  const texts = result.sequences.map((s) => decodeBytes(Array.from(s.tokens)));
  const copied = texts.filter((text, i) => text.startsWith(`${prompts[i]!.focus.entity} `)).length;
  return `${copied}/${prompts.length} (e.g. ${prompts[0]!.focus.entity} → ${texts[0]!.split(" .")[0]})`;
}

async function probe(label: string, policy: Policy): Promise<void> {
  console.log(`${label}: train ${await copies(policy, "train", 48)} · eval ${await copies(policy, "eval", 29)}`);
}

/** factrl pretrain's dense shape (the BLT's global size), on bytes. */
function denseByteLm(): DensePolicy {
  const { dModel, nLayers, nHeads, dFF } = DEFAULT_PRETRAIN.model;
  return new DensePolicy({
    backbone: "dense",
    vocabSize: 260,
    maxSeqLen: 1024,
    specialTokens: { pad: PAD, bos: BOS, eos: EOS, thinkOpen: PAD, thinkClose: PAD },
    initSeed: 1,
    dModel,
    nLayers,
    nHeads,
    dFF,
    positions: "rope",
  });
}

/** Trains `policy` on windows of `documents` (16 × 256 bytes a step, warm-up 50, cosine); `report` every 250 steps. */
async function train(
  policy: Policy,
  documents: readonly number[][],
  steps: number,
  learningRate: number,
  report: (step: number, loss: number) => void,
) {
  const settings = { learningRate, warmupSteps: 50, totalSteps: steps, clipNorm: 1 };
  const optimizer = createOptimizer(settings);
  await trainLanguageModel({
    ...settings,
    policy,
    optimizer,
    batchAt: windowBatches(Int32Array.from(documents.flat()), 16, 256, 1),
    evalBatches: [],
    evalEvery: 0,
    checkpointEvery: 0,
    onProgress: (p) => p.step % 250 === 0 && report(p.step, p.loss),
  });
  return optimizer;
}

async function denseControl(steps: number, out: string): Promise<Policy> {
  const documents = nameEchoDocuments(world, 20_000, 1).map((d) => [
    ...byteTextFormat.promptTokens(d.prompt),
    ...byteTextFormat.answerTokens(d.answer),
  ]);
  const policy = denseByteLm();
  const optimizer = await train(policy, documents, steps, 3e-3, (step, loss) =>
    console.log(`dense control step ${step}: loss ${loss.toFixed(3)}`),
  );
  await saveCheckpoint(out, { policy, optimizer, step: steps, tokenizer: BYTE_TOKENIZER_RECORD });
  optimizer.dispose();
  return policy;
}

/**
 * The plainest copy task: `NAMES . NAMES .`, NAMES two to four made-up names, so half of every
 * document is a copy. Reports the loss per byte of the first and of the second NAMES on 32 unseen
 * documents: with no copy they are equal; a perfect copy makes the second ≈ 0.
 */
async function repeatControl(steps: number): Promise<void> {
  const rng = createRng(5);
  const names = () => Array.from({ length: rng.int(2, 4) }, () => madeUpName(world, rng, "A B")).join(" , ");
  const repeatDocument = () => {
    const list = encodeBytes(names());
    return { tokens: [BOS, ...list, ...encodeBytes(" . "), ...list, ...encodeBytes(" ."), EOS], length: list.length };
  };
  const documents = Array.from({ length: 20_000 }, () => repeatDocument().tokens);
  const heldOut = Array.from({ length: 32 }, repeatDocument);
  const policy = denseByteLm();
  const halves = () => {
    const first: number[] = [];
    const second: number[] = [];
    for (const { tokens, length } of heldOut) {
      const { logProbs, mask } = policy.answerLogProbs({
        prompts: [Int32Array.from(tokens.slice(0, 1))],
        answers: [Int32Array.from(tokens.slice(1))],
      });
      const lp = Array.from(logProbs.dataSync());
      tf.dispose([logProbs, mask]);
      first.push(...lp.slice(0, length));
      second.push(...lp.slice(length + 3, 2 * length + 3));
    }
    const nats = (xs: number[]) => (-xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2);
    return `first copy ${nats(first)} nats/byte, second copy ${nats(second)}`;
  };
  const optimizer = await train(policy, documents, steps, 1e-3, (step, loss) =>
    console.log(`repeat control step ${step}: training loss ${loss.toFixed(3)}; held out: ${halves()}`),
  );
  optimizer.dispose();
}

const args = process.argv.slice(2);
if (args[0] === "--repeat-control") {
  await repeatControl(Number(args[1]));
} else if (args[0] === "--dense-control") {
  const policy = await denseControl(Number(args[1]), args[2] ?? "runs/dense-byte-control");
  await probe(`dense byte LM, ${args[1]} steps on name-echo documents`, policy);
} else {
  if (args.length === 0)
    throw new Error(
      "usage: bench/blt-name-copy.ts CHECKPOINT [CHECKPOINT ...] | --dense-control STEPS [OUT] | --repeat-control STEPS",
    );
  for (const dir of args) {
    const { policy } = await loadCheckpoint(dir);
    await probe(dir, policy);
    policy.dispose();
  }
}
