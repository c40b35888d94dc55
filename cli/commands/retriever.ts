/**
 * `factrl retriever`: the retriever's index (docs/retrieval.md).
 *   build CONFIG   indexes the config's environment documents as retrieval.kind (BM25, or trains the
 *                  bi-encoder) into retrieval.index
 *   eval CONFIG    recall@k of the supporting documents on the eval split, for the index in retrieval.index
 */
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { experimentEnvironment, openConfiguredRetriever } from "../../actors/index.ts";
import { loadConfig } from "../../configs/index.ts";
import { buildRetrievalIndex, evaluateRecall, initBackend } from "../../models/index.ts";
import { runMain, UsageError } from "../run-main.ts";
import { collect } from "./run.ts";

const configOf = (file: string, set: readonly string[] | undefined) => loadConfig(file, { set: [...(set ?? [])] });

export function registerRetriever(program: Command): void {
  const command = program.command("retriever").description("build and evaluate the retriever's index");
  command
    .command("build")
    .description(
      "index the environment's documents as retrieval.kind into retrieval.index (dense: trains the bi-encoder)",
    )
    .argument("<config>", "experiment config (YAML): its env and retrieval sections")
    .option("--set <key=value>", "override a config value, e.g. --set retrieval.kind=dense (repeatable)", collect)
    .action((file: string, options: { set?: string[] }) => {
      const program = Effect.gen(function* () {
        const config = yield* configOf(file, options.set);
        const env = yield* experimentEnvironment(config);
        const { kind, index } = config.retrieval;
        if (kind === "dense") yield* Effect.promise(() => initBackend({}));
        const started = performance.now();
        const manifest = yield* Effect.tryPromise({
          try: () => buildRetrievalIndex(env, kind, index, config.retrieval.biEncoder),
          catch: (error) => new UsageError({ reason: `retriever build: ${(error as Error).message}` }),
        });
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        const training = manifest.biEncoder
          ? `; bi-encoder trained on ${manifest.biEncoder.pairs} pairs, InfoNCE ${manifest.biEncoder.firstLoss.toFixed(3)} → ${manifest.biEncoder.lastLoss.toFixed(3)}`
          : "";
        yield* Console.log(
          `${kind} index of ${manifest.world.documents} documents written to ${index} in ${seconds} s${training}`,
        );
      });
      runMain(program);
    });
  command
    .command("eval")
    .description("recall@k of the supporting documents on the eval split, for the index in retrieval.index")
    .argument("<config>", "experiment config (YAML): its env and retrieval sections")
    .option("--k <list>", "the k to report, comma-separated", "1,5,10")
    .option("--set <key=value>", "override a config value (repeatable)", collect)
    .action((file: string, options: { k: string; set?: string[] }) => {
      const program = Effect.gen(function* () {
        const ks = options.k.split(",").map(Number);
        if (ks.some((k) => !Number.isInteger(k) || k < 1))
          return yield* new UsageError({ reason: `--k must be positive integers, got ${options.k}` });
        const config = yield* configOf(file, options.set);
        const env = yield* experimentEnvironment(config);
        const retriever = yield* openConfiguredRetriever(config, env);
        const report = evaluateRecall(retriever, env, ks);
        const rows = report.atK.map(
          ({ k, recall, hit }) => `| ${k} | ${(100 * recall).toFixed(1)} % | ${(100 * hit).toFixed(1)} % |`,
        );
        yield* Console.log(
          `${report.kind} on ${report.prompts} eval prompts (${report.skipped} without supporting documents skipped):\n\n` +
            `| k | recall@k | any supporting in top k |\n|---|---|---|\n${rows.join("\n")}`,
        );
      });
      runMain(program);
    });
}
