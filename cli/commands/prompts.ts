/**
 * `factrl prompts`: FACTORY-style prompt curation against FactWorld's knowledge base.
 *   check FILE    every prompt of a JSONL file through the checks the curator applies (docs/curation.md);
 *                 exit 1 when any is rejected, like a linter.
 *   hard CONFIG   the model-in-the-loop hard split of the config's evaluation prompts for its starting
 *                 policy (`model.init`), and that policy's unsupported-claim rate on it vs the rest.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { Console, Data, Effect } from "effect";
import { type ExperimentConfig, loadConfig, runReaders } from "../../configs/index.ts";
import {
  CHECK_REASONS,
  checkPrompts,
  generateWorld,
  makeEnvironment,
  PromptFileError,
  parsePromptJsonl,
  WORLD_SIZES,
  type World,
  type WorldSize,
} from "../../envs/index.ts";
import { checkBeforeStart } from "../preflight.ts";
import { runMain, UsageError } from "../run-main.ts";
import { collect } from "./run.ts";

/** Some prompt failed the checks: exit 1 (cli/exit-codes.ts), the list is printed above. */
export class PromptsRejected extends Data.TaggedError("PromptsRejected")<{
  readonly rejected: number;
  readonly total: number;
}> {
  override get message(): string {
    return `${this.rejected} of ${this.total} prompts rejected`;
  }
}

/** The fields a prompt's text is read from when --field is not given, in this order (FACTORY, LongFact, plain). */
const TEXT_FIELDS = ["question", "prompt", "text"];

interface CheckOptions {
  readonly field?: string;
  readonly config?: string;
  readonly world: string;
  readonly minFacts?: string;
  readonly out?: string;
}

const worldFor = (options: CheckOptions) =>
  Effect.gen(function* () {
    if (options.config !== undefined) {
      const config = yield* loadConfig(options.config);
      const env = yield* Effect.tryPromise({
        try: () => makeEnvironment(config.env),
        catch: (error) => new UsageError({ reason: `${options.config}: env: ${(error as Error).message}` }),
      });
      if (!env.knowledge)
        return yield* new UsageError({
          reason: `${options.config}: env.kind ${config.env.kind} has no knowledge base to check prompts against`,
        });
      return { world: env.knowledge, minFacts: config.curation.minFacts };
    }
    if (!Object.hasOwn(WORLD_SIZES, options.world))
      return yield* new UsageError({
        reason: `--world must be one of ${Object.keys(WORLD_SIZES).join(", ")}, got "${options.world}"`,
      });
    return { world: generateWorld({ size: options.world as WorldSize }) as World, minFacts: 2 };
  });

const positiveInt = (flag: string, value: string | undefined, fallback: number) =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isInteger(Number(value)) && Number(value) >= 1
      ? Effect.succeed(Number(value))
      : Effect.fail(new UsageError({ reason: `${flag} must be an integer ≥ 1, got "${value}"` }));

const share = (flag: string, value: string) =>
  Number(value) >= 0 && Number(value) <= 1
    ? Effect.succeed(Number(value))
    : Effect.fail(new UsageError({ reason: `${flag} must be a number in [0, 1], got "${value}"` }));

function checkCommand(file: string, options: CheckOptions) {
  return Effect.gen(function* () {
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (error) => new UsageError({ reason: `cannot read ${file}: ${(error as Error).message}` }),
    });
    const firstLine = text.split("\n").find((line) => line.trim() !== "") ?? "{}";
    let field = options.field;
    if (field === undefined) {
      const first = yield* Effect.try({
        try: () => JSON.parse(firstLine) as Record<string, unknown>,
        catch: () => new UsageError({ reason: `${file}: line 1 is not JSON` }),
      });
      field = TEXT_FIELDS.find((f) => typeof first[f] === "string");
      if (field === undefined)
        return yield* new UsageError({
          reason: `${file}: the first prompt has none of the fields ${TEXT_FIELDS.join(", ")}; name one with --field`,
        });
    }
    const prompts = yield* Effect.try({
      try: () => parsePromptJsonl(text, field, file),
      catch: (error) => new UsageError({ reason: error instanceof PromptFileError ? error.message : String(error) }),
    });
    const { world, minFacts: configured } = yield* worldFor(options);
    const minFacts = yield* positiveInt("--min-facts", options.minFacts, configured);
    const report = checkPrompts(world, prompts, { minFacts });
    const lines = report.rejected.map(({ prompt, reason, detail }) => `${prompt.id}: ${reason} — ${detail}`);
    const counts = CHECK_REASONS.map((r) => `${r} ${report.counts[r]}`).join(", ");
    yield* Console.log(
      [
        ...lines,
        `${prompts.length} prompts (field "${field}", ${world.entities.length}-entity world, minFacts ${minFacts}): ` +
          `${report.passed.length} pass, ${report.rejected.length} rejected (${counts})`,
      ].join("\n"),
    );
    if (options.out !== undefined) {
      const out = options.out;
      const jsonl = report.rejected.map(({ prompt, reason, detail }) =>
        JSON.stringify({ id: prompt.id, reason, detail, text: prompt.text }),
      );
      yield* Effect.tryPromise({
        try: () => writeFile(out, jsonl.length > 0 ? `${jsonl.join("\n")}\n` : ""),
        catch: (error) => new UsageError({ reason: `cannot write ${out}: ${(error as Error).message}` }),
      });
    }
    if (report.rejected.length > 0)
      return yield* new PromptsRejected({ rejected: report.rejected.length, total: prompts.length });
  });
}

interface HardOptions {
  readonly set?: string[];
  readonly share: string;
  readonly samples: string;
  readonly out?: string;
}

const pct = (v: number | null) => (v === null ? "–" : `${(100 * v).toFixed(1)}%`);

function hardCommand(file: string, options: HardOptions) {
  return Effect.gen(function* () {
    const config: ExperimentConfig = yield* loadConfig(file, { set: options.set ?? [] }).pipe(
      Effect.flatMap((c) => checkBeforeStart(c, runReaders(c), file)),
    );
    const hardShare = yield* share("--share", options.share);
    const samples = yield* positiveInt("--samples", options.samples, 2);
    // The policy's code (tfjs) loads only here.
    const { evaluationSampling, findHardSplit, experimentEnvironment } = yield* Effect.promise(
      () => import("../../actors/index.ts"),
    );
    const { initialPolicy } = yield* Effect.promise(() => import("../../learner/index.ts"));
    const { initBackend, textFormatOfRecord } = yield* Effect.promise(() => import("../../models/index.ts"));
    yield* Effect.promise(() => initBackend({ backend: config.model.backend, threads: config.model.threads }));
    const env = yield* experimentEnvironment(config);
    if (!env.knowledge)
      return yield* new UsageError({ reason: `env.kind ${config.env.kind} has no knowledge base to verify answers` });
    const source = config.model.init ?? "a fresh policy";
    const { policy, tokenizer } = yield* Effect.promise(() => initialPolicy(config, env));
    const format = textFormatOfRecord(config.model.backbone, tokenizer, source);
    const sampling = evaluationSampling(config);
    yield* Console.error(`prompts hard: ${env.eval.length} evaluation prompts, ${samples}+1 answers each (${source})`);
    const result = yield* Effect.promise(() =>
      findHardSplit(policy, format, env.knowledge!, env.eval, {
        share: hardShare,
        selectionSamples: samples,
        sampling,
      }),
    );
    policy.dispose();
    const table = [
      "| split | prompts | answers with claims | unsupported claims (1 − precision) |",
      "|---|---:|---:|---:|",
      ...result.rows.map(
        (r) =>
          `| ${r.split} | ${r.prompts} | ${r.answers} | ${pct(r.unsupported)}${r.se === null ? "" : ` ± ${(100 * r.se).toFixed(1)}`} |`,
      ),
    ].join("\n");
    const dir = join(config.output.dir, config.experiment);
    const out = options.out ?? join(dir, "hard-split.jsonl");
    const jsonl = result.hard.map((p) =>
      JSON.stringify({
        id: p.id,
        question: p.text,
        suite: p.suite,
        ...(p.bucket === undefined ? {} : { bucket: p.bucket }),
      }),
    );
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(dir, { recursive: true });
        await writeFile(out, jsonl.length > 0 ? `${jsonl.join("\n")}\n` : "");
      },
      catch: (error) => new UsageError({ reason: `cannot write ${out}: ${(error as Error).message}` }),
    });
    const header =
      `Hard split of ${env.eval.length} evaluation prompts for ${source}: the ${pct(hardShare)} with the least ` +
      `precise answers over ${samples} samples each; measured on one fresh answer per prompt (temperature ${sampling.temperature}).`;
    yield* Console.log(`${header}\n\n${table}\n\n(${out})`);
  });
}

export function registerPrompts(program: Command): void {
  const prompts = program.command("prompts").description("FACTORY-style prompt checks and the hard split");
  prompts
    .command("check")
    .description("check every prompt of a JSONL file: fact-seeking, answerable, unambiguous (exit 1 if any fails)")
    .argument("<file>", "JSONL prompts, one object per line")
    .option("--field <name>", `the field holding the prompt's text (default: the first of ${TEXT_FIELDS.join(", ")})`)
    .option("--config <file>", "check against this experiment's world, with its curation.minFacts")
    .option("--world <size>", "else the FactWorld of this size: tiny or default", "default")
    .option("--min-facts <k>", "facts of the asked kinds an answerable prompt's entity has (default 2)")
    .option("--out <file>", "also write the rejected prompts as JSONL ({ id, reason, detail, text })")
    .action((file: string, options: CheckOptions) => runMain(checkCommand(file, options)));
  prompts
    .command("hard")
    .description("the model-in-the-loop hard split of a config's evaluation prompts for its starting policy")
    .argument("<config>", "experiment config (YAML): its env, model.init and sampling")
    .option("--set <key=value>", "override a config value (repeatable)", collect)
    .option("--share <p>", "share of the prompts kept as hard", "0.2")
    .option("--samples <n>", "answers per prompt that rank the prompts", "2")
    .option("--out <file>", "where the hard prompts go (default: runs/<experiment>/hard-split.jsonl)")
    .action((file: string, options: HardOptions) => runMain(hardCommand(file, options)));
}
