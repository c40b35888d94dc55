/**
 * `factrl eval`: one policy — `model.init`, a factrl checkpoint or `hf:DIR`, or a model behind an
 * OpenAI-compatible API (`openai:URL`) — answers the environment's
 * evaluation sample (the evaluator's: `evaluation.promptsPerSuite` per suite, seeded) and the
 * experiment's reward scores it, in this process. The evaluator role's own work (makeEvaluation),
 * without a learner: its answers are also its relevance references, so relevance says nothing here.
 *
 * With `rollout.retrieval` (a policy of this process), the same policy answers twice: from the prompts
 * alone (`eval/v0.json`, the relevance references) and with each prompt's retrieved documents first
 * (`eval/v1.json`, the retriever's index opened here, no query dropout) — so relevance is the
 * evidence-conditioned answers' win rate against the policy's own answers without evidence.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Effect } from "effect";
import {
  type Answerer,
  claimRecordLines,
  createExperimentRewards,
  type EvaluationResult,
  evaluationModules,
  experimentEnvironment,
  inProcessEvidence,
  localVerification,
  makeEvaluation,
  openAiAnswerer,
  openConfiguredRetriever,
  tryIo,
} from "../actors/index.ts";
import type { ExperimentConfig } from "../configs/index.ts";
import { environmentMismatch, initialPolicy } from "../learner/index.ts";
import { initBackend, type Policy, textFormatOfRecord } from "../models/index.ts";
import { SerialRunFailed } from "./serial-runner.ts";

export interface PolicyEvaluation {
  readonly result: EvaluationResult;
  /** With `rollout.retrieval`: the same policy's answers with retrieved evidence first (relevance against `result`'s). */
  readonly withEvidence?: EvaluationResult;
  /** Where every answer, its claims' counts and its reward were written. */
  readonly file: string;
  /**
   * VeriScore-style JSONL, one line per answer with its claims and each claim's verdict: FactWorld's
   * verifier where the environment has a knowledge base, else the first http: judge's judgements;
   * absent when there is neither.
   */
  readonly claimsFile?: string;
}

/** What answers: the config's policy (`model.init`, loaded here), or a model behind an OpenAI-compatible API. */
export type EvaluatedPolicy =
  | { readonly kind: "config" }
  | { readonly kind: "openai"; readonly target: Parameters<typeof openAiAnswerer>[0] };

type Environment = Parameters<typeof makeEvaluation>[1];

export const evaluatePolicy = (config: ExperimentConfig, policy: EvaluatedPolicy = { kind: "config" }) =>
  Effect.gen(function* () {
    const env = yield* experimentEnvironment(config);
    const { answerer, format } =
      policy.kind === "openai"
        ? { answerer: openAiAnswerer(policy.target) as Answerer | Policy, format: undefined }
        : yield* loadedPolicy(config, env);
    const modules = evaluationModules(config.rewards.modules, env);
    const verification = yield* localVerification(config, env, modules);
    const rewards = yield* Effect.acquireRelease(
      tryIo("building the evaluation's reward pipeline", () =>
        createExperimentRewards(config, env, undefined, modules, verification),
      ),
      (r) => Effect.promise(() => r.close()),
    );
    const retrieval = policy.kind === "config" ? config.rollout.retrieval : undefined;
    const evidence =
      retrieval === undefined
        ? undefined
        : inProcessEvidence(yield* openConfiguredRetriever(config, env), { ...retrieval, queryDropout: false });
    const evaluation = makeEvaluation(config, env, format, rewards, evidence);
    const result = yield* tryIo(`evaluating ${describePolicy(config, policy)}`, () =>
      evaluation.baseline(answerer, { withoutEvidence: true }),
    );
    const withEvidence =
      evidence === undefined
        ? undefined
        : (yield* tryIo(`evaluating ${describePolicy(config, policy)} with retrieved evidence`, () =>
            evaluation.evaluate(answerer as Policy, 1),
          )).result;
    const evalDir = join(config.output.dir, config.experiment, "eval");
    const file = join(evalDir, "v0.json");
    const lines = claimRecordLines(env, evaluation.prompts, result.answers, rewards, describePolicy(config, policy));
    const evaluated = { result, file, ...(withEvidence ? { withEvidence } : {}) };
    if (lines === undefined) return evaluated satisfies PolicyEvaluation;
    const claimsFile = join(evalDir, "claims.jsonl");
    yield* tryIo(`writing ${claimsFile}`, () => writeFile(claimsFile, `${lines.join("\n")}\n`));
    return { ...evaluated, claimsFile } satisfies PolicyEvaluation;
  });

/** How the evaluated policy is named in reports and records. */
export const describePolicy = (config: ExperimentConfig, policy: EvaluatedPolicy): string =>
  policy.kind === "openai" ? `${policy.target.model} at ${policy.target.url}` : (config.model.init ?? "a fresh policy");

/** The config's policy (`model.init`, or a fresh one), loaded in this process with its text format. */
const loadedPolicy = (config: ExperimentConfig, env: Environment) =>
  Effect.gen(function* () {
    const source = config.model.init ?? "a fresh policy";
    yield* tryIo("starting the tfjs backend", () =>
      initBackend({ backend: config.model.backend, threads: config.model.threads }),
    );
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
    return { answerer: loaded.policy as Answerer | Policy, format };
  });
