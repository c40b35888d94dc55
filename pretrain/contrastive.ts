/**
 * The contrastive image–text encoder, trained by `factrl pretrain` (a config with a `contrastive`
 * section) on the world's web-like picture pool, on one of four data: the whole raw pool, a random
 * subset the size of the MetaCLIP-curated one, the MetaCLIP-curated subset (Xu et al., "Demystifying
 * CLIP Data"), or CiT — curation inside training (Xu et al., "CiT") — and evaluated zero-shot on
 * held-out pictures by popularity bucket. docs/curation.md "Curating the picture–caption pool".
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  ATTRIBUTES_OF_TYPE,
  attributePrompts,
  balancePool,
  CurationArgumentError,
  citSelect,
  entityPrompts,
  type MetadataEntry,
  type Picture,
  type PoolPair,
  pictureMetadata,
  popularityBucket,
  rawPicturePool,
  renderPicture,
  VISUAL_ATTRIBUTES,
  type VisualAttribute,
  type World,
  worldFromSpec,
  type ZeroShotPicture,
  zeroShotPictures,
} from "../envs/index.ts";
import {
  accumulateGradients,
  ContrastiveEncoder,
  codebookFromJson,
  codebookToJson,
  createOptimizer,
  encodePicture,
  learningRateAt,
  loadCheckpoint,
  mixSeed,
  mulberry32,
  normalizedEmbeddings,
  retrievalWords,
  saveCheckpoint,
  tokensPerPicture,
  trainVqCodebook,
  type VqCodebook,
  VqError,
} from "../models/index.ts";
import type { PretrainConfig } from "./pretrain-config.ts";
import { seededSample } from "./pretrain-vision.ts";

export type ContrastiveSettings = NonNullable<PretrainConfig["contrastive"]>;
export type ContrastiveData = ContrastiveSettings["data"];

/** A pool picture the codebook cannot tokenize: names the pair. */
export class PoolPictureError extends Error {
  override readonly name = "PoolPictureError";
}

/** The image tokens of pool pair `pair` (rendered now); an error naming the pair when the codebook cannot encode it. */
export function poolImageTokens(
  codebook: VqCodebook,
  pair: PoolPair,
  picture: Picture = renderPicture(pair.look, pair.seed),
): Int32Array {
  try {
    return encodePicture(codebook, picture);
  } catch (error) {
    if (error instanceof VqError) throw new PoolPictureError(`pool pair ${pair.id}: ${error.message}`);
    throw error;
  }
}

/**
 * The metadata as the current text tower sees it: per entry, the mean of its prompts' L2-normalised
 * embeddings, normalised again (CLIP's prompt ensembling). Row-major entries × shared.
 */
export async function metadataEmbeddings(
  encoder: ContrastiveEncoder,
  metadata: readonly MetadataEntry[],
): Promise<Float32Array> {
  if (metadata.length === 0) throw new CurationArgumentError("metadata", "the metadata list is empty");
  const empty = metadata.findIndex((m) => m.prompts.length === 0);
  if (empty >= 0) throw new CurationArgumentError("metadata", `entry "${metadata[empty]!.entry}" has no prompts`);
  const prompts = metadata.flatMap((m) => m.prompts);
  const each = await normalizedEmbeddings(() => encoder.embedTexts(prompts));
  const d = encoder.config.shared;
  const out = new Float32Array(metadata.length * d);
  let row = 0;
  metadata.forEach((m, i) => {
    for (let p = 0; p < m.prompts.length; p++, row++) for (let j = 0; j < d; j++) out[i * d + j]! += each[row * d + j]!;
  });
  normalizeInPlace(out, d);
  return out;
}

function normalizeInPlace(rows: Float32Array, d: number): void {
  for (let r = 0; r < rows.length / d; r++) {
    let norm = 0;
    for (let j = 0; j < d; j++) norm += rows[r * d + j]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let j = 0; j < d; j++) rows[r * d + j]! /= norm;
  }
}

/** Per row of `a` (n × d), the index of the row of `b` (m × d) with the highest dot product, and that product. */
function bestMatches(a: Float32Array, b: Float32Array, d: number, rows?: readonly number[]) {
  const n = a.length / d;
  const candidates = rows ?? Array.from({ length: b.length / d }, (_, i) => i);
  const best = new Int32Array(n);
  const score = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let top = Number.NEGATIVE_INFINITY;
    for (const c of candidates) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += a[i * d + j]! * b[c * d + j]!;
      if (dot > top) {
        top = dot;
        best[i] = c;
      }
    }
    score[i] = top;
  }
  return { best, score };
}

/**
 * One CiT curation: the texts' highest cosine similarity to any metadata entry (texts embedded by the
 * current text tower), and `citSelect`'s choice among them — indices into `texts`, increasing.
 */
export async function citCurate(
  encoder: ContrastiveEncoder,
  metadata: Float32Array,
  texts: readonly string[],
  threshold: number,
  minRatio: number,
): Promise<number[]> {
  const d = encoder.config.shared;
  if (metadata.length === 0) throw new CurationArgumentError("metadata", "the metadata list is empty");
  const embedded = await normalizedEmbeddings(() => encoder.embedTexts(texts));
  return citSelect(Array.from(bestMatches(embedded, metadata, d).score), threshold, minRatio);
}

type Buckets = { readonly all: number; readonly head: number; readonly torso: number; readonly tail: number };

export interface ZeroShotReport {
  readonly pictures: number;
  /** Top-1 accuracy naming the picture's entity among all entities ("a picture of NAME ."). */
  readonly entity: Buckets;
  /** Top-1 accuracy of each visual attribute the picture has, among that attribute's values, averaged. */
  readonly attribute: Buckets;
  readonly byAttribute: Readonly<Partial<Record<VisualAttribute, number>>>;
}

/** The held-out pictures, tokenized once. */
export interface ZeroShotSet {
  readonly pictures: readonly ZeroShotPicture[];
  readonly tokens: Int32Array;
}

export function zeroShotSet(world: World, codebook: VqCodebook, perEntity: number): ZeroShotSet {
  const pictures = zeroShotPictures(world, perEntity);
  const t = tokensPerPicture(codebook);
  const tokens = new Int32Array(pictures.length * t);
  pictures.forEach((p, i) => {
    tokens.set(encodePicture(codebook, renderPicture(p.look, p.seed)), i * t);
  });
  return { pictures, tokens };
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/**
 * Zero-shot classification (CLIP's): each held-out picture is given the entity whose prompts'
 * ensembled embedding is closest to the picture's, and for each attribute its type has, the closest
 * value among that attribute's; top-1 accuracy overall and by popularity bucket.
 */
export async function zeroShotEvaluate(
  encoder: ContrastiveEncoder,
  world: World,
  set: ZeroShotSet,
): Promise<ZeroShotReport> {
  const d = encoder.config.shared;
  const images = await normalizedEmbeddings(() => encoder.embedImages(set.tokens));
  const entities = await metadataEmbeddings(
    encoder,
    world.entities.map((e) => ({ entry: e.name, prompts: entityPrompts(e.name) })),
  );
  const named = bestMatches(images, entities, d).best;
  const entityHit = set.pictures.map((p, i) => (named[i] === p.entityId ? 1 : 0));
  const attributeHits: number[][] = set.pictures.map(() => []);
  const byAttribute: Partial<Record<VisualAttribute, number>> = {};
  for (const [type, attributes] of Object.entries(ATTRIBUTES_OF_TYPE)) {
    const rows = set.pictures.flatMap((p, i) => (p.look.type === type ? [i] : []));
    if (rows.length === 0) continue;
    const ofType = new Float32Array(rows.length * d);
    rows.forEach((r, k) => {
      ofType.set(images.subarray(r * d, (r + 1) * d), k * d);
    });
    for (const attribute of attributes) {
      const values = VISUAL_ATTRIBUTES[attribute].words as readonly string[];
      const classes = await metadataEmbeddings(
        encoder,
        values.map((v) => ({ entry: v, prompts: attributePrompts(attribute, v) })),
      );
      const chosen = bestMatches(ofType, classes, d).best;
      const hits = rows.map((r, k) => (values[chosen[k]!] === set.pictures[r]!.look.values[attribute] ? 1 : 0));
      rows.forEach((r, k) => {
        attributeHits[r]!.push(hits[k]!);
      });
      byAttribute[attribute] = mean(hits);
    }
  }
  const pictureAttribute = attributeHits.map(mean);
  const buckets = (score: readonly number[]): Buckets => {
    const of = (bucket: string) => mean(score.filter((_, i) => set.pictures[i]!.bucket === bucket));
    return { all: mean(score), head: of("head"), torso: of("torso"), tail: of("tail") };
  };
  return {
    pictures: set.pictures.length,
    entity: buckets(entityHit),
    attribute: buckets(pictureAttribute),
    byAttribute,
  };
}

export interface ContrastiveReport {
  readonly data: ContrastiveData;
  readonly steps: number;
  readonly batch: number;
  readonly parameters: number;
  readonly pool: {
    readonly pairs: number;
    /** Pairs matching no metadata entry (MetaCLIP drops them). */
    readonly unmatched: number;
    /** MetaCLIP's t and the curated subset's size. */
    readonly threshold: number | undefined;
    readonly curated: number;
    /** The pairs this run could draw from (CiT: every pair any curation kept). */
    readonly trainingPairs: number;
    /** CiT: pairs scanned by curations, and how many distinct ones it kept, as shares of the pool. */
    readonly scannedShare?: number;
    readonly keptShare?: number;
    /** The share of the pairs drawn from (CiT: every pair kept) whose entity is in each popularity bucket. */
    readonly buckets: { readonly head: number; readonly torso: number; readonly tail: number };
    /** CiT: each curation's step and how many of its slice it kept. */
    readonly curations?: readonly { readonly step: number; readonly kept: number }[];
  };
  readonly evaluations: readonly {
    readonly step: number;
    readonly seconds: number;
    readonly zeroShot: ZeroShotReport;
  }[];
  readonly final: ZeroShotReport;
  /** Steps and training seconds (evaluation excluded) until entity top-1 first reached `targetAccuracy`. */
  readonly target?: { readonly accuracy: number; readonly step?: number; readonly seconds?: number };
  readonly trainSeconds: number;
  readonly checkpoint: string;
}

export interface ContrastiveProgress {
  readonly step: number;
  readonly loss: number;
  readonly temperature: number;
  readonly zeroShot?: ZeroShotReport;
}

/** The pool's words, the prompts' words (lower-cased; digits-only words left out: file names' numbers). */
function vocabulary(pool: readonly PoolPair[], metadata: readonly MetadataEntry[]): string[] {
  const words = new Set<string>();
  for (const text of [...pool.map((p) => p.text), ...metadata.flatMap((m) => m.prompts)])
    for (const w of retrievalWords(text)) if (!/^\d+$/.test(w)) words.add(w);
  return [...words].sort();
}

/** The pairs a data choice draws from: indices into the pool (CiT: every pair, curated as training goes). */
function staticSource(
  data: ContrastiveData,
  pool: readonly PoolPair[],
  curated: readonly number[],
  seed: number,
): number[] {
  if (data === "metaclip") return [...curated];
  if (data === "random")
    return seededSample(
      pool.map((_, i) => i),
      curated.length,
      mixSeed(seed, 41),
    ).sort((a, b) => a - b);
  return pool.map((_, i) => i);
}

/**
 * Trains the encoder from `config.contrastive`, resuming a checkpoint in `config.output`, and writes
 * `report.json` there. Batches are drawn with replacement, seeded by step, so a resumed run draws
 * what the uninterrupted one would have.
 */
export async function trainContrastive(
  config: PretrainConfig,
  onProgress: (progress: ContrastiveProgress) => void = () => {},
): Promise<ContrastiveReport> {
  const s = config.contrastive;
  if (s === undefined) throw new Error("trainContrastive: the config has no contrastive section");
  const world = worldFromSpec(config.world);
  const pool = rawPicturePool(world, s.poolPairs, config.seed);
  const metadata = pictureMetadata(world);
  const balanced = balancePool(
    pool.map((p) => p.text),
    metadata.map((m) => m.entry),
    { seed: config.seed, tailShare: s.tailShare },
  );
  const checkpoint = join(config.output, "checkpoint");
  const resumed = existsSync(checkpoint);
  const codebook = resumed
    ? codebookFromJson(JSON.parse(await readFile(join(checkpoint, "tokenizer.json"), "utf8")))
    : trainVqCodebook(
        pool.slice(0, 1500).map((p) => renderPicture(p.look, p.seed)),
        { codebookSize: s.encoder.codebookSize, seed: config.seed, iterations: 15, maxPatches: 20_000 },
      );
  const encoder = new ContrastiveEncoder({
    backbone: "contrastive",
    imageVocab: codebook.size,
    imageTokens: tokensPerPicture(codebook),
    words: vocabulary(pool, metadata),
    ...s.encoder,
    initSeed: config.seed,
  });
  const schedule = { learningRate: s.learningRate, warmupSteps: s.warmupSteps, totalSteps: s.steps, clipNorm: 0 };
  const optimizer = createOptimizer(schedule);
  let start = 0;
  if (resumed) start = (await loadCheckpoint(checkpoint, { policy: encoder, optimizer })).step;
  const evaluation = zeroShotSet(world, codebook, s.picturesPerEntity);
  const tokens = new Map<number, Int32Array>();
  const imageTokensOf = (i: number) => {
    let t = tokens.get(i);
    if (t === undefined) {
      t = poolImageTokens(codebook, pool[i]!);
      tokens.set(i, t);
    }
    return t;
  };

  let source = staticSource(s.data, pool, balanced.kept, config.seed);
  const citKept = new Set<number>();
  let scanned = 0;
  const curations: { step: number; kept: number }[] = [];
  const curateAt = async (step: number) => {
    const round = Math.floor(step / s.cit.curate);
    const at = (round * s.cit.slice) % pool.length;
    const slice = Array.from({ length: Math.min(s.cit.slice, pool.length) }, (_, k) => (at + k) % pool.length);
    const chosen = await citCurate(
      encoder,
      await metadataEmbeddings(encoder, metadata),
      slice.map((i) => pool[i]!.text),
      s.cit.threshold,
      s.cit.minRatio,
    );
    scanned += slice.length;
    source = chosen.map((k) => slice[k]!);
    curations.push({ step, kept: source.length });
    for (const i of source) citKept.add(i);
  };

  const evaluations: { step: number; seconds: number; zeroShot: ZeroShotReport }[] = [];
  let trainMs = 0;
  let target: { accuracy: number; step?: number; seconds?: number } | undefined =
    s.targetAccuracy === undefined ? undefined : { accuracy: s.targetAccuracy };
  const evaluate = async (step: number) => {
    const zeroShot = await zeroShotEvaluate(encoder, world, evaluation);
    evaluations.push({ step, seconds: trainMs / 1000, zeroShot });
    if (target !== undefined && target.step === undefined && zeroShot.entity.all >= target.accuracy)
      target = { ...target, step, seconds: trainMs / 1000 };
    return zeroShot;
  };
  const save = (step: number) =>
    saveCheckpoint(checkpoint, {
      policy: encoder,
      step,
      optimizer,
      tokenizer: codebookToJson(codebook),
      trainerState: { madeBy: "factrl pretrain (contrastive)", data: s.data },
    });

  try {
    for (let step = start; step < s.steps; step++) {
      const began = performance.now();
      if (s.data === "cit" && (step % s.cit.curate === 0 || step === start)) await curateAt(step);
      const random = mulberry32(mixSeed(config.seed, 1000 + step));
      const batch = Array.from({ length: s.batch }, () => source[Math.floor(random() * source.length)]!);
      const images = new Int32Array(batch.length * encoder.config.imageTokens);
      batch.forEach((i, k) => {
        images.set(imageTokensOf(i), k * encoder.config.imageTokens);
      });
      const gradients = accumulateGradients(encoder);
      gradients.add(() =>
        encoder.loss(
          images,
          batch.map((i) => pool[i]!.text),
        ),
      );
      const { loss } = gradients.apply(optimizer, learningRateAt(step, schedule), 0);
      trainMs += performance.now() - began;
      const done = step + 1;
      const zeroShot =
        (s.evalEvery > 0 && done % s.evalEvery === 0) || done === s.steps ? await evaluate(done) : undefined;
      if ((s.checkpointEvery > 0 && done % s.checkpointEvery === 0) || done === s.steps) await save(done);
      const temperature = 1 / Math.min(100, Math.exp((await encoder.logScale.data())[0]!));
      onProgress({ step: done, loss, temperature, ...(zeroShot ? { zeroShot } : {}) });
    }
    const final = evaluations.at(-1)?.zeroShot ?? (await evaluate(start));
    const drawnFrom = s.data === "cit" ? [...citKept] : source;
    const share = (bucket: string) =>
      drawnFrom.filter((i) => popularityBucket(world.entities[pool[i]!.entityId]!) === bucket).length /
      Math.max(1, drawnFrom.length);
    const report: ContrastiveReport = {
      data: s.data,
      steps: s.steps,
      batch: s.batch,
      parameters: encoder.parameterCount(),
      pool: {
        pairs: pool.length,
        unmatched: balanced.unmatched,
        threshold: balanced.threshold,
        curated: balanced.kept.length,
        trainingPairs: drawnFrom.length,
        buckets: { head: share("head"), torso: share("torso"), tail: share("tail") },
        ...(s.data === "cit"
          ? { scannedShare: scanned / pool.length, keptShare: citKept.size / pool.length, curations }
          : {}),
      },
      evaluations,
      final,
      ...(target !== undefined ? { target } : {}),
      trainSeconds: trainMs / 1000,
      checkpoint,
    };
    await mkdir(config.output, { recursive: true });
    await writeFile(join(config.output, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    encoder.dispose();
    optimizer.dispose();
  }
}
