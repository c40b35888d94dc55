/**
 * The environment interface: what an RL task gives the roles, the learner and the evaluator. An
 * environment speaks text (and pictures), never token ids: the tokenizer belongs to the policy and
 * is saved with its checkpoint, so one environment serves every backbone and any model.
 *
 * Environments are built from the config's `env` section by the registry (registry.ts); a task is
 * one module — built in (`factworld`, `jsonl`) or a file of the user's (`kind: module`).
 */
import type { World } from "./factworld/world.ts";
import type { Picture } from "./vision/render.ts";

/** What a prompt is made of besides text. */
export type Modality = "text" | "image";

export type Split = "train" | "eval";

/** What a prompt asks about: an entity and the aspects asked (FactWorld), used by rewards and reports. */
export interface PromptFocus {
  readonly entity: string;
  readonly aspects: readonly string[];
}

/** One prompt of an environment. */
export interface EnvPrompt {
  /** Stable within the environment (`suite:entityId` for FactWorld, `file:line` for JSONL). */
  readonly id: string;
  readonly text: string;
  /** The prompt set it belongs to; evaluation reports one row per suite. */
  readonly suite: string;
  readonly split: Split;
  readonly focus?: PromptFocus;
  /** A second grouping for reports (FactWorld: the focus entity's popularity bucket). */
  readonly bucket?: string;
  /** The answer the environment knows to be right, where it has one (a reward may compare with it). */
  readonly reference?: string;
  /** The picture the prompt is about (`factworld-vision`): the policy reads it before the text. */
  readonly picture?: Picture;
}

/**
 * A reward module an environment brings (its own verifier: exact match for a toy task, say). Same
 * contract as rewards/module.ts's RewardModule; checked there when the pipeline is built.
 */
/**
 * One document of the environment's corpus: what a retriever indexes (docs/retrieval.md). FactWorld's
 * are its pretraining corpus as generated, noise included — garbled documents stay in, as the web's do.
 */
export interface EnvDocument {
  /** Stable within the environment (`doc-<n>` for FactWorld). */
  readonly id: string;
  readonly text: string;
  /** What the document is about (FactWorld: its entity's name, a prompt's `focus.entity`). */
  readonly about?: string;
}

export type EnvRewardFactory = (options: Readonly<Record<string, unknown>>) => unknown;

export interface Environment {
  /** The `env.kind` it was built from. */
  readonly kind: string;
  /** One line for reports and logs. */
  readonly description: string;
  readonly modalities: readonly Modality[];
  readonly train: readonly EnvPrompt[];
  readonly eval: readonly EnvPrompt[];
  /** Every suite, in report order. */
  readonly suites: readonly string[];
  /** The words its texts are written in: the vocabulary of a word-level policy made from scratch. */
  readonly vocabulary?: readonly string[];
  /** The knowledge base the built-in factuality rewards verify claims against (FactWorld). */
  readonly knowledge?: World;
  /** Its corpus, built on first call (a retriever indexes it; the other roles never need it). */
  readonly documents?: () => readonly EnvDocument[];
  /** Reward modules of its own, by name; configs use them as `- name: NAME` beside the built-ins. */
  readonly rewardModules?: Readonly<Record<string, EnvRewardFactory>>;
}

/** A malformed environment (a module file's, say): says which field is wrong. */
export class EnvironmentError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.join("; ")}`);
    this.name = "EnvironmentError";
  }
}

const isStringArray = (value: unknown): value is readonly string[] =>
  Array.isArray(value) && value.every((v) => typeof v === "string");

function promptProblems(prompts: unknown, field: string, split: Split): string[] {
  if (!Array.isArray(prompts)) return [`${field}: expected an array of prompts`];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const [i, p] of (prompts as unknown[]).entries()) {
    const at = `${field}[${i}]`;
    if (typeof p !== "object" || p === null) {
      problems.push(`${at}: not an object`);
      continue;
    }
    const prompt = p as Record<string, unknown>;
    if (typeof prompt.id !== "string" || prompt.id === "") problems.push(`${at}.id: expected a non-empty string`);
    else if (seen.has(prompt.id)) problems.push(`${at}.id: "${prompt.id}" is used twice`);
    else seen.add(prompt.id);
    if (typeof prompt.text !== "string" || prompt.text.trim() === "")
      problems.push(`${at}.text: expected a non-empty string`);
    if (typeof prompt.suite !== "string" || prompt.suite === "") problems.push(`${at}.suite: expected a string`);
    if (prompt.split !== split) problems.push(`${at}.split: expected "${split}"`);
    if (prompt.picture !== undefined) {
      const problem = pictureProblem(prompt.picture);
      if (problem) problems.push(`${at}.picture (prompt ${String(prompt.id)}): ${problem}`);
    }
    if (problems.length >= 10) break;
  }
  return problems;
}

/**
 * What is wrong with a prompt's picture, if anything: RGB bytes, row-major, width × height × 3 of them.
 * (The policy's image tokenizer checks the size it reads; this checks that the bytes are a picture.)
 */
export function pictureProblem(picture: unknown): string | undefined {
  if (typeof picture !== "object" || picture === null) return "expected { width, height, pixels }";
  const { width, height, pixels } = picture as Record<string, unknown>;
  if (!Number.isInteger(width) || !Number.isInteger(height) || (width as number) < 1 || (height as number) < 1)
    return `width and height must be positive integers, got ${String(width)}×${String(height)}`;
  if (!(pixels instanceof Uint8Array)) return "pixels must be a Uint8Array of RGB bytes";
  const expected = (width as number) * (height as number) * 3;
  if (pixels.length !== expected)
    return `${pixels.length} bytes of pixels, expected ${expected} (${String(width)}×${String(height)}×3)`;
  return undefined;
}

/** Checks an environment's shape (for module files, whose authors have no compiler to tell them). */
export function checkEnvironment(value: unknown, source: string): Environment {
  if (typeof value !== "object" || value === null) throw new EnvironmentError(source, ["not an object"]);
  const env = value as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof env.kind !== "string") problems.push("kind: expected a string");
  if (typeof env.description !== "string") problems.push("description: expected a string");
  if (!isStringArray(env.modalities) || env.modalities.length === 0)
    problems.push('modalities: expected a non-empty array of "text" | "image"');
  else if (env.modalities.some((m) => m !== "text" && m !== "image"))
    problems.push('modalities: each must be "text" or "image"');
  problems.push(...promptProblems(env.train, "train", "train"), ...promptProblems(env.eval, "eval", "eval"));
  if (!isStringArray(env.suites)) problems.push("suites: expected an array of strings");
  else if (Array.isArray(env.train) && Array.isArray(env.eval)) {
    const known = new Set(env.suites);
    const unlisted = [...(env.train as EnvPrompt[]), ...(env.eval as EnvPrompt[])].find((p) => !known.has(p.suite));
    if (unlisted) problems.push(`suites: prompt ${unlisted.id}'s suite "${unlisted.suite}" is not listed`);
  }
  if (env.vocabulary !== undefined && !isStringArray(env.vocabulary))
    problems.push("vocabulary: expected an array of strings");
  if (env.documents !== undefined && typeof env.documents !== "function")
    problems.push("documents: expected a function returning the corpus' documents");
  if (env.rewardModules !== undefined) {
    const modules = env.rewardModules as Record<string, unknown>;
    if (typeof modules !== "object" || modules === null) problems.push("rewardModules: expected an object");
    else
      for (const [name, factory] of Object.entries(modules))
        if (typeof factory !== "function") problems.push(`rewardModules.${name}: expected a function`);
  }
  if (Array.isArray(env.train) && env.train.length === 0) problems.push("train: no training prompts");
  if (problems.length > 0) throw new EnvironmentError(source, problems);
  return value as Environment;
}

/** Every prompt of the environment, train then eval. */
export const allPrompts = (env: Environment): readonly EnvPrompt[] => [...env.train, ...env.eval];

/**
 * The suites named in `names` (the config's `evaluation.suites`), in the environment's report order;
 * all of its suites when `names` is absent. Fails naming every name the environment has no suite of.
 */
export function selectSuites(env: Pick<Environment, "kind" | "suites">, names?: readonly string[]): readonly string[] {
  if (names === undefined) return env.suites;
  const unknown = names.filter((name) => !env.suites.includes(name));
  if (unknown.length > 0) {
    throw new EnvironmentError(`environment ${env.kind}`, [
      `no suite ${unknown.map((name) => JSON.stringify(name)).join(", ")} (its suites: ${env.suites.join(", ")})`,
    ]);
  }
  return env.suites.filter((suite) => names.includes(suite));
}
