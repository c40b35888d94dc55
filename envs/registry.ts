/**
 * Environments by `env.kind`, as rewards/registry.ts keeps reward modules by name: the config's `env`
 * section goes in, an Environment comes out, built once per process (every process on every host
 * builds the same one from the same section: FactWorld is regenerated from its seeds, files are read).
 *
 * Built in: `factworld` (the generated world), `factworld-vision` (its pictures: the caption task),
 * `jsonl` (a prompt file, judged by an `http:` judge),
 * and `module` (an environment in a file of the user's: its default export is an Environment, or a
 * function of `options` returning one). Adding a built-in kind is one `register` line below.
 */
import { basename, dirname } from "node:path";
import {
  checkEnvironment,
  type EnvDocument,
  type Environment,
  EnvironmentError,
  type EnvPrompt,
} from "./environment.ts";
import { loadPromptFile, PROMPT_FIELDS } from "./external.ts";
import { DEFAULT_CORPUS_OPTIONS, generateCorpus } from "./factworld/corpus.ts";
import { generatePrompts, popularityLog, SUITES } from "./factworld/prompts.ts";
import { createRng, hashString } from "./factworld/random.ts";
import { worldVocabulary } from "./factworld/tokenizer.ts";
import { type World, type WorldSpec, worldFromSpec } from "./factworld/world.ts";
import { importDefaultExport } from "./module-file.ts";
import type { AltTextOptions } from "./vision/alt-text.ts";
import { captionRewardModules } from "./vision/caption-rewards.ts";
import { captionEnvironment, captionExamples, captionTruths, DEFAULT_CAPTION_TASK } from "./vision/caption-task.ts";

/** The config's `env` section (configs/schema.ts validates each kind's fields before this sees it). */
export interface EnvSectionLike {
  readonly kind: string;
  readonly [field: string]: unknown;
}

export type EnvironmentFactory = (section: EnvSectionLike) => Environment | Promise<Environment>;

const factories = new Map<string, EnvironmentFactory>();

/** Adds an environment kind (a test's, a fork's). Kinds are unique. */
export function registerEnvironment(kind: string, factory: EnvironmentFactory): void {
  if (factories.has(kind)) throw new Error(`environment kind "${kind}" is already registered`);
  factories.set(kind, factory);
}

export const environmentKinds = (): string[] => [...factories.keys()];

const built = new Map<string, Promise<Environment>>();

/** The environment a config section describes, built once per process. */
export function makeEnvironment(section: EnvSectionLike): Promise<Environment> {
  const key = JSON.stringify(section);
  const cached = built.get(key);
  if (cached) return cached;
  const factory = factories.get(section.kind);
  if (!factory) {
    return Promise.reject(
      new EnvironmentError("env.kind", [`unknown kind "${section.kind}" (known: ${environmentKinds().join(", ")})`]),
    );
  }
  const environment = Promise.resolve()
    .then(() => factory(section))
    .then((env) => checkEnvironment(env, `env (kind ${section.kind})`));
  built.set(key, environment);
  environment.catch(() => built.delete(key));
  return environment;
}

// ── factworld ──────────────────────────────────────────────────────────────────────────────────────

/** FactWorld: the world regenerated from its seeds, its six suites, the knowledge base for the built-in rewards. */
export function factWorld(
  section: Exclude<WorldSpec, string> & {
    readonly promptSeed: number;
    readonly evalFraction: number;
    readonly popularPrompts?: number;
  },
): Environment {
  const world = worldFromSpec(section);
  const prompts = generatePrompts(world, { seed: section.promptSeed, evalFraction: section.evalFraction });
  const train = popularityLog(
    world,
    prompts.filter((p) => p.split === "train"),
    section.popularPrompts ?? 0,
  );
  return {
    kind: "factworld",
    description: `FactWorld (${section.size ?? "default"}, seed ${world.options.seed}): ${world.entities.length} entities`,
    modalities: ["text"],
    train,
    eval: prompts.filter((p) => p.split === "eval"),
    suites: SUITES,
    vocabulary: worldVocabulary(world),
    knowledge: world,
    documents: corpusOf(world),
  };
}

/** The world's pretraining corpus with its default options (noise included), made once when first asked. */
const corpusOf = (world: World): (() => readonly EnvDocument[]) => {
  let documents: readonly EnvDocument[] | undefined;
  return () => {
    documents ??= generateCorpus(world, DEFAULT_CORPUS_OPTIONS).map((document) => ({
      id: `doc-${document.id}`,
      text: document.text,
      about: world.entities[document.entityId]!.name,
    }));
    return documents;
  };
};

// ── factworld-vision ───────────────────────────────────────────────────────────────────────────────

/**
 * FactWorld's pictures and the caption task (Altogether): one prompt per picture, its alt-text as the
 * text; the world for verification and its own caption rewards (format, precision, detail, relevance).
 */
export function factWorldVision(
  section: Exclude<WorldSpec, string> & {
    readonly promptSeed: number;
    readonly evalFraction: number;
    readonly maxPicturesPerEntity: number;
    readonly altText?: Partial<AltTextOptions> | undefined;
    readonly dropAltText: number;
  },
): Environment {
  const world = worldFromSpec(section);
  const examples = captionExamples(world, {
    ...DEFAULT_CAPTION_TASK,
    promptSeed: section.promptSeed,
    evalFraction: section.evalFraction,
    maxPicturesPerEntity: section.maxPicturesPerEntity,
    altText: section.altText ?? {},
    dropAltText: section.dropAltText,
  });
  return captionEnvironment(
    world,
    examples,
    captionRewardModules(world, captionTruths(examples)),
    `FactWorld pictures (${section.size ?? "default"}, seed ${world.options.seed}): ${examples.length} pictures of ${world.entities.length} entities, caption task`,
  );
}

// ── jsonl ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * A JSONL prompt set (FACTORY, LongFact, the user's): one prompt per line; `suite` from the line's
 * `suite` field or the file's name; a line goes to eval when the hash of its id falls under
 * `evalFraction` (stable across hosts and runs).
 */
export async function jsonlPrompts(section: {
  readonly path: string;
  readonly field?: string | undefined;
  readonly evalFraction: number;
}): Promise<Environment> {
  const field = section.field ?? PROMPT_FIELDS.longfact;
  const lines = await loadPromptFile(section.path, { field });
  const fileSuite = basename(section.path).replace(/\.jsonl$/, "");
  const prompts: EnvPrompt[] = lines.map((line) => {
    const suite = typeof line.meta.suite === "string" && line.meta.suite !== "" ? line.meta.suite : fileSuite;
    const reference = typeof line.meta.reference === "string" ? line.meta.reference : undefined;
    // FNV's high bits barely move between ids like q1, q2…: a mulberry32 draw seeded by it spreads them.
    const split = createRng(hashString(line.id)).next() < section.evalFraction ? "eval" : "train";
    return { id: line.id, text: line.text, suite, split, ...(reference === undefined ? {} : { reference }) };
  });
  return {
    kind: "jsonl",
    description: `JSONL prompts from ${section.path} (${prompts.length})`,
    modalities: ["text"],
    train: prompts.filter((p) => p.split === "train"),
    eval: prompts.filter((p) => p.split === "eval"),
    suites: [...new Set(prompts.map((p) => p.suite))],
  };
}

// ── module ─────────────────────────────────────────────────────────────────────────────────────────

/** An environment in a file: its default export is an Environment, or `(options) => Environment`. */
export async function moduleEnvironment(section: {
  readonly path: string;
  readonly options?: Readonly<Record<string, unknown>> | undefined;
}): Promise<Environment> {
  const exported = await importDefaultExport(section.path);
  const value = typeof exported === "function" ? await exported(section.options ?? {}) : exported;
  return checkEnvironment(value, `environment module ${section.path} (in ${dirname(section.path) || "."})`);
}

registerEnvironment("factworld", (s) => factWorld(s as unknown as Parameters<typeof factWorld>[0]));
registerEnvironment("factworld-vision", (s) => factWorldVision(s as unknown as Parameters<typeof factWorldVision>[0]));
registerEnvironment("jsonl", (s) => jsonlPrompts(s as unknown as Parameters<typeof jsonlPrompts>[0]));
registerEnvironment("module", (s) => moduleEnvironment(s as unknown as Parameters<typeof moduleEnvironment>[0]));
