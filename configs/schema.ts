/**
 * The experiment config: one Effect Schema per section, every field documented where it is declared
 * and given a default, so a minimal config is a single line (`experiment: my-run`).
 *
 * Each section is its own exported schema so the engineers who own that part of factrl can grow it
 * without touching the others. Unknown keys are errors (the loader decodes with
 * `onExcessProperty: "error"`): a typo must never be silently ignored.
 */
import { Schema } from "effect";
import { MAX_RETRIEVE_K } from "../messaging/index.ts";

// ── building blocks ──────────────────────────────────────────────────────────────────────────────

/** Refinement messages in Effect's own "Expected …, actual …" shape, so problems read alike. */
const expecting = (what: string) => ({
  message: (issue: { readonly actual: unknown }) => `Expected ${what}, actual ${JSON.stringify(issue.actual)}`,
});

const PositiveInt = Schema.Int.pipe(Schema.positive(expecting("an integer > 0")));
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative(expecting("an integer ≥ 0")));
const PositiveNumber = Schema.Number.pipe(Schema.positive(expecting("a number > 0")));
const NonNegativeNumber = Schema.Number.pipe(Schema.nonNegative(expecting("a number ≥ 0")));
const NonEmptyString = Schema.String.pipe(Schema.minLength(1, expecting("a non-empty string")));

/** A field with a default: optional in the YAML, always present in the decoded config. */
const setting = <S extends Schema.Schema.AnyNoContext>(
  schema: S,
  defaultValue: Schema.Schema.Type<S>,
  description: string,
) => Schema.optionalWith(schema, { default: () => defaultValue }).annotations({ description });

/** A nested section: omitted means "all of its defaults". */
const section = <S extends Schema.Schema.AnyNoContext>(schema: S, description: string) =>
  Schema.optionalWith(schema, {
    default: () => Schema.decodeUnknownSync(schema)({}) as Schema.Schema.Type<S>,
  }).annotations({ description });

/** A field with no default: absent means "not set" (e.g. no init checkpoint). */
const optional = <S extends Schema.Schema.AnyNoContext>(schema: S, description: string) =>
  Schema.optional(schema).annotations({ description });

/**
 * A path field says what must be there and which processes read it; configs/paths.ts checks every
 * one set in a config before anything starts (a missing checkpoint was otherwise found by the
 * learner 39 s in, after six crashes).
 *   file        a readable file
 *   checkpoint  a checkpoint directory (it has manifest.json)
 *   module      a reward module file (it must also load: the CLI imports it)
 *   directory   a directory factrl writes to: it exists, or can be created
 */
export const PathCheckId: unique symbol = Symbol.for("factrl/config/PathCheck");
export type PathKind = "file" | "checkpoint" | "module" | "directory";
/** A process that reads config paths: the launcher of `factrl run`, or an actor of a role. */
export type ConfigReader = RoleName | "launcher";
export interface PathCheck {
  readonly kind: PathKind;
  /** The processes that read it; absent: every process. */
  readonly readBy?: readonly ConfigReader[];
}

/** A path (relative ones are read from the working directory), checked at load time as `check` says. */
const pathString = (check: PathCheck) => NonEmptyString.annotations({ [PathCheckId]: check });

/** What a NATS server URL looks like, for error messages. */
export const NATS_URL_FORM = "nats://HOST:PORT or tls://HOST:PORT";

/**
 * Why `servers` (a NATS URL, or a comma-separated list of them) is not one the client can connect
 * to, or undefined. The client accepts nats:// and tls:// (or a bare HOST[:PORT], taken as
 * nats://); it refuses websocket URLs.
 */
export function natsUrlProblem(servers: string): string | undefined {
  const problems = servers.split(",").flatMap((server) => {
    const problem = natsServerProblem(server.trim());
    return problem === undefined ? [] : [problem];
  });
  return problems.length > 0 ? problems.join("; ") : undefined;
}

function natsServerProblem(server: string): string | undefined {
  if (server === "") return "an empty entry in the server list";
  const quoted = JSON.stringify(server);
  const scheme = /^([a-z][\w+.-]*):\/\//i.exec(server)?.[1]?.toLowerCase();
  if (scheme === "ws" || scheme === "wss")
    return `${quoted}: websocket URLs are not supported (factrl's NATS client speaks TCP)`;
  if (scheme !== undefined && scheme !== "nats" && scheme !== "tls") return `${quoted}: unknown scheme ${scheme}://`;
  if (scheme === undefined && /[/?#\s]/.test(server)) return `${quoted}: neither SCHEME://HOST:PORT nor HOST:PORT`;
  let url: URL;
  try {
    url = new URL(scheme === undefined ? `nats://${server}` : server);
  } catch {
    return `${quoted}: not a URL (a port is 1–65535)`;
  }
  if (url.hostname === "") return `${quoted}: no host`;
  if ((url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "")
    return `${quoted}: a server URL has no path, query or fragment`;
  if (url.port === "0") return `${quoted}: port 0 (a port is 1–65535)`;
  return undefined;
}

/**
 * Experiment ids become parts of NATS subjects, stream and bucket names and a directory name, so
 * they may not contain dots, wildcards, spaces or slashes.
 */
export const ExperimentId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, {
    message: (issue) =>
      `Expected an id of 1–64 letters, digits, '-' or '_' starting with a letter or digit (no dots, ` +
      `wildcards, spaces or slashes), actual ${JSON.stringify(issue.actual)}`,
  }),
).annotations({ identifier: "ExperimentId" });
export type ExperimentId = typeof ExperimentId.Type;

// ── actors ───────────────────────────────────────────────────────────────────────────────────────

const count = (defaultValue: number, description: string) => setting(NonNegativeInt, defaultValue, description);

/** How many processes of each role `factrl run` starts on this machine (more can join from other hosts). */
export const ActorCounts = Schema.Struct({
  curator: count(1, "Curators: pick prompts and keep at most curation.maxGroupsInFlight groups queued."),
  rollout: setting(
    Schema.Union(NonNegativeInt, Schema.Literal("auto")),
    "auto",
    "Rollout actors: sample rollout.groupSize answers per prompt with the current policy. `auto`: the " +
      'machine\'s cores less one per learner, at least one (docs/pipeline.md, "How many actors").',
  ),
  reward: setting(
    Schema.Union(NonNegativeInt, Schema.Literal("auto")),
    "auto",
    "Reward actors: score answers with the reward modules. `auto`: none when the rollout actors score " +
      "(rewards.scoredBy), else one.",
  ),
  learner: count(1, "Learners: GRPO updates from scored groups; publish weights."),
  evaluator: count(1, "Evaluators: score published policies on the evaluation suites."),
  monitor: count(1, "Monitors: collect metrics, show progress, write metrics JSONL."),
  echo: count(0, "Diagnostic workers that echo work-queue messages; for smoke tests of a deployment."),
  retriever: count(
    0,
    "Retrievers: answer `factrl.<exp>.retrieve` with documents from retrieval.index (docs/retrieval.md).",
  ),
});
export type ActorCounts = typeof ActorCounts.Type;
export type RoleName = keyof ActorCounts;
export const ROLE_NAMES = Object.keys(ActorCounts.fields) as readonly RoleName[];

// ── nats ─────────────────────────────────────────────────────────────────────────────────────────

/** The forms of credentials; an nkey or creds file is checked before start by the processes in `readBy`. */
const natsAuth = (readBy?: readonly ConfigReader[]) =>
  Schema.Union(
    Schema.Struct({ token: NonEmptyString.annotations({ description: "Shared token." }) }),
    Schema.Struct({
      user: NonEmptyString.annotations({ description: "User name." }),
      pass: Schema.String.annotations({ description: "Password." }),
    }),
    Schema.Struct({
      creds: pathString({ kind: "file", ...(readBy !== undefined ? { readBy } : {}) }).annotations({
        description: "Path to a .creds file (JWT + nkey seed).",
      }),
    }),
    Schema.Struct({
      nkey: pathString({ kind: "file", ...(readBy !== undefined ? { readBy } : {}) }).annotations({
        description: "Path to a file holding an nkey seed.",
      }),
    }),
  ).annotations({ identifier: "NatsAuth", description: "One of: {token} | {user, pass} | {creds} | {nkey}." });

export const NatsAuth = natsAuth();
export type NatsAuth = typeof NatsAuth.Type;

/**
 * Credentials per role: the processes of a role connect with its entry (and read replies on their
 * role's own inbox, `_INBOX.factrl.<experiment>.<role>`, which is all their permissions let them
 * read); `launcher` is `factrl run` and the commands that change a run (`scale`), `dashboard` the
 * read-only ones (`status`). A role without an entry uses `nats.auth`. `factrl nats auth` writes them.
 */
export const NatsRoleAuth = Schema.Struct({
  ...(Object.fromEntries(
    ROLE_NAMES.map((role) => [role, optional(natsAuth([role]), `Credentials of the ${role} actors.`)]),
  ) as Record<RoleName, ReturnType<typeof optional<ReturnType<typeof natsAuth>>>>),
  launcher: optional(natsAuth(["launcher"]), "Credentials of `factrl run` and `factrl scale`."),
  dashboard: optional(natsAuth([]), "Credentials of the read-only commands (`factrl status`)."),
});
export type NatsRoleAuth = typeof NatsRoleAuth.Type;
/** Who connects: a role, the launcher, or a read-only command. */
export type NatsUserKind = keyof NatsRoleAuth;

export const NatsTls = Schema.Struct({
  ca: optional(pathString({ kind: "file" }), "CA certificate (PEM file) to verify the server with."),
  cert: optional(pathString({ kind: "file" }), "Client certificate (PEM file), for mutual TLS."),
  key: optional(pathString({ kind: "file" }), "Client private key (PEM file), for mutual TLS."),
});

export const EmbeddedNats = Schema.Struct({
  port: setting(NonNegativeInt, 0, "Port of the embedded nats-server; 0 picks a free port."),
  storeDir: optional(
    pathString({ kind: "directory", readBy: ["launcher"] }),
    "JetStream store of the embedded server. Default: <output.dir>/<experiment>/nats, so a re-run resumes.",
  ),
});

export const NatsSection = Schema.Struct({
  url: optional(
    NonEmptyString.pipe(
      Schema.filter((url) => {
        const problem = natsUrlProblem(url);
        return problem === undefined ? undefined : `Expected ${NATS_URL_FORM}, actual ${problem}`;
      }),
    ),
    "Server(s) to connect to, comma-separated (nats://host:4222,…; nats:// or tls://). Absent: `factrl run` " +
      "starts an embedded server.",
  ),
  embedded: section(EmbeddedNats, "The local nats-server `factrl run` starts when `url` is absent."),
  auth: optional(NatsAuth, "Credentials; absent means none. Applied to the embedded server too (token, user/pass)."),
  roleAuth: optional(
    NatsRoleAuth,
    "Credentials per role (`factrl nats auth` writes them); a role without one uses auth.",
  ),
  replicas: setting(
    Schema.Literal(1, 3, 5),
    1,
    "Copies of every stream, consumer, KV bucket and blob: 1 on one server, 3 on a cluster (survives one node).",
  ),
  tls: optional(NatsTls, "TLS settings; absent means plain TCP (or TLS if the URL says tls://)."),
});
export type NatsSection = typeof NatsSection.Type;

// ── env ──────────────────────────────────────────────────────────────────────────────────────────

const Share = Schema.Number.pipe(Schema.filter((f) => f >= 0 && f <= 1, expecting("a number in [0, 1]")));

/**
 * A FactWorld: a size preset and any of its options overridden (envs/factworld WORLD_SIZES). The
 * experiment's `env` and `factrl pretrain`'s `world` take the same fields, so a base policy can be made
 * for any world and trained on it.
 */
export const WorldFields = {
  size: setting(
    Schema.Literal("tiny", "default"),
    "default",
    "World size preset (envs/factworld WORLD_SIZES): tiny for tests, default for experiments. The policy's " +
      "checkpoint must come from the same world (its tokenizer is the world's vocabulary).",
  ),
  seed: optional(Schema.Int, "Seed of the generated world; absent: the size preset's own seed."),
  people: optional(PositiveInt, "People in the world; absent: the preset's."),
  places: optional(PositiveInt, "Places; absent: the preset's."),
  organisations: optional(PositiveInt, "Organisations; absent: the preset's."),
  works: optional(PositiveInt, "Works; absent: the preset's."),
  confusableShare: optional(Share, "Share of each type with a one-syllable look-alike name; absent: the preset's."),
  zipfExponent: optional(
    Schema.Number.pipe(Schema.positive()),
    "Popularity of rank r ∝ 1 / r^s; absent: the preset's.",
  ),
};

/** The built-in generated knowledge world. */
export const FactWorldEnv = Schema.Struct({
  kind: Schema.Literal("factworld"),
  ...WorldFields,
  promptSeed: setting(Schema.Int, 1, "Seed of the prompt texts and of the train/eval split."),
  evalFraction: setting(
    Share,
    0.2,
    "Share of entities whose prompts are held out for evaluation (splits are disjoint by entity).",
  ),
  popularPrompts: setting(
    NonNegativeNumber,
    0,
    "Make the training prompts a prompt log: each repeated 1 + round(popularPrompts × its entity's popularity) " +
      "times, as real prompt sets ask about popular entities more (2000: head entities own 55 % of the pool). " +
      "0: one prompt per suite and entity. Evaluation prompts are never repeated (docs/curation.md).",
  ),
});

/** The generated alt-text's noise (envs/vision/alt-text.ts); each rate is in [0, 1], absent ones keep their defaults. */
export const AltTextNoise = Schema.Struct({
  emptyRate: optional(Share, "Chance that a picture has no alt-text at all (default 0.1)."),
  rightNameRate: optional(Share, "Chance that the alt-text names the picture's entity (default 0.75)…"),
  wrongNameRate: optional(Share, "…or another one, its look-alike when it has one (default 0.1); else nobody."),
  attributeRate: optional(Share, "Chance that each attribute of the picture is mentioned (default 0.4)."),
  wrongAttributeRate: optional(Share, "Chance that a mentioned attribute is wrong (default 0.2)."),
  factRate: optional(Share, "Chance of one fact the picture cannot show, about the named entity (default 0.3)."),
  wrongFactRate: optional(Share, "Chance that the fact is wrong (default 0.2)."),
  boilerplateRate: optional(Share, 'Chance of boilerplate, "IMG_2031.jpg free download |" (default 0.35).'),
}).pipe(
  Schema.filter((rates) => {
    const named = (rates.rightNameRate ?? 0.75) + (rates.wrongNameRate ?? 0.1);
    return named <= 1
      ? undefined
      : { path: ["wrongNameRate"], message: `Expected rightNameRate + wrongNameRate ≤ 1, actual ${named}` };
  }),
);

/**
 * The caption task's own fields: the experiment's `factworld-vision` env and `factrl pretrain`'s
 * `vision` section take the same ones, so a base captioner is made for the task it is trained on.
 */
export const CaptionTaskFields = {
  promptSeed: setting(Schema.Int, 1, "Seed of the train/eval split and of which pictures lose their alt-text."),
  evalFraction: setting(
    Share,
    0.2,
    "Share of entities whose pictures are held out for evaluation (disjoint by entity, as for factworld).",
  ),
  maxPicturesPerEntity: setting(
    PositiveInt,
    12,
    "Pictures of the most popular entity; the entity of rank r has round(max / r^zipfExponent), at least 1.",
  ),
  altText: optional(AltTextNoise, "How noisy the pictures' alt-text is; absent: the generator's defaults."),
  dropAltText: setting(
    Share,
    0.2,
    "Share of pictures whose alt-text is dropped from the prompt (suite caption-no-alt; the rest: suite caption).",
  ),
};

/** FactWorld's pictures: the caption task (Altogether), docs/factworld.md "The caption task". */
export const FactWorldVisionEnv = Schema.Struct({
  kind: Schema.Literal("factworld-vision"),
  ...WorldFields,
  ...CaptionTaskFields,
});

/** An external prompt set. */
export const JsonlEnv = Schema.Struct({
  kind: Schema.Literal("jsonl"),
  path: pathString({ kind: "file" }).annotations({
    description: "JSONL file, one prompt per line (relative to the cwd).",
  }),
  field: optional(NonEmptyString, "The prompt text's field; absent: `prompt` (LongFact's; FACTORY's is `question`)."),
  evalFraction: setting(
    Share,
    0.2,
    "Share of lines held out for evaluation (chosen by a hash of the line's id: the same on every host).",
  ),
});

/** An environment in a file of the user's (docs/environments.md). */
export const ModuleEnv = Schema.Struct({
  kind: Schema.Literal("module"),
  path: pathString({ kind: "file" }).annotations({
    description:
      "A .ts, .mts, .js or .mjs file whose default export is an Environment or `(options) => Environment` (relative to the cwd).",
  }),
  options: setting(
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    {},
    "Passed to the module's default export when it is a function.",
  ),
});

export const EnvSection = Schema.Union(FactWorldEnv, FactWorldVisionEnv, JsonlEnv, ModuleEnv).annotations({
  identifier: "Env",
  description:
    "Where prompts come from: `kind: factworld`, `kind: factworld-vision`, `kind: jsonl` or `kind: module` (envs/registry.ts).",
});
export type EnvSection = typeof EnvSection.Type;

// ── model ────────────────────────────────────────────────────────────────────────────────────────

export const ModelSection = Schema.Struct({
  backbone: setting(Schema.Literal("dense", "mot", "blt"), "dense", "Policy architecture: dense | mot | blt."),
  dModel: setting(PositiveInt, 128, "Width of the residual stream."),
  layers: setting(PositiveInt, 2, "Transformer layers."),
  heads: setting(PositiveInt, 4, "Attention heads; must divide dModel."),
  dFF: setting(PositiveInt, 512, "Hidden width of the feed-forward blocks."),
  maxSeqLen: setting(PositiveInt, 256, "Longest sequence (prompt + answer), in tokens."),
  positions: setting(Schema.Literal("rope", "learned"), "rope", "Position encoding: rope | learned."),
  init: optional(
    pathString({ kind: "checkpoint", readBy: ["learner"] }),
    "Checkpoint directory to start from (e.g. a pretrained policy), or `hf:DIR` for a Hugging Face model directory (Llama, Qwen2; docs/models.md); absent: random init.",
  ),
  backend: setting(
    Schema.Literal("auto", "tensorflow", "wasm", "cpu"),
    "auto",
    "tfjs backend: auto picks tensorflow (tfjs-node-gpu, tfjs-node) > wasm + native GEMM > wasm > cpu.",
  ),
  threads: setting(PositiveInt, 1, "BLAS threads per process for the native GEMM (actors share the machine)."),
  untie: setting(
    Schema.Literal("ffn", "ffn+attention", "all"),
    "all",
    "MoT only: parameter groups owned per modality (the paper's ablation): ffn | ffn+attention | all (norms too).",
  ),
  modalities: setting(
    Schema.Array(Schema.Literal("prompt", "reasoning", "answer", "image")),
    ["prompt", "reasoning", "answer"],
    "MoT only: modalities with weights of their own; must include prompt, reasoning and answer.",
  ),
}).pipe(
  Schema.filter((model) =>
    model.dModel % model.heads === 0
      ? undefined
      : { path: ["heads"], message: `Expected a divisor of dModel (${model.dModel}), actual ${model.heads}` },
  ),
);
export type ModelSection = typeof ModelSection.Type;

// ── rollout ──────────────────────────────────────────────────────────────────────────────────────

const FiniteNumber = Schema.Number.pipe(Schema.finite(expecting("a finite number")));

/** How rollouts choose tokens (models/decoding.ts); CFG and CD-K samples are off-policy (learner.offPolicy). */
export const DecodingSetting = Schema.Union(
  Schema.Struct({ kind: Schema.Literal("plain") }),
  Schema.Struct({
    kind: Schema.Literal("cfg"),
    scale: setting(FiniteNumber, 1.5, "Guidance scale: uncond + scale·(cond − uncond); 1 is the expert alone."),
  }),
  Schema.Struct({
    kind: Schema.Literal("cd-k"),
    alpha: setting(
      Schema.Number.pipe(Schema.filter((a) => a > 0 && a <= 1, expecting("a number in (0, 1]"))),
      0.1,
      "Plausibility: keep tokens with p_expert ≥ alpha · (the k-th largest p_expert).",
    ),
    k: setting(
      PositiveInt,
      1,
      "Which largest expert probability the head is measured from (1: classic contrastive decoding); at most the vocabulary size.",
    ),
  }),
).annotations({
  identifier: "Decoding",
  description:
    "`kind: plain` samples the policy; `cfg` (scale) and `cd-k` (alpha, k) contrast the expert stream (the prompt with its evidence) with the amateur (the prompt alone).",
});

export const RolloutRetrieval = Schema.Struct({
  k: setting(
    Schema.Int.pipe(
      Schema.between(1, MAX_RETRIEVE_K, expecting(`an integer in [1, ${MAX_RETRIEVE_K}] (documents per prompt)`)),
    ),
    3,
    "Documents retrieved per prompt, most relevant first; whole documents are dropped from the end when " +
      "they would leave fewer than rollout.maxNewTokens positions to answer in.",
  ),
  timeoutMs: setting(
    PositiveInt,
    2_000,
    "A retriever that has not answered by then (or answers with an error) leaves the prompt without " +
      "evidence: sampled as is and counted (rollout.retrieval.missed).",
  ),
  queryDropout: setting(
    Schema.Boolean,
    false,
    "Ask for training-time retrieval: the retriever drops retrieval.queryDropout of the query's words " +
      "(seeded by the group), so the policy learns from imperfect evidence (CM3Leon).",
  ),
});
export type RolloutRetrieval = typeof RolloutRetrieval.Type;

export const RolloutSection = Schema.Struct({
  groupSize: setting(
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(2, expecting("an integer ≥ 2"))),
    8,
    "G: answers sampled per prompt (GRPO needs at least 2 to compare).",
  ),
  temperature: setting(PositiveNumber, 1.0, "Sampling temperature."),
  topP: setting(
    Schema.Number.pipe(Schema.filter((p) => p > 0 && p <= 1, expecting("a number in (0, 1]"))),
    1.0,
    "Nucleus sampling mass; 1 disables it.",
  ),
  maxNewTokens: setting(PositiveInt, 128, "Longest answer, in tokens (reasoning included)."),
  batch: setting(PositiveInt, 4, "Prompts a rollout actor generates for at once."),
  decoding: setting(
    DecodingSetting,
    { kind: "plain" },
    'How answers are decoded: plain | cfg | cd-k (docs/models.md, "Guided decoding"). CFG and CD-K answers are ' +
      "not samples of the policy: their groups are marked, and learner.offPolicy says what the learner does with them.",
  ),
  retrieval: optional(
    RolloutRetrieval,
    "Retrieval-augmented rollouts (CM3Leon): the top-k documents for each prompt, asked of a retriever, are " +
      "prepended to it before sampling (docs/retrieval.md). Set: `factrl run` starts a retriever actor if " +
      "actors.retriever is 0; the serial runner opens retrieval.index in-process. Absent: prompts alone.",
  ),
});
export type RolloutSection = typeof RolloutSection.Type;

// ── learner ──────────────────────────────────────────────────────────────────────────────────────

export const LossAggregation = Schema.Literal("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm");

export const LearnerSection = Schema.Struct({
  lr: setting(PositiveNumber, 5e-5, "Adam learning rate."),
  epsLow: setting(NonNegativeNumber, 0.2, "ε_low: the ratio is clipped below at 1 − ε_low."),
  epsHigh: setting(NonNegativeNumber, 0.28, "ε_high: the ratio is clipped above at 1 + ε_high (clip-higher)."),
  klBeta: setting(NonNegativeNumber, 0, "β of the k3 KL penalty to the frozen reference policy; 0 turns it off."),
  lossAggregation: setting(
    LossAggregation,
    "token-mean",
    "How per-token losses become one number: token-mean | seq-mean-token-mean | seq-mean-token-sum-norm.",
  ),
  normalizeStd: setting(Schema.Boolean, true, "Divide advantages by the group's std (false = Dr. GRPO)."),
  maxPolicyLag: setting(
    NonNegativeInt,
    2,
    "Drop rollouts made by a policy more than this many versions old (2 lets rollouts run a credit window ahead).",
  ),
  offPolicy: setting(
    Schema.Struct({
      mode: setting(
        Schema.Literal("drop", "tis"),
        "drop",
        "What to do with groups sampled by CFG or CD-K: drop (counted as learner.drops.offPolicy) or tis " +
          "(train on them with truncated importance weights).",
      ),
      cap: setting(
        Schema.Number.pipe(Schema.filter((c) => c >= 1 && Number.isFinite(c), expecting("a finite number ≥ 1"))),
        2,
        "TIS's cap C: each token's loss is weighed by min(π_old / μ, C), μ the guided decoder's probability.",
      ),
    }),
    { mode: "drop", cap: 2 },
    "Groups whose answers were not sampled from the policy (rollout.decoding cfg / cd-k) (docs/pipeline.md).",
  ),
  updatesPerBatch: setting(PositiveInt, 1, "Optimiser steps per scored batch."),
  groupsPerStep: setting(PositiveInt, 8, "Scored groups per learner step."),
  microBatchAnswers: setting(
    NonNegativeInt,
    0,
    "Answers per forward/backward pass: the learner sums the gradients of micro-batches this size and steps " +
      "once — the same update up to float rounding, with one micro-batch's activations in memory (for long " +
      "answers, e.g. BLT's bytes). 0 = the whole batch in one pass.",
  ),
  totalSteps: setting(PositiveInt, 200, "Learner steps; the experiment ends after the last one."),
  publishEvery: setting(PositiveInt, 1, "Publish weights every this many steps."),
  checkpointEvery: setting(PositiveInt, 50, "Write a checkpoint every this many steps."),
  stallWarnMs: setting(
    PositiveInt,
    120_000,
    "When no step completes for this long, the learner logs an error (what it fetched and dropped since its " +
      "last step), publishes learner.stalledMs and sets stalledSince in its progress; again every this long.",
  ),
});
export type LearnerSection = typeof LearnerSection.Type;

// ── rewards ──────────────────────────────────────────────────────────────────────────────────────

const moduleFields = {
  weight: setting(Schema.Number, 1, "Weight of this term in the summed reward (default 1)."),
  options: setting(
    Schema.Record({ key: Schema.String, value: Schema.Unknown }),
    {},
    "Module-specific options, passed through unchanged (default none).",
  ),
};

/** One reward term, found by built-in name, by module file, as a NATS service or as an HTTP judge. */
export const RewardModuleRef = Schema.Union(
  Schema.Struct({ name: NonEmptyString.annotations({ description: "A built-in module." }), ...moduleFields }),
  Schema.Struct({
    path: pathString({ kind: "module", readBy: ["reward", "evaluator"] }).annotations({
      description: "A module file to import (.ts, .mts, .js, .mjs; relative to the cwd).",
    }),
    ...moduleFields,
  }),
  Schema.Struct({
    service: NonEmptyString.annotations({ description: "Name of a NATS service answering score requests." }),
    ...moduleFields,
  }),
  Schema.Struct({
    http: Schema.Struct({
      url: NonEmptyString.annotations({ description: "OpenAI-compatible endpoint (…/v1)." }),
      model: NonEmptyString.annotations({ description: "Judge model name." }),
      apiKeyEnv: optional(NonEmptyString, "Environment variable holding the API key."),
    }).annotations({ description: "An OpenAI-compatible judge." }),
    ...moduleFields,
  }),
).annotations({ identifier: "RewardModule", description: "One of: {name} | {path} | {service} | {http}." });
export type RewardModuleRef = typeof RewardModuleRef.Type;

export const RewardsSection = Schema.Struct({
  modules: setting(
    Schema.Array(RewardModuleRef),
    [
      { name: "format", weight: 1, options: {} },
      { name: "precision", weight: 1, options: {} },
      { name: "detail", weight: 0.1, options: {} },
      { name: "relevance", weight: 0.5, options: {} },
    ],
    "Reward terms and weights (the paper's P + λ·D + μ·R, plus the format penalty). μ = 0.5 because with " +
      "μ = 0.1 padding an answer with five true off-topic facts already beats the on-topic answer (docs/rewards.md).",
  ),
  reference: setting(
    Schema.Literal("initial-policy", "knowledge-base"),
    "initial-policy",
    "What the relevance judge compares an answer with: the initial policy's answer to the same prompt (the " +
      "paper's choice) or a reference answer rendered from the knowledge base.",
  ),
  scoredBy: setting(
    Schema.Literal("auto", "reward", "rollout"),
    "auto",
    "Who scores the answers: `reward` actors (a process of their own, fed by the rollouts queue), or each " +
      "`rollout` actor right after sampling, publishing scored groups itself (one process and one queue hop " +
      "fewer per group). `auto`: the rollout actors when every module runs in-process (`name` or `path`), " +
      "actors.reward is `auto` and no per-role credentials are set (they give a rollout actor no right to " +
      'publish scored groups); else reward actors (docs/pipeline.md, "Who scores").',
  ),
  timeoutMs: setting(PositiveInt, 30_000, "Give up on one module's score after this long."),
  retries: setting(NonNegativeInt, 2, "Retries of a failed remote score before the answer is counted as failed."),
});
export type RewardsSection = typeof RewardsSection.Type;

// ── curation ─────────────────────────────────────────────────────────────────────────────────────

/** CiT inside the RL loop: which prompts the curator keeps, by the current policy's embeddings. */
export const CitSettings = Schema.Struct({
  target: setting(
    Schema.Union(
      Schema.Literal("tail", "head"),
      Schema.Struct({
        entities: Schema.Array(NonEmptyString)
          .pipe(Schema.minItems(1, expecting("at least one name (empty metadata selects nothing)")))
          .annotations({ description: "The names to select prompts for (no knowledge base needed)." }),
      }),
    ),
    "tail",
    "The metadata prompts are selected for: `tail` / `head`, the names of the knowledge base's entities in that " +
      "popularity bucket; `{ entities: [NAME, …] }`, these names.",
  ),
  every: setting(
    PositiveInt,
    10,
    "Re-select every this many learner steps (and at the start), with the policy version current then.",
  ),
  threshold: setting(
    Schema.Number.pipe(Schema.filter((x) => x >= -1 && x <= 1, expecting("a number in [-1, 1]"))),
    0.95,
    "A prompt is kept when its highest cosine similarity to a metadata entry is strictly above this (the " +
      "quick start's base policy puts the median prompt at ≈ 0.94 to the tail's names: docs/curation.md).",
  ),
  minRatio: setting(
    Schema.Number.pipe(Schema.filter((x) => x > 0 && x <= 1, expecting("a number in (0, 1]"))),
    0.2,
    "When fewer than this share of the pool passes the threshold, the top ⌊minRatio × pool⌋ by similarity " +
      "are kept instead (CiT's floor).",
  ),
  templates: setting(
    Schema.Array(
      Schema.String.pipe(
        Schema.filter((t) => t.includes("{}"), expecting("a template with a name placeholder (a pair of braces)")),
      ),
    ).pipe(Schema.minItems(1, expecting("at least one template"))),
    ["{}", "Tell me about {} ."],
    "Each metadata entry is embedded through every template ({} = the name), the unit vectors averaged and " +
      "normalised again (CLIP's prompt ensembling).",
  ),
});
export type CitSettings = typeof CitSettings.Type;

export const CurationSection = Schema.Struct({
  strategy: setting(
    Schema.Literal("uniform", "balanced", "cit"),
    "uniform",
    "How the curator picks each prompt group's prompt (docs/curation.md): `uniform`, every training prompt " +
      "equally likely; `balanced`, MetaCLIP balancing over the knowledge base's entity names and attribute " +
      "values, counted over the prompts handed out so far (entries past the threshold t are handed out less). " +
      "Either way a pure function of the seed and the group's sequence number. `cit`, CiT: every " +
      "curation.cit.every learner steps the prompts closest to curation.cit.target by the current policy's " +
      "embeddings are selected, and handed out uniformly until the next selection.",
  ),
  cit: section(CitSettings, "`cit` only: what CiT selects for, how often, and how strictly (docs/curation.md)."),
  tailShare: setting(
    Share,
    0.3,
    "`balanced` only: t is the count below which metadata entries hold this share of all matches among the " +
      "prompts handed out (MetaCLIP's tail); a prompt whose entries are all above t is handed out with " +
      "probability 1 − Π(1 − t / count). Smaller cuts the head harder; 1 turns balancing off.",
  ),
  checks: setting(
    Schema.Literal("off", "report", "enforce"),
    "report",
    "FACTORY-style prompt checks (fact-seeking, answerable with curation.minFacts facts, unambiguous) on every " +
      "training prompt, against the knowledge base: `report` counts rejections by reason (curator metrics) and " +
      "lists them in runs/<experiment>/rejected-prompts.jsonl; `enforce` also never hands them out; `off` skips " +
      "the checks. An environment without a knowledge base is not checked.",
  ),
  minFacts: setting(
    PositiveInt,
    2,
    "A prompt is answerable when its entity has at least this many facts of the asked kinds.",
  ),
  maxGroupsInFlight: setting(
    PositiveInt,
    24,
    "Credit: at most this many prompt groups queued or being worked on (24 = 3 learner steps of 8 groups: " +
      "rollouts sample while the learner updates, and with maxPolicyLag 2 few groups arrive stale).",
  ),
});
export type CurationSection = typeof CurationSection.Type;

// ── evaluation ───────────────────────────────────────────────────────────────────────────────────

export const EvaluationSection = Schema.Struct({
  every: setting(NonNegativeInt, 50, "Evaluate every this many published policy versions; 0 turns it off."),
  seed: setting(Schema.Int, 1234, "Seed of the evaluation prompt sample (fixed, so runs are comparable)."),
  suites: optional(
    Schema.Array(NonEmptyString).pipe(Schema.minItems(1, expecting("at least one suite"))),
    "The environment's suites to evaluate, by name (FactWorld's six: docs/factworld.md); a name the " +
      "environment has no suite of is a config error. Absent: every suite.",
  ),
  promptsPerSuite: setting(PositiveInt, 64, "Prompts per suite per evaluation."),
  temperature: optional(
    PositiveNumber,
    "Sampling temperature of evaluation answers (the policy's and the SFT policy's); absent: rollout.temperature.",
  ),
});
export type EvaluationSection = typeof EvaluationSection.Type;

// ── retrieval ────────────────────────────────────────────────────────────────────────────────────

export const BiEncoderSection = Schema.Struct({
  dim: setting(PositiveInt, 64, "Embedding size d."),
  steps: setting(PositiveInt, 300, "Training steps (one batch each)."),
  batchSize: setting(
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(2, expecting("an integer ≥ 2"))),
    64,
    "(question, supporting document) pairs per batch: each question's in-batch negatives are the other documents.",
  ),
  learningRate: setting(PositiveNumber, 0.01, "Adam's learning rate."),
  temperature: setting(PositiveNumber, 0.05, "InfoNCE temperature τ."),
  seed: setting(Schema.Int, 1, "Seed of the initial embeddings and the batch order."),
});

export const RetrievalSection = Schema.Struct({
  kind: setting(
    Schema.Literal("bm25", "dense"),
    "bm25",
    "bm25: lexical (MiniSearch's BM25); dense: the bi-encoder trained by `factrl retriever build`.",
  ),
  index: setting(
    NonEmptyString,
    "runs/retrieval/index",
    "The index directory `factrl retriever build` writes and a retriever actor loads (refused when built for another world or tokenizer).",
  ),
  candidatesPerResult: setting(
    PositiveInt,
    4,
    "Candidates taken in relevance order per document returned, for the diversity rule to skip some.",
  ),
  maxSimilarity: setting(
    Share,
    0.9,
    "Diversity (CM3Leon): a candidate more similar than this to a document already chosen is skipped.",
  ),
  queryDropout: setting(
    Schema.Number.pipe(Schema.between(0, 0.99, expecting("a number in [0, 0.99]"))),
    0.2,
    "Query dropout (CM3Leon): the share of query words dropped when a request retrieves for training.",
  ),
  biEncoder: section(BiEncoderSection, "The dense retriever's bi-encoder (built by `factrl retriever build`)."),
});
export type RetrievalSection = typeof RetrievalSection.Type;

// ── runtime ──────────────────────────────────────────────────────────────────────────────────────

export const RestartPolicy = Schema.Struct({
  maxRestarts: setting(NonNegativeInt, 5, "Give up after this many restarts within windowMs."),
  windowMs: setting(PositiveInt, 60_000, "The window restarts are counted in."),
  baseDelayMs: setting(PositiveInt, 200, "First restart delay; doubles with each restart, with jitter."),
  maxDelayMs: setting(PositiveInt, 10_000, "Longest restart delay."),
});
export type RestartPolicy = typeof RestartPolicy.Type;

export const RuntimeSection = Schema.Struct({
  heartbeatMs: setting(
    Schema.Int.pipe(Schema.greaterThanOrEqualTo(100, expecting("an integer ≥ 100"))),
    2_000,
    "Actors announce themselves this often.",
  ),
  drainTimeoutMs: setting(PositiveInt, 10_000, "A draining actor hands back work it has not finished after this."),
  ackWaitMs: setting(
    PositiveInt,
    30_000,
    "Work handed to an actor that neither finishes it nor reports progress for this long (it died) is redelivered.",
  ),
  maxDeliveries: setting(PositiveInt, 5, "Attempts at one work item before it goes to the dead-letter subject."),
  restart: section(RestartPolicy, "Restarts of a crashing actor (in-process) and of an exited actor process."),
});
export type RuntimeSection = typeof RuntimeSection.Type;

// ── output ───────────────────────────────────────────────────────────────────────────────────────

export const OutputSection = Schema.Struct({
  dir: setting(
    pathString({ kind: "directory" }),
    "runs",
    "Where runs/<experiment>/ (config, metrics, checkpoints) is written.",
  ),
  lineageShare: setting(
    Share,
    1,
    "Share of the scored groups whose lineage (prompt, sampling and training versions, reward terms and " +
      "latency, fate) the learner records in runs/<experiment>/lineage.jsonl; chosen by group id. `factrl trace`.",
  ),
});
export type OutputSection = typeof OutputSection.Type;

// ── dashboard ────────────────────────────────────────────────────────────────────────────────────

export const DashboardSection = Schema.Struct({
  enabled: setting(
    Schema.Boolean,
    true,
    "The monitor serves the live dashboard and Prometheus /metrics (docs/metrics.md).",
  ),
  host: setting(
    NonEmptyString,
    "127.0.0.1",
    "Address the dashboard listens on: 127.0.0.1 keeps it to this machine; 0.0.0.0 exposes it (set a token).",
  ),
  port: setting(
    Schema.Int.pipe(Schema.between(0, 65_535, expecting("an integer in [0, 65535]"))),
    0,
    "Port of the dashboard; 0 picks a free one (`factrl run` prints where). Fix it for a Prometheus scrape.",
  ),
  token: optional(NonEmptyString, "When set, every request must carry it (`?token=` or `Authorization: Bearer`)."),
});
export type DashboardSection = typeof DashboardSection.Type;

// ── the whole config ─────────────────────────────────────────────────────────────────────────────

const ExperimentConfigFields = Schema.Struct({
  experiment: ExperimentId.annotations({ description: "Experiment id (required)." }),
  seed: setting(Schema.Int, 0, "Master seed; each actor derives its own from it."),
  nats: section(NatsSection, "The NATS server or cluster every actor talks through."),
  actors: section(ActorCounts, "Actor processes per role started by `factrl run`."),
  env: setting(EnvSection, FactWorldEnv.make({ kind: "factworld" }), "The environment prompts come from."),
  model: section(ModelSection, "The policy."),
  rollout: section(RolloutSection, "Sampling."),
  learner: section(LearnerSection, "GRPO."),
  rewards: section(RewardsSection, "The reward."),
  curation: section(CurationSection, "Prompt selection and flow control."),
  evaluation: section(EvaluationSection, "Periodic evaluation."),
  runtime: section(RuntimeSection, "Actor lifecycle."),
  output: section(OutputSection, "Outputs."),
  dashboard: section(DashboardSection, "The live dashboard the monitor serves."),
  retrieval: section(RetrievalSection, "The retriever: its index and CM3Leon's retrieval rules (docs/retrieval.md)."),
});

/**
 * Pairs a backbone cannot run, refused before anything starts: BLT reads bytes, which have no image
 * tokens (image tokens on their own patch boundaries are future work: docs/backbones.md).
 */
export const ExperimentConfig = ExperimentConfigFields.pipe(
  Schema.filter((config) =>
    config.model.backbone === "blt" && config.env.kind === "factworld-vision"
      ? {
          path: ["model", "backbone"],
          message:
            "Expected dense or mot for env.kind factworld-vision, actual blt: a byte-level policy has no image tokens (docs/backbones.md)",
        }
      : undefined,
  ),
  // Per-role permissions let only the reward role publish scored groups (docs/security.md).
  Schema.filter((config) =>
    config.rewards.scoredBy === "rollout" && config.nats.roleAuth !== undefined
      ? {
          path: ["rewards", "scoredBy"],
          message:
            "Expected reward or auto with nats.roleAuth, actual rollout: per-role credentials give a rollout actor no right to publish scored groups",
        }
      : undefined,
  ),
);
export type ExperimentConfig = typeof ExperimentConfig.Type;
export type ExperimentConfigEncoded = typeof ExperimentConfig.Encoded;
