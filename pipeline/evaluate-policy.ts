/**
 * `factrl eval`: one policy — `model.init`, a factrl checkpoint or `hf:DIR` — answers the environment's
 * evaluation sample (the evaluator's: `evaluation.promptsPerSuite` per suite, seeded) and the
 * experiment's reward scores it, in this process. The evaluator role's own work (makeEvaluation),
 * without a learner: its answers are also its relevance references, so relevance says nothing here.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import {
  claimLines,
  createExperimentRewards,
  type EvaluationResult,
  evaluationModules,
  experimentEnvironment,
  makeEvaluation,
  tryIo,
} from "../actors/index.ts";
import type { ExperimentConfig } from "../configs/index.ts";
import { environmentMismatch, initialPolicy } from "../learner/index.ts";
import { initBackend, textFormatOfRecord } from "../models/index.ts";
import { SerialRunFailed } from "./serial-runner.ts";

export interface PolicyEvaluation {
  readonly result: EvaluationResult;
  /** Where every answer, its claims' counts and its reward were written. */
  readonly file: string;
  /**
   * VeriScore-style JSONL, one line per answer with its claims and each claim's verdict, when the
   * environment has a knowledge base to verify against (FactWorld); absent otherwise.
   */
  readonly claimsFile?: string;
}

export const evaluatePolicy = (config: ExperimentConfig) =>
  Effect.gen(function* () {
    const source = config.model.init ?? "a fresh policy";
    yield* tryIo("starting the tfjs backend", () =>
      initBackend({ backend: config.model.backend, threads: config.model.threads }),
    );
    const env = yield* experimentEnvironment(config);
    const loaded = yield* Effect.acquireRelease(
      tryIo(`loading the policy (${source})`, () => initialPolicy(config, env)),
      (l) => Effect.sync(() => l.policy.dispose()),
    );
    const mismatch = environmentMismatch(env, loaded.tokenizer, source);
    if (mismatch) return yield* new SerialRunFailed({ reason: mismatch });
    const format = yield* Effect.try({
      try: () => textFormatOfRecord(config.model.backbone, loaded.tokenizer, source),
      catch: (error) => new SerialRunFailed({ reason: (error as Error).message }),
    });
    const rewards = yield* Effect.acquireRelease(
      tryIo("building the evaluation's reward pipeline", () =>
        createExperimentRewards(config, env, undefined, evaluationModules(config.rewards.modules, env)),
      ),
      (r) => Effect.promise(() => r.close()),
    );
    const evaluation = makeEvaluation(config, env, format, rewards);
    const result = yield* tryIo(`evaluating ${source}`, () => evaluation.baseline(loaded.policy));
    const evalDir = join(config.output.dir, config.experiment, "eval");
    const world = env.knowledge;
    if (world === undefined) return { result, file: join(evalDir, "v0.json") } satisfies PolicyEvaluation;
    const claimsFile = join(evalDir, "claims.jsonl");
    yield* tryIo(`writing ${claimsFile}`, () =>
      writeFile(claimsFile, `${claimLines(world, evaluation.prompts, result.answers).join("\n")}\n`),
    );
    return { result, file: join(evalDir, "v0.json"), claimsFile } satisfies PolicyEvaluation;
  });
