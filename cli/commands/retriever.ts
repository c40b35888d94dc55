/**
 * `factrl retriever`: the retriever's index (docs/retrieval.md).
 *   build CONFIG   indexes the config's environment documents as retrieval.kind (BM25, or trains the
 *                  bi-encoder) into retrieval.index
 *   eval CONFIG    recall@k of the supporting documents on the eval split, for the index in retrieval.index
 *   agree CONFIG --answers FILE
 *                  per-claim agreement of the evidence verifier (the `evidence` reward) with the
 *                  knowledge-base oracle, over the claims of an evaluation's answers
 */

import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { evidenceAgreement, experimentEnvironment, openConfiguredRetriever } from "../../actors/index.ts";
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
  command
    .command("agree")
    .description(
      "per-claim agreement of the evidence verifier (passages from retrieval.index) with the knowledge-base oracle, over the claims of an evaluation's answers",
    )
    .argument("<config>", "experiment config (YAML): its env and retrieval sections")
    .requiredOption(
      "--answers <file>",
      "an evaluation's answers: runs/<experiment>/eval/v<N>.json (written by `factrl eval` and the evaluator)",
    )
    .option("--k <n>", "passages retrieved per claim (the evidence module's k)", "5")
    .option("--set <key=value>", "override a config value (repeatable)", collect)
    .action((file: string, options: { answers: string; k: string; set?: string[] }) => {
      const program = Effect.gen(function* () {
        const k = Number(options.k);
        if (!Number.isInteger(k) || k < 1)
          return yield* new UsageError({ reason: `--k must be a positive integer, got ${options.k}` });
        const answers = yield* Effect.tryPromise({
          try: async () => {
            const parsed = JSON.parse(await readFile(options.answers, "utf8")) as { answers?: { answer?: unknown }[] };
            if (!Array.isArray(parsed.answers) || parsed.answers.some((a) => typeof a.answer !== "string"))
              throw new Error("expected an evaluation file: { answers: [{ answer: string, … }, …] }");
            return parsed.answers.map((a) => a.answer as string);
          },
          catch: (error) => new UsageError({ reason: `--answers ${options.answers}: ${(error as Error).message}` }),
        });
        const config = yield* configOf(file, options.set);
        const env = yield* experimentEnvironment(config);
        const a = yield* evidenceAgreement(config, env, answers, k);
        const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
        const verdicts = ["supported", "contradicted", "unverifiable"] as const;
        const rows = verdicts.map((o) => `| ${o} | ${verdicts.map((e) => a.matrix[o][e]).join(" | ")} |`);
        yield* Console.log(
          `${a.claims} claims of ${answers.length} answers (${options.answers}), ${config.retrieval.kind}, k = ${k}:\n\n` +
            `| oracle \\ evidence | ${verdicts.join(" | ")} |\n|---|---:|---:|---:|\n${rows.join("\n")}\n\n` +
            `agreement ${pct(a.agreement)} (supported or not: ${pct(a.binaryAgreement)}), Cohen's κ ${a.kappa.toFixed(3)}; ` +
            `of the oracle's supported claims the evidence supports ${pct(a.supportedRecall)}, ` +
            `of the evidence's supported claims the oracle supports ${pct(a.supportedPrecision)}`,
        );
      });
      runMain(program);
    });
}
