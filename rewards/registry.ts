/**
 * Reward modules by name, and the three plug-in ways: a module file by path, a NATS service, an
 * OpenAI-compatible HTTP judge. `createRewardPipeline` turns the config's `rewards` section into a
 * pipeline that scores batches: every term concurrently, each with timeout, retry and isolation.
 */
import { isAbsolute, resolve } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { type EnvPrompt, type EnvRewardFactory, importDefaultExport, parseAnswer, type World } from "../envs/index.ts";
import { detailModule, FactWorldAnalyzer, formatModule, precisionModule, relevanceModule } from "./builtins.ts";
import { type ComposedScore, composeReward, type WeightedTerm } from "./compose.ts";
import { type EvidenceSource, evidenceModule } from "./evidence.ts";
import { type HttpJudgeTarget, httpJudgeModule } from "./http-judge.ts";
import { checkModule, type RewardItem, type RewardModule } from "./module.ts";
import { natsRewardModule } from "./nats.ts";
import { type CallPolicy, runModule } from "./runner.ts";
import type { RejectionLog, VerdictCache } from "./verdict-cache.ts";

type Options = Readonly<Record<string, unknown>>;

/** One term of the config (the same shape as configs' RewardModuleRef). */
export type ModuleRef = (
  | { readonly name: string }
  | { readonly path: string }
  | { readonly service: string }
  | { readonly http: HttpJudgeTarget }
) & { readonly weight: number; readonly options?: Options };

export interface RewardsConfig extends CallPolicy {
  readonly modules: readonly ModuleRef[];
}

export interface ModuleContext {
  /** FactWorld, for the built-in modules. */
  readonly world?: World;
  readonly prompts?: readonly EnvPrompt[];
  /** The environment's own reward modules, by name; one named like a built-in replaces it. */
  readonly environmentModules?: Readonly<Record<string, EnvRewardFactory>>;
  /** A NATS connection, for `service` modules. */
  readonly nats?: NatsConnection;
  /** Relative module paths resolve from here (default: the working directory). */
  readonly baseDir?: string;
  /** Retrieved passages, for the `evidence` module (a retriever in this process, or the role over NATS). */
  readonly evidence?: EvidenceSource;
  /** Verdicts shared by verifiers (`evidence`, `http:` judges) across batches and reward actors. */
  readonly verdictCache?: VerdictCache;
  /** Reports a cache entry that was rejected as malformed (and recomputed). */
  readonly onRejectedVerdict?: RejectionLog;
}

export interface FactoryContext extends ModuleContext {
  /** The built-ins' shared analyzer (exists when a world was given). */
  readonly analyzer?: FactWorldAnalyzer;
}

export type ModuleFactory = (options: Options, context: FactoryContext) => RewardModule | Promise<RewardModule>;

/** The built-ins that verify claims against the environment's knowledge base (FactWorld's); `format` needs none. */
export const KNOWLEDGE_BASE_MODULES = ["precision", "detail", "relevance"] as const;

const needAnalyzer = (name: string, context: FactoryContext): FactWorldAnalyzer => {
  if (!context.analyzer)
    throw new Error(
      `reward module "${name}" verifies claims against the environment's knowledge base (FactWorld's), and this environment has none: judge with an http: module instead (docs/rewards.md)`,
    );
  return context.analyzer;
};

export class RewardRegistry {
  private readonly factories = new Map<string, ModuleFactory>();

  register(name: string, factory: ModuleFactory): this {
    if (this.factories.has(name)) throw new Error(`reward module "${name}" is already registered`);
    this.factories.set(name, factory);
    return this;
  }

  /** Adds `name`, or replaces the module registered under it (an environment's own `precision`, say). */
  override(name: string, factory: ModuleFactory): this {
    this.factories.set(name, factory);
    return this;
  }

  names(): string[] {
    return [...this.factories.keys()];
  }

  async create(ref: ModuleRef, context: FactoryContext): Promise<RewardModule> {
    const options = ref.options ?? {};
    if ("name" in ref) {
      const factory = this.factories.get(ref.name);
      if (!factory) throw new Error(`unknown reward module "${ref.name}" (known: ${this.names().join(", ")})`);
      return checkModule(await factory(options, context), `reward module "${ref.name}"`);
    }
    if ("path" in ref) return loadModuleFile(ref.path, options, context);
    if ("service" in ref) {
      if (!context.nats) throw new Error(`reward service "${ref.service}" needs a NATS connection`);
      return natsRewardModule(context.nats, ref.service, options);
    }
    return httpJudgeModule(
      ref.http,
      options,
      context.verdictCache
        ? {
            cache: context.verdictCache,
            ...(context.onRejectedVerdict ? { onRejected: context.onRejectedVerdict } : {}),
          }
        : undefined,
    );
  }
}

/** The modules that verify claims against retrieved passages: they need a retriever (ModuleContext.evidence). */
export const EVIDENCE_MODULES = ["evidence"] as const;

/** The built-ins: format (any environment), precision, detail, relevance (a knowledge base's), evidence (a retriever's). */
export function defaultRegistry(): RewardRegistry {
  return new RewardRegistry()
    .register("format", (_, c) =>
      formatModule(c.analyzer ? (answer) => c.analyzer!.analyze(answer).format : parseAnswer),
    )
    .register("precision", (_, c) => precisionModule(needAnalyzer("precision", c)))
    .register("detail", (o, c) => detailModule(needAnalyzer("detail", c), o))
    .register("relevance", (o, c) => relevanceModule(needAnalyzer("relevance", c), o))
    .register("evidence", (o, c) => {
      if (!c.evidence)
        throw new Error(
          'reward module "evidence" verifies claims against retrieved documents and no retriever was given: build an index (`factrl retriever build CONFIG`) and set retrieval.index (docs/retrieval.md)',
        );
      return evidenceModule(c.evidence, o, c.verdictCache, c.onRejectedVerdict);
    });
}

const moduleFilePath = (path: string, baseDir: string = process.cwd()) =>
  isAbsolute(path) ? path : resolve(baseDir, path);

/** A module file's default export, or an error naming the file (envs/module-file.ts loads it wherever it lives). */
const importDefault = (full: string): Promise<unknown> =>
  importDefaultExport(full).catch((error: unknown) => {
    throw new Error(`reward ${error instanceof Error ? error.message : String(error)}`);
  });

/**
 * A module file's default export is a reward module, or a factory `(options, context) => module`.
 */
export async function loadModuleFile(path: string, options: Options, context: FactoryContext): Promise<RewardModule> {
  const full = moduleFilePath(path, context.baseDir);
  const exported = await importDefault(full);
  const value = typeof exported === "function" ? await exported(options, context) : exported;
  return checkModule(value, `reward module file ${full}`);
}

/**
 * Checks, before any actor starts, that a module file loads and exports a reward module or a
 * factory (a factory is called only by the actors, with their world and connection).
 */
export async function checkModuleFile(path: string, baseDir?: string): Promise<void> {
  const full = moduleFilePath(path, baseDir);
  const exported = await importDefault(full);
  if (typeof exported !== "function") checkModule(exported, `reward module file ${full}`);
}

export interface RewardPipeline {
  readonly terms: readonly WeightedTerm[];
  readonly modules: readonly RewardModule[];
  /** One composed score per item, in order; never rejects because of a module. */
  score(batch: readonly RewardItem[]): Promise<ComposedScore[]>;
  close(): Promise<void>;
}

export async function createRewardPipeline(
  config: RewardsConfig,
  context: ModuleContext = {},
  registry: RewardRegistry = defaultRegistry(),
): Promise<RewardPipeline> {
  if (config.modules.length === 0) throw new Error("rewards: no modules configured");
  const analyzer = context.world
    ? new FactWorldAnalyzer({ world: context.world, prompts: context.prompts })
    : undefined;
  // An environment's module replaces a built-in of the same name (the caption task's `precision`
  // verifies captions against pictures), so configs, metrics and reports keep their names.
  for (const [name, factory] of Object.entries(context.environmentModules ?? {}))
    registry.override(name, (options) => factory(options) as RewardModule | Promise<RewardModule>);
  const modules: RewardModule[] = [];
  try {
    for (const ref of config.modules) modules.push(await registry.create(ref, { ...context, analyzer }));
  } catch (error) {
    await Promise.allSettled(modules.map((m) => m.close?.()));
    throw error;
  }
  const names = modules.map((m) => m.name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) throw new Error(`rewards: two modules are named "${duplicate}"; give one another name`);
  const terms = modules.map((m, i) => ({ name: m.name, weight: (config.modules[i] as ModuleRef).weight }));
  return {
    terms,
    modules,
    async score(batch) {
      const perModule = await Promise.all(modules.map((m) => runModule(m, batch, config)));
      return batch.map((_, i) =>
        composeReward(
          terms,
          perModule.map((results) => results[i]!),
        ),
      );
    },
    async close() {
      await Promise.allSettled(modules.map((m) => m.close?.()));
    },
  };
}
