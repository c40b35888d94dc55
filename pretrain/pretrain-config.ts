/**
 * The config of `factrl pretrain`: how the base policy is made (FactWorld pretraining → LIMA SFT →
 * factuality report → optional shipped copy). Every field has a documented default, so an empty
 * file is a valid config; unknown keys are errors. Model field names match the experiment
 * config's `model` section.
 */
import { Either, Schema } from "effect";
import YAML from "yaml";
import { CaptionTaskFields, formatProblems, resolveRawConfig, WorldFields } from "../configs/index.ts";

const PositiveInt = Schema.Int.pipe(Schema.positive());
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative());
const Share = Schema.Number.pipe(
  Schema.filter((f) => f >= 0 && f <= 1, { message: () => "Expected a number in [0, 1]" }),
);
const PositiveNumber = Schema.Number.pipe(Schema.positive());

const setting = <S extends Schema.Schema.AnyNoContext>(schema: S, value: Schema.Schema.Type<S>, description: string) =>
  Schema.optionalWith(schema, { default: () => value }).annotations({ description });
const section = <S extends Schema.Schema.AnyNoContext>(schema: S, description: string) =>
  Schema.optionalWith(schema, {
    default: () => Schema.decodeUnknownSync(schema)({}) as Schema.Schema.Type<S>,
  }).annotations({ description });

export const PretrainModel = Schema.Struct({
  backbone: setting(Schema.Literal("dense", "mot", "blt"), "dense", "Policy architecture."),
  dModel: setting(PositiveInt, 128, "Width of the residual stream."),
  layers: setting(PositiveInt, 2, "Transformer layers."),
  heads: setting(PositiveInt, 4, "Attention heads; must divide dModel."),
  dFF: setting(PositiveInt, 512, "Hidden width of the MLP."),
  maxSeqLen: setting(PositiveInt, 256, "Longest sequence (prompt + answer) in tokens."),
  positions: setting(Schema.Literal("rope", "learned"), "rope", "Position encoding."),
  hashBuckets: Schema.optional(PositiveInt).annotations({
    description: "BLT only: buckets per hashed n-gram table (default 4096; the bulk of a small BLT's weights).",
  }),
  localLayers: Schema.optional(PositiveInt).annotations({
    description: "BLT only: local encoder and decoder layers, each side (default 1).",
  }),
  localWindow: Schema.optional(PositiveInt).annotations({
    description:
      "BLT only: the local layers' causal attention window in bytes (default 64; the paper's models use 512).",
  }),
  patching: Schema.optional(Schema.Literal("entropy", "space")).annotations({
    description:
      "BLT only: patches from the entropy model, trained first (default), or one per word (space patching: no entropy stage).",
  }),
});

export const EntropyStage = Schema.Struct({
  steps: setting(PositiveInt, 300, "Optimiser steps of the entropy model."),
  batch: setting(PositiveInt, 16, "Windows per step."),
  seqLen: setting(PositiveInt, 128, "Bytes per window."),
  learningRate: setting(PositiveNumber, 3e-3, "Learning rate (Adam, constant)."),
  meanPatchLength: setting(
    Schema.Number.pipe(Schema.greaterThanOrEqualTo(1)),
    5,
    "Calibrate the threshold to patches of this many bytes on average.",
  ),
});

export const PretrainStage = Schema.Struct({
  steps: setting(NonNegativeInt, 1200, "Optimiser steps (0 skips pretraining; an existing checkpoint is resumed)."),
  batch: setting(PositiveInt, 32, "Windows per step."),
  seqLen: setting(PositiveInt, 128, "Tokens per window."),
  learningRate: setting(PositiveNumber, 2e-3, "Peak learning rate (warm-up, then cosine to 10 %)."),
  warmupSteps: setting(NonNegativeInt, 50, "Linear warm-up steps."),
  decaySteps: Schema.optional(PositiveInt).annotations({
    description:
      "Step where the cosine reaches its floor (default: steps); larger than steps = stop the schedule early.",
  }),
  clipNorm: setting(Schema.Number.pipe(Schema.nonNegative()), 1, "Gradient clipping by global norm (0: off)."),
  evalEvery: setting(NonNegativeInt, 100, "Held-out loss every this many steps (and at the end)."),
  checkpointEvery: setting(NonNegativeInt, 100, "Checkpoint every this many steps (and at the end)."),
  lowQualityRate: setting(
    Share,
    0,
    "Per sentence of the corpus, the chance that a low-quality line follows it (boilerplate, a repeated line, a " +
      "truncated sentence or a wrong fact, equally likely): something for pruneShare to find. 0: the corpus as always.",
  ),
  pruneShare: Schema.optional(Share).annotations({
    description:
      "Text-quality pruning (docs/curation.md): score every document (line filters weighted by a reference bigram " +
      "model's perplexity) and drop this share, the lowest first, before pretraining. Absent: keep every document.",
  }),
  balanceTailShare: Schema.optional(Share).annotations({
    description:
      "MetaCLIP-balance the corpus over the world's entity names and attribute values before training " +
      "(docs/curation.md): t holds this share of all matches, a document is kept with 1 − Π(1 − t / count). " +
      "Absent: the corpus as generated (head entities own about 70 % of it).",
  }),
  nameEchoDocuments: setting(
    NonNegativeInt,
    0,
    "BLT only: name-echo documents added to the training stream: a prompt about a made-up name, answered by copying it and abstaining (docs/models.md).",
  ),
  entropy: section(
    EntropyStage,
    "BLT only: the entropy model (trained first, then frozen) and its patching threshold.",
  ),
});

/** Retrieval-augmented SFT (CM3Leon): retrieved documents before each example's prompt. */
export const SftRetrieval = Schema.Struct({
  index: Schema.String.pipe(Schema.minLength(1)).annotations({
    description:
      "The retrieval index (`factrl retriever build` over the same world: refused when built for another one).",
  }),
  kind: setting(Schema.Literal("bm25", "dense"), "bm25", "The index's retriever (as retrieval.kind)."),
  k: setting(
    Schema.Int.pipe(Schema.between(1, 64, { message: () => "Expected an integer in [1, 64] (documents per prompt)" })),
    3,
    "Documents retrieved per prompt, most relevant first (whole documents dropped from the end to fit the example in maxLength).",
  ),
  queryDropout: setting(
    Schema.Number.pipe(Schema.filter((f) => f >= 0 && f <= 0.99, { message: () => "Expected a number in [0, 0.99]" })),
    0.2,
    "Query dropout (CM3Leon): the share of the query's words dropped when retrieving for training.",
  ),
});

export const SftStage = Schema.Struct({
  examples: setting(PositiveInt, 1000, "Curated examples (prompts from the train splits, answers from the KB)."),
  maxLength: Schema.optional(PositiveInt).annotations({
    description: "Longest example kept, prompt + answer tokens (default model.maxSeqLen; BLT: bytes, bounds memory).",
  }),
  balanceTailShare: Schema.optional(Share).annotations({
    description:
      "MetaCLIP-balance the candidate examples (prompt and answer text) over the world's names and values " +
      "before selecting (docs/curation.md); absent: every candidate that passes the checks.",
  }),
  selection: setting(
    Schema.Literal("round-robin", "lima", "random"),
    "round-robin",
    "How the examples are chosen from the curated candidates (docs/curation.md): round-robin over suite and " +
      "entity type; lima, LIMA's diversity (near-duplicate answers out, then what adds the most facts, entities " +
      "and suite/relation pairs not yet covered); random, a seeded sample.",
  ),
  steps: setting(NonNegativeInt, 300, "Optimiser steps (0 skips SFT)."),
  batch: setting(PositiveInt, 16, "Examples per step."),
  learningRate: setting(PositiveNumber, 5e-4, "Peak learning rate."),
  warmupSteps: setting(NonNegativeInt, 20, "Linear warm-up steps."),
  clipNorm: setting(Schema.Number.pipe(Schema.nonNegative()), 1, "Gradient clipping by global norm (0: off)."),
  retrieval: Schema.optional(SftRetrieval).annotations({
    description:
      "Retrieval-augmented SFT (CM3Leon, docs/retrieval.md): each example's prompt is preceded by its top-k " +
      "retrieved documents (query dropout applied), so the policy learns to answer from evidence, as rollouts with " +
      "rollout.retrieval give it. Absent: prompts alone.",
  }),
});

export const EvaluationStage = Schema.Struct({
  prompts: setting(NonNegativeInt, 256, "Eval-split prompts answered for the report (0 skips it)."),
  temperature: setting(PositiveNumber, 0.7, "Sampling temperature."),
  maxNewTokens: setting(PositiveInt, 192, "Token budget per answer."),
  batch: setting(PositiveInt, 32, "Prompts sampled together."),
});

export const ExportStage = Schema.Struct({
  dir: Schema.String.pipe(Schema.minLength(1)).annotations({ description: "Where the shipped copy goes." }),
  dtype: setting(Schema.Literal("float32", "float16"), "float16", "Weight storage of the shipped copy."),
});

/** A base captioner for the caption task (`factworld-vision`): docs/models.md "The base captioner". */
export const VisionStage = Schema.Struct({
  ...CaptionTaskFields,
  codebookSize: setting(
    PositiveInt,
    512,
    "Codes of the VQ image tokenizer (k-means over 4×4 patches); ids follow the words.",
  ),
  pictureDocuments: setting(
    NonNegativeInt,
    8000,
    "Picture–caption documents (entities by popularity, new renders) mixed into the pretraining stream with the text corpus.",
  ),
  captions: setting(
    Schema.Literal("realigned", "alt-text"),
    "realigned",
    "SFT targets: the alt-text re-aligned to the picture (Altogether) or the raw alt-text (the baseline).",
  ),
});

const Similarity = Schema.Number.pipe(
  Schema.filter((f) => f >= -1 && f <= 1, { message: () => "Expected a cosine similarity in [-1, 1]" }),
);
const Ratio = Schema.Number.pipe(
  Schema.filter((f) => f > 0 && f <= 1, { message: () => "Expected a number in (0, 1]" }),
);

export const ContrastiveEncoderFields = Schema.Struct({
  codebookSize: setting(
    PositiveInt,
    128,
    "Codes of the VQ image tokenizer the image tower reads (k-means over 4×4 patches).",
  ),
  embedding: setting(PositiveInt, 16, "Width of the image-token and word embeddings."),
  hidden: setting(PositiveInt, 128, "Hidden width of both towers."),
  shared: setting(PositiveInt, 64, "Width of the shared image–text space."),
  initialTemperature: setting(
    Schema.Number.pipe(Schema.greaterThan(0.01), Schema.lessThanOrEqualTo(1)),
    0.07,
    "Initial InfoNCE temperature τ (CLIP's 0.07); log(1/τ) is learned, capped at log 100.",
  ),
});

export const CitFields = Schema.Struct({
  curate: setting(
    PositiveInt,
    50,
    "Curate every this many steps: re-embed the metadata, take the next slice of the pool.",
  ),
  slice: setting(PositiveInt, 2000, "Pairs of the raw pool scanned per curation (the pool wraps around)."),
  threshold: setting(
    Similarity,
    0.5,
    "Keep the pairs whose text's highest cosine similarity to any metadata entry is strictly above this.",
  ),
  minRatio: setting(
    Ratio,
    0.1,
    "When a slice keeps fewer than this share, keep its top ⌊minRatio × slice⌋ by similarity instead.",
  ),
});

/** The contrastive image–text encoder and the data it sees: docs/curation.md "Curating the picture–caption pool". */
export const ContrastiveStage = Schema.Struct({
  data: setting(
    Schema.Literal("raw", "random", "metaclip", "cit"),
    "metaclip",
    "What the encoder trains on: the whole raw pool; a random subset the size of the MetaCLIP-curated one; the " +
      "MetaCLIP-curated subset; or CiT, curation inside training by the encoder's own text tower.",
  ),
  poolPairs: setting(
    PositiveInt,
    12000,
    "(picture, alt-text) pairs in the raw pool: entities by popularity, noisy alt-text.",
  ),
  tailShare: setting(
    Share,
    0.05,
    "MetaCLIP: t is the count below which metadata entries hold this share of all matches (for `metaclip` and " +
      "`random`); 0.05 keeps about 30 % of the default pool.",
  ),
  cit: section(CitFields, "CiT's curation (data: cit)."),
  encoder: section(ContrastiveEncoderFields, "The dual encoder's shape."),
  steps: setting(PositiveInt, 600, "Optimiser steps (an existing checkpoint in output is resumed)."),
  batch: setting(
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(2)),
    128,
    "Pairs per step (each pair's in-batch negatives: the others).",
  ),
  learningRate: setting(PositiveNumber, 3e-3, "Peak learning rate (Adam; warm-up, then cosine to 10 %)."),
  warmupSteps: setting(NonNegativeInt, 20, "Linear warm-up steps."),
  evalEvery: setting(NonNegativeInt, 100, "Zero-shot evaluation every this many steps (and at the end)."),
  checkpointEvery: setting(NonNegativeInt, 200, "Checkpoint every this many steps (and at the end)."),
  picturesPerEntity: setting(PositiveInt, 2, "Held-out pictures per entity for zero-shot classification."),
  targetAccuracy: Schema.optional(Share).annotations({
    description: "Report the steps and seconds until zero-shot entity top-1 (all pictures) first reaches this.",
  }),
});

const PretrainConfigFields = Schema.Struct({
  world: setting(
    Schema.Union(Schema.Literal("tiny", "default"), Schema.Struct(WorldFields)),
    "default",
    "The FactWorld to pretrain on: a size preset (`tiny`, `default`), or `{ size, seed, people, … }` to override " +
      "any of its options; an experiment on the policy names the same world in its `env` section.",
  ),
  init: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^hf:.+/, { message: () => "Expected hf:DIR, a Hugging Face model directory" })),
  ).annotations({
    description:
      'Start from a Hugging Face model directory (`hf:DIR`; Llama, Qwen2 — docs/models.md "Your own model") instead of a ' +
      "fresh policy: continued pretraining on the world's corpus read by the model's own tokenizer (pretrain.steps; " +
      "given with init; 0 skips it), SFT on the world's curated answers in that tokenizer, then the report and export. The " +
      "architecture is the model's: leave `model` out.",
  }),
  seed: setting(Schema.Int, 1, "Seed of weight init, data order and sampling."),
  backend: setting(Schema.Literal("auto", "tensorflow", "wasm", "cpu"), "auto", "tfjs backend (see docs/models.md)."),
  model: section(PretrainModel, "The policy's architecture."),
  pretrain: section(
    PretrainStage,
    "Next-token training on the FactWorld corpus (with init: continued pretraining of the imported model, the corpus read by its own tokenizer).",
  ),
  sft: section(SftStage, "LIMA-style fine-tuning on curated examples."),
  evaluation: section(EvaluationStage, "The factuality report of the final policy."),
  output: setting(Schema.String.pipe(Schema.minLength(1)), "runs/base-policy", "Checkpoints and report go here."),
  export: Schema.optional(ExportStage).annotations({ description: "Also save the final policy here (no optimiser)." }),
  contrastive: Schema.optional(ContrastiveStage).annotations({
    description:
      "Train a CLIP-style image–text encoder on the world's picture pool instead of a policy (docs/curation.md): " +
      "the other stages are not run.",
  }),
  vision: Schema.optional(VisionStage).annotations({
    description:
      "Make a captioner for the caption task (env.kind factworld-vision) instead of a text policy: image tokens, pictures in the stream, caption SFT.",
  }),
});
type PretrainConfigFields = typeof PretrainConfigFields.Type;

const DEFAULT_MODEL = JSON.stringify(Schema.decodeUnknownSync(PretrainModel)({}));
const DEFAULT_ENTROPY = JSON.stringify(Schema.decodeUnknownSync(EntropyStage)({}));

/**
 * What a Hugging Face start (`init: hf:DIR`) cannot do, as an error at the field: the architecture
 * is the model's own, it reads no pictures, and the byte-level (BLT) corpus settings have no bytes
 * to act on — the corpus stage reads the world's text through the model's own tokenizer.
 */
const hfInitProblem = (c: PretrainConfigFields) => {
  if (c.init === undefined) return undefined;
  if (JSON.stringify(c.model) !== DEFAULT_MODEL)
    return { path: ["model"], message: `The architecture is ${c.init}'s config.json: leave model out with init` };
  if (c.vision !== undefined)
    return { path: ["vision"], message: `${c.init} is a text model: it has no image tokens for the caption task` };
  if (JSON.stringify(c.pretrain.entropy) !== DEFAULT_ENTROPY)
    return {
      path: ["pretrain", "entropy"],
      message: `Entropy patching is the blt backbone's; ${c.init} reads the corpus in its own tokens: leave pretrain.entropy out with init`,
    };
  if (c.pretrain.nameEchoDocuments > 0)
    return {
      path: ["pretrain", "nameEchoDocuments"],
      message: `Name-echo documents are written in the blt backbone's bytes, not ${c.init}'s tokens: leave them out with init, actual ${c.pretrain.nameEchoDocuments}`,
    };
  return undefined;
};

/** A setting only the blt backbone has: an error at `path` when it is set for another backbone. */
const bltOnly =
  (path: readonly string[], isSet: (c: PretrainConfigFields) => boolean, what: string) => (c: PretrainConfigFields) =>
    !isSet(c) || c.model.backbone === "blt"
      ? undefined
      : { path, message: `Only the blt backbone ${what}, actual ${c.model.backbone}` };

/** A setting for a text policy's data only: an error at `path` when it is set with `vision`. */
const textOnly =
  (path: readonly string[], isSet: (c: PretrainConfigFields) => boolean, message: string) =>
  (c: PretrainConfigFields) =>
    c.vision === undefined || !isSet(c) ? undefined : { path, message };

export const PretrainConfig = PretrainConfigFields.pipe(
  Schema.filter(hfInitProblem),
  Schema.filter((c) =>
    c.model.dModel % c.model.heads === 0
      ? undefined
      : {
          path: ["model", "heads"],
          message: `Expected a divisor of model.dModel (${c.model.dModel}), actual ${c.model.heads}`,
        },
  ),
  Schema.filter(bltOnly(["model", "hashBuckets"], (c) => c.model.hashBuckets !== undefined, "has hashed n-grams")),
  Schema.filter(bltOnly(["model", "localLayers"], (c) => c.model.localLayers !== undefined, "has local layers")),
  Schema.filter(bltOnly(["model", "localWindow"], (c) => c.model.localWindow !== undefined, "has local layers")),
  Schema.filter(bltOnly(["model", "patching"], (c) => c.model.patching !== undefined, "has patches")),
  Schema.filter(
    bltOnly(["pretrain", "nameEchoDocuments"], (c) => c.pretrain.nameEchoDocuments > 0, "copies made-up names"),
  ),
  Schema.filter(
    textOnly(
      ["sft", "balanceTailShare"],
      (c) => c.sft.balanceTailShare !== undefined,
      "The caption task's SFT examples are not balanced over metadata; leave it out with vision",
    ),
  ),
  Schema.filter(
    textOnly(
      ["sft", "retrieval"],
      (c) => c.sft.retrieval !== undefined,
      "Retrieval-augmented SFT is for FactWorld's answers; the caption task has no retrieval index",
    ),
  ),
  Schema.filter(
    textOnly(
      ["sft", "selection"],
      (c) => c.sft.selection === "lima",
      "The caption task's SFT examples are a seeded sample; LIMA selection is for FactWorld's answers",
    ),
  ),
  Schema.filter((c) =>
    c.contrastive !== undefined && (c.vision !== undefined || c.init !== undefined)
      ? {
          path: ["contrastive"],
          message: "The contrastive encoder is trained instead of a policy: leave vision and init out",
        }
      : undefined,
  ),
  Schema.filter((c) =>
    c.vision !== undefined && c.model.backbone === "blt"
      ? {
          path: ["vision"],
          message: "A blt policy reads bytes: it has no image tokens to read pictures with (docs/backbones.md)",
        }
      : undefined,
  ),
);
export type PretrainConfig = typeof PretrainConfig.Type;

export class PretrainConfigError extends Error {
  override readonly name = "PretrainConfigError";
}

const decode = Schema.decodeUnknownEither(PretrainConfig, { errors: "all", onExcessProperty: "error" });

/**
 * With `init`, the corpus stage's defaults (1200 steps at 2e-3) are a fresh policy's and would wreck a
 * pretrained one: the number of corpus steps must be said (0: SFT only).
 */
function initWithoutSteps(raw: unknown): string | undefined {
  const config = (raw ?? {}) as { init?: unknown; pretrain?: { steps?: unknown } };
  if (config.init === undefined || config.pretrain?.steps !== undefined) return undefined;
  return (
    "pretrain.steps: with init, say how many corpus steps to continue pretraining for (0: SFT only); the " +
    "default 1200 steps at learning rate 2e-3 are for a fresh policy (docs/models.md)"
  );
}

/** Decodes a raw config; throws one error listing every bad field with its path. */
export function decodePretrainConfig(raw: unknown, source: string): PretrainConfig {
  const result = decode(raw ?? {});
  const missing = initWithoutSteps(raw);
  if (Either.isRight(result) && missing === undefined) return result.right;
  const problems = [...(Either.isLeft(result) ? formatProblems(result.left) : []), ...(missing ? [missing] : [])];
  throw new PretrainConfigError(`invalid pretrain config (${source}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
}

/** Reads a YAML file (with `extends:`) and `--set a.b=c` overrides (YAML values), then decodes it. */
export function loadPretrainConfig(file: string, set: readonly string[] = []): PretrainConfig {
  const raw = resolveRawConfig(file) as Record<string, unknown>;
  for (const assignment of set) {
    const eq = assignment.indexOf("=");
    if (eq <= 0) throw new PretrainConfigError(`--set ${assignment}: expected key=value, e.g. pretrain.steps=100`);
    const path = assignment.slice(0, eq).split(".");
    let node = raw;
    for (const key of path.slice(0, -1)) {
      if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path.at(-1)!] = YAML.parse(assignment.slice(eq + 1));
  }
  return decodePretrainConfig(raw, set.length > 0 ? `${file} with --set` : file);
}
