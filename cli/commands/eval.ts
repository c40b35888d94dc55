/** `factrl eval CONFIG [--policy PATH]`: one policy on the environment's evaluation prompts, scored by the experiment's reward. */
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { renderEvaluationTable } from "../../actors/report.ts";
import { loadConfig } from "../../configs/index.ts";
import { evaluatePolicy } from "../../pipeline/index.ts";
import { checkBeforeStart } from "../preflight.ts";
import { runMain } from "../run-main.ts";
import { collect } from "./run.ts";

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description(
      "evaluate a policy (a checkpoint, hf:DIR, or the config's model.init) on the environment's evaluation prompts with the config's reward",
    )
    .argument("<config>", "experiment config (YAML): its env, rewards, evaluation sample and sampling")
    .option("--policy <path>", "a factrl checkpoint directory or hf:DIR (default: the config's model.init)")
    .option(
      "--set <key=value>",
      "override a config value, e.g. --set evaluation.promptsPerSuite=64 (repeatable)",
      collect,
    )
    .action((file: string, options: { policy?: string; set?: string[] }) => {
      const set = [...(options.set ?? []), ...(options.policy !== undefined ? [`model.init=${options.policy}`] : [])];
      const program = Effect.gen(function* () {
        const config = yield* loadConfig(file, { set }).pipe(
          Effect.flatMap((config) => checkBeforeStart(config, ["learner", "evaluator"], file)),
        );
        const { result, file: written, claimsFile } = yield* Effect.scoped(evaluatePolicy(config));
        yield* Console.log(
          `${config.model.init ?? "a fresh policy"} on ${result.answers.length} evaluation prompts (temperature ${config.evaluation.temperature ?? config.rollout.temperature}):\n\n${renderEvaluationTable(result)}\n\nevery answer with its scores: ${written}` +
            (claimsFile ? `\nevery claim with its verdict (VeriScore-style JSONL): ${claimsFile}` : ""),
        );
      });
      runMain(program);
    });
}
