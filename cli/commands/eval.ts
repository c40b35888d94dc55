/**
 * `factrl eval CONFIG [--policy PATH | --policy openai:URL --model NAME]`: one policy on the
 * environment's evaluation prompts, scored by the experiment's reward.
 */
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { renderEvaluationTable, renderRetrievalComparison } from "../../actors/report.ts";
import { loadConfig } from "../../configs/index.ts";
import { describePolicy, type EvaluatedPolicy, evaluatePolicy, type PolicyEvaluation } from "../../pipeline/index.ts";
import { checkBeforeStart } from "../preflight.ts";
import { runMain, UsageError } from "../run-main.ts";
import { collect } from "./run.ts";

const OPENAI_PREFIX = "openai:";

interface EvalOptions {
  readonly policy?: string;
  readonly model?: string;
  readonly apiKeyEnv?: string;
  readonly set?: string[];
}

/** The policy the options name: a model behind an OpenAI-compatible API, or the config's (`--policy` sets model.init). */
function evaluatedPolicy(options: EvalOptions): EvaluatedPolicy | UsageError {
  const url = options.policy?.startsWith(OPENAI_PREFIX) ? options.policy.slice(OPENAI_PREFIX.length) : undefined;
  if (url === undefined) {
    if (options.model !== undefined || options.apiKeyEnv !== undefined)
      return new UsageError({ reason: "--model and --api-key-env go with --policy openai:URL" });
    return { kind: "config" };
  }
  if (!/^https?:\/\/\S+$/.test(url))
    return new UsageError({ reason: `--policy openai:URL needs an http:// or https:// URL, got "${url}"` });
  if (options.model === undefined)
    return new UsageError({ reason: "--policy openai:URL needs --model NAME (the model the API serves)" });
  if (options.apiKeyEnv !== undefined && !process.env[options.apiKeyEnv])
    return new UsageError({ reason: `--api-key-env ${options.apiKeyEnv}: that environment variable is not set` });
  return {
    kind: "openai",
    target: { url, model: options.model, ...(options.apiKeyEnv ? { apiKeyEnv: options.apiKeyEnv } : {}) },
  };
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description(
      "evaluate a policy (a checkpoint, hf:DIR, the config's model.init, or a model behind an OpenAI-compatible API) on the environment's evaluation prompts with the config's reward",
    )
    .argument("<config>", "experiment config (YAML): its env, rewards, evaluation sample and sampling")
    .option(
      "--policy <path>",
      "a factrl checkpoint directory, hf:DIR, or openai:URL (e.g. openai:http://127.0.0.1:8000/v1) (default: the config's model.init)",
    )
    .option("--model <name>", "with --policy openai:URL: the model name the API serves")
    .option("--api-key-env <var>", "with --policy openai:URL: the environment variable holding the API key")
    .option(
      "--set <key=value>",
      "override a config value, e.g. --set evaluation.promptsPerSuite=64 (repeatable)",
      collect,
    )
    .action((file: string, options: EvalOptions) => {
      const program = Effect.gen(function* () {
        const policy = evaluatedPolicy(options);
        if (policy instanceof UsageError) return yield* policy;
        const set = [
          ...(options.set ?? []),
          ...(options.policy !== undefined && policy.kind === "config" ? [`model.init=${options.policy}`] : []),
        ];
        // A model behind an API needs no checkpoint here: the learner's paths are not checked then.
        const config = yield* loadConfig(file, { set }).pipe(
          Effect.flatMap((config) =>
            checkBeforeStart(config, policy.kind === "openai" ? ["evaluator"] : ["learner", "evaluator"], file),
          ),
        );
        const evaluated: PolicyEvaluation = yield* Effect.scoped(evaluatePolicy(config, policy));
        const { result, file: written, claimsFile, withEvidence } = evaluated;
        yield* Console.log(
          `${describePolicy(config, policy)} on ${result.answers.length} evaluation prompts (temperature ${config.evaluation.temperature ?? config.rollout.temperature}):\n\n${renderEvaluationTable(result)}\n\nevery answer with its scores: ${written}` +
            (claimsFile ? `\nevery claim with its verdict (VeriScore-style JSONL): ${claimsFile}` : ""),
        );
        if (withEvidence)
          yield* Console.log(
            `\nwith the top ${config.rollout.retrieval?.k} retrieved documents (${config.retrieval.kind}, ${config.retrieval.index}) before each prompt ` +
              `(every answer: ${written.replace(/v0\.json$/, "v1.json")}):\n\n${renderRetrievalComparison(result, withEvidence)}`,
          );
      });
      runMain(program);
    });
}
