/**
 * LIMA-style supervised fine-tuning: about a thousand curated examples teach the answer format;
 * the knowledge comes from pretraining.
 *
 * Curation: prompts from the six suites' train splits, answers `<think> short reasoning </think>
 * canonical sentences` rendered from the knowledge base; each example is kept only if it is
 * well-formed, every claim in it is supported, it makes at least one claim, it fits the model, and
 * it has no unknown word. Examples are in the policy's text format (BLT: bytes;
 * models/prompt-format.ts). The selection is balanced round-robin over (suite, entity type), so it
 * is diverse across suites and types.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  analyzeAnswer,
  balancePool,
  ClaimVerifier,
  captionExamples,
  createTokenizer,
  type EntityType,
  generatePrompts,
  limaSelect,
  type Prompt,
  renderReference,
  type Suite,
  type WordTokenizer,
  type World,
  worldMetadata,
} from "../envs/index.ts";
import {
  checkpointWordTokenizer,
  createOptimizer,
  evidencePromptTokens,
  imageTokenizerOfRecord,
  isHuggingFaceTokenizerRecord,
  loadCheckpoint,
  mulberry32,
  type OptimizerSettings,
  type Policy,
  type PromptAnswerBatch,
  type Retriever,
  type TextFormat,
  textFormatFor,
  textFormatOfRecord,
  tokenizerRecordFor,
  wordTextFormat,
} from "../models/index.ts";
import { type TrainingProgress, type TrainingResult, trainLanguageModel } from "./pretrain.ts";
import {
  type CaptionSftExample,
  captionSftExamples,
  captionTokenizer,
  seededSample,
  type VisionPretraining,
} from "./pretrain-vision.ts";

/** How many of `items` fall under each key (a report's tallies). */
const countBy = <T>(items: readonly T[], key: (item: T) => string): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1;
  return out;
};

export interface SftExample {
  readonly prompt: Prompt;
  readonly entityType: EntityType;
  readonly answerText: string;
  readonly promptTokens: Int32Array;
  readonly answerTokens: Int32Array;
}

export interface CurationReport {
  readonly candidates: number;
  readonly selected: number;
  /** Why candidates were dropped, with counts. */
  readonly rejected: Readonly<Record<string, number>>;
  readonly bySuite: Readonly<Record<string, number>>;
  readonly byEntityType: Readonly<Record<string, number>>;
  readonly byBucket: Readonly<Record<string, number>>;
  /** Retrieval-augmented SFT: mean documents before each prompt, and mean prompt tokens with them. */
  readonly evidence?: { readonly k: number; readonly documents: number; readonly promptTokens: number };
}

/** What to curate: how many examples, how long at most, the seed, and how they are balanced and chosen. */
export interface SftCurationOptions {
  readonly count: number;
  readonly maxSeqLen: number;
  readonly seed: number;
  readonly balanceTailShare?: number;
  readonly selection?: SftSelection;
}

/** Curates up to `count` SFT examples from the train split. */
export function curateSftExamples(
  world: World,
  tokenizer: WordTokenizer,
  options: SftCurationOptions,
  /** The policy's text format (BLT: bytes); the world's words by default. */
  format: TextFormat = wordTextFormat(tokenizer),
): { examples: SftExample[]; report: CurationReport } {
  const verifier = new ClaimVerifier(world);
  const rejected: Record<string, number> = {};
  const reject = (why: string) => {
    rejected[why] = (rejected[why] ?? 0) + 1;
  };
  const { unk } = tokenizer.specialTokens;
  const candidates = generatePrompts(world).filter((p) => p.split === "train");
  const good: SftExample[] = [];
  const factsOf = new Map<SftExample, string[]>();
  for (const prompt of candidates) {
    const answerText = renderReference(world, prompt);
    const analysis = analyzeAnswer(verifier, answerText);
    if (!analysis.format.ok) {
      reject(`malformed: ${analysis.format.reason}`);
      continue;
    }
    if (analysis.contradicted + analysis.unverifiable > 0) {
      reject("has an unsupported claim");
      continue;
    }
    if (analysis.supported === 0) {
      reject("makes no claim");
      continue;
    }
    const promptIds = format.promptTokens(prompt.text);
    const answerIds = format.answerTokens(answerText);
    // Words outside the world's language are rejected whatever the format (a byte policy could spell them).
    if (tokenizer.encode(`${prompt.text} ${answerText}`).includes(unk)) {
      reject("unknown word");
      continue;
    }
    if (promptIds.length + answerIds.length > options.maxSeqLen) {
      reject("longer than maxSeqLen");
      continue;
    }
    const entityType = world.entities[prompt.focus.entityId]!.type;
    const example = { prompt, entityType, answerText, promptTokens: promptIds, answerTokens: answerIds };
    factsOf.set(example, [...new Set(analysis.claims.map((c) => `${c.relation}:${c.object}`))]);
    good.push(example);
  }
  const pool =
    options.balanceTailShare === undefined
      ? good
      : balancePool(
          good.map((e) => `${e.prompt.text} ${e.answerText}`),
          worldMetadata(world),
          { seed: options.seed, tailShare: options.balanceTailShare },
        ).kept.map((i) => good[i]!);
  if (pool.length < good.length) rejected["balanced out (MetaCLIP)"] = good.length - pool.length;
  const examples = SFT_SELECTIONS[options.selection ?? "round-robin"](pool, options.count, options.seed, factsOf);
  const tally = (key: (e: SftExample) => string) => countBy(examples, key);
  return {
    examples,
    report: {
      candidates: candidates.length,
      selected: examples.length,
      rejected,
      bySuite: tally((e) => e.prompt.suite),
      byEntityType: tally((e) => e.entityType),
      byBucket: tally((e) => e.prompt.bucket),
    },
  };
}

/**
 * How the SFT set is chosen from the curated candidates (`sft.selection`): `round-robin` over (suite,
 * entity type); `lima`, LIMA's diversity (envs `limaSelect`: near-duplicates out, then what adds the
 * most facts, entities and suite/relation pairs not yet covered); `random`, a seeded sample (the
 * ablation's baseline).
 */
export type SftSelection = "round-robin" | "lima" | "random";

const SFT_SELECTIONS: Readonly<
  Record<
    SftSelection,
    (
      pool: readonly SftExample[],
      count: number,
      seed: number,
      factsOf: ReadonlyMap<SftExample, string[]>,
    ) => SftExample[]
  >
> = {
  "round-robin": (pool, count, seed) => balancedSelection(pool, count, seed),
  lima: (pool, count, seed, factsOf) =>
    limaSelect(
      pool.map((e) => ({
        entity: e.prompt.focus.entity,
        suite: e.prompt.suite,
        facts: factsOf.get(e) ?? [],
        answer: e.answerText,
      })),
      count,
      seed,
    ).map((i) => pool[i]!),
  random: (pool, count, seed) => seededSample(pool, count, seed),
};

/** Round-robin over (suite, entity type) groups, each group in seeded random order. */
function balancedSelection(examples: readonly SftExample[], count: number, seed: number): SftExample[] {
  const random = mulberry32(seed);
  const groups = new Map<string, SftExample[]>();
  for (const e of examples) {
    const key = `${e.prompt.suite satisfies Suite}/${e.entityType}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const queues = [...groups.values()].map((g) => shuffle(g, random));
  const selected: SftExample[] = [];
  while (selected.length < count && queues.some((q) => q.length > 0)) {
    for (const queue of queues) {
      const next = queue.pop();
      if (next && selected.length < count) selected.push(next);
    }
  }
  return shuffle(selected, random);
}

function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface SftSettings extends OptimizerSettings {
  /** Curated examples wanted (LIMA: about 1,000). */
  readonly examples: number;
  /** MetaCLIP-balance the candidates (prompt and answer text) over the world's metadata first; absent: all of them. */
  readonly balanceTailShare?: number;
  /** How the set is chosen from the candidates (default round-robin over suite and entity type). */
  readonly selection?: SftSelection;
  /** Longest example kept (prompt + answer tokens); default the model's maxSeqLen. Activation memory grows with it. */
  readonly maxExampleLength?: number;
  /** Share of the curated examples held out for the eval loss. */
  readonly evalFraction: number;
  readonly batchSize: number;
  readonly evalEvery: number;
  readonly checkpointEvery: number;
  readonly seed: number;
}

export const DEFAULT_SFT: SftSettings = {
  examples: 1000,
  evalFraction: 0.05,
  batchSize: 16,
  learningRate: 5e-4,
  warmupSteps: 20,
  totalSteps: 300,
  clipNorm: 1,
  evalEvery: 50,
  checkpointEvery: 100,
  seed: 1,
};

/** Batches of whole examples; an epoch is a seeded shuffle, so step s's batch depends only on s. */
export function exampleBatches(
  examples: readonly Pick<SftExample, "promptTokens" | "answerTokens">[],
  batchSize: number,
  seed: number,
) {
  const perEpoch = Math.max(1, Math.floor(examples.length / batchSize));
  const epochs = new Map<number, Pick<SftExample, "promptTokens" | "answerTokens">[]>();
  return (step: number): PromptAnswerBatch => {
    const epoch = Math.floor(step / perEpoch);
    let order = epochs.get(epoch);
    if (!order) {
      order = shuffle(examples, mulberry32((seed * 7919 + epoch) >>> 0));
      epochs.clear();
      epochs.set(epoch, order);
    }
    const at = (step % perEpoch) * batchSize;
    const batch = order.slice(at, at + batchSize);
    return { prompts: batch.map((e) => e.promptTokens), answers: batch.map((e) => e.answerTokens) };
  };
}

/**
 * What SFT teaches: the tokenizer the checkpoint must have (its words), and the examples, in the
 * policy's format. FactWorld's answers by default (`curateSftExamples`); the caption task's for a
 * captioner (pretrain-vision.ts).
 */
export interface SftTask {
  readonly tokenizer: WordTokenizer;
  examples(
    format: TextFormat,
    options: SftCurationOptions,
  ): { examples: readonly Pick<SftExample, "promptTokens" | "answerTokens">[]; report: CurationReport };
}

/** FactWorld's own SFT task: curated answers to the six suites' training prompts. */
export const factWorldSftTask = (world: World): SftTask => {
  const tokenizer = createTokenizer(world);
  return { tokenizer, examples: (format, options) => curateSftExamples(world, tokenizer, options, format) };
};

/** Retrieval for training: the retriever, documents per prompt, and the seed of its query dropout. */
export interface SftRetrievalSettings {
  readonly retriever: Retriever;
  readonly k: number;
  readonly seed: number;
}

/**
 * Retrieval-augmented SFT (CM3Leon): FactWorld's curated examples, each prompt preceded by its top-k
 * documents retrieved for training (query dropout, seeded per example), as many as leave the answer
 * room in `maxSeqLen`. The answers are unchanged: the policy learns to answer from evidence.
 */
export function retrievalAugmentedSftTask(world: World, retrieval: SftRetrievalSettings): SftTask {
  const plain = factWorldSftTask(world);
  return {
    tokenizer: plain.tokenizer,
    examples(format, options) {
      const curated = curateSftExamples(world, plain.tokenizer, options, format);
      let documents = 0;
      const examples = curated.examples.map((example, i) => {
        const found = retrieval.retriever.retrieve(example.prompt.text, {
          k: retrieval.k,
          forTraining: true,
          seed: (retrieval.seed * 100_003 + i) | 0,
        });
        const budget = options.maxSeqLen - example.answerTokens.length;
        const conditioned = evidencePromptTokens(format, example.prompt.text, found, budget);
        documents += conditioned.documents;
        return { ...example, promptTokens: conditioned.tokens };
      });
      const n = Math.max(1, examples.length);
      const promptTokens = examples.reduce((sum, e) => sum + e.promptTokens.length, 0) / n;
      return {
        examples,
        report: { ...curated.report, evidence: { k: retrieval.k, documents: documents / n, promptTokens } },
      };
    },
  };
}

/** The caption task as SFT's task: its tokenizer and its training pictures' examples (see captionSftExamples). */
export function captionSftTask(world: World, vision: VisionPretraining): SftTask {
  const tokenizer = captionTokenizer(world);
  return {
    tokenizer,
    examples(format, options) {
      const candidates = captionExamples(world, vision.task).filter((e) => e.prompt.split === "train");
      const curated = captionSftExamples(candidates, format, tokenizer, {
        captions: vision.captions,
        maxSeqLen: options.maxSeqLen,
      });
      const examples = seededSample(curated.examples, options.count, options.seed);
      const tally = (key: (e: CaptionSftExample) => string) => countBy(examples, key);
      return {
        examples,
        report: {
          candidates: candidates.length,
          selected: examples.length,
          rejected: curated.rejected,
          bySuite: tally((e) => e.example.prompt.suite),
          byEntityType: tally((e) => e.example.truth.entity.type),
          byBucket: tally((e) => e.example.prompt.bucket ?? "all"),
        },
      };
    },
  };
}

export interface SftOutcome extends TrainingResult {
  readonly policy: Policy;
  readonly tokenizer: WordTokenizer;
  readonly curation: CurationReport;
  readonly checkpointDir: string;
  /** Step the run resumed from (0 for a fresh run). */
  readonly resumedFrom: number;
}

/**
 * Fine-tunes the policy in `fromCheckpoint` (a pretrained one, or one imported from Hugging Face,
 * whose examples are in its own tokenizer's format) on `task`'s examples (by default curated answers
 * about `world`), writing `checkpointDir`. Fresh optimiser state: SFT is a new phase.
 * If `checkpointDir` already holds a checkpoint, SFT resumes from it (weights, Adam state, step; the
 * batches depend only on the step), so an interrupted `factrl pretrain` picks up where it stopped.
 */
export async function finetune(
  world: World,
  fromCheckpoint: string,
  checkpointDir: string,
  settings: SftSettings,
  onProgress?: (progress: TrainingProgress) => void,
  task: SftTask = factWorldSftTask(world),
): Promise<SftOutcome> {
  const optimizer = createOptimizer(settings);
  const resume = existsSync(join(checkpointDir, "manifest.json"));
  const source = resume ? checkpointDir : fromCheckpoint;
  const loaded = await loadCheckpoint(source, resume ? { optimizer } : {});
  const { backbone } = loaded.policy.config;
  let tokenizer: WordTokenizer;
  let format: TextFormat;
  let record: unknown;
  try {
    if (isHuggingFaceTokenizerRecord(loaded.tokenizer)) {
      // A policy imported from Hugging Face reads and writes through its own tokenizer, which the
      // checkpoint keeps; the world's words still find the claims and the unknown words.
      tokenizer = task.tokenizer;
      format = textFormatOfRecord(backbone, loaded.tokenizer, source);
      record = loaded.tokenizer;
    } else {
      tokenizer = checkpointWordTokenizer(loaded.tokenizer, backbone, task.tokenizer, source);
      const image = imageTokenizerOfRecord(loaded.tokenizer, source);
      format = textFormatFor(backbone, tokenizer, image);
      record = tokenizerRecordFor(backbone, tokenizer, image);
    }
  } catch (error) {
    loaded.policy.dispose();
    optimizer.dispose();
    throw error;
  }
  const { examples, report } = task.examples(format, {
    count: settings.examples,
    maxSeqLen: Math.min(loaded.policy.config.maxSeqLen, settings.maxExampleLength ?? Number.POSITIVE_INFINITY),
    seed: settings.seed,
    ...(settings.balanceTailShare === undefined ? {} : { balanceTailShare: settings.balanceTailShare }),
    ...(settings.selection === undefined ? {} : { selection: settings.selection }),
  });
  const heldOut = Math.max(1, Math.round(examples.length * settings.evalFraction));
  const evalSet = examples.slice(0, heldOut);
  const trainSet = examples.slice(heldOut);
  const evalBatches: PromptAnswerBatch[] = [];
  for (let at = 0; at < evalSet.length; at += settings.batchSize) {
    const batch = evalSet.slice(at, at + settings.batchSize);
    evalBatches.push({ prompts: batch.map((e) => e.promptTokens), answers: batch.map((e) => e.answerTokens) });
  }
  const result = await trainLanguageModel({
    ...settings,
    policy: loaded.policy,
    optimizer,
    batchAt: exampleBatches(trainSet, settings.batchSize, settings.seed),
    evalBatches,
    checkpointDir,
    tokenizer: record,
    startStep: resume ? loaded.step : 0,
    ...(onProgress ? { onProgress } : {}),
  });
  optimizer.dispose();
  return {
    ...result,
    policy: loaded.policy,
    tokenizer,
    curation: report,
    checkpointDir,
    resumedFrom: resume ? loaded.step : 0,
  };
}
