/**
 * evaluator: answers a fixed, seeded sample of the environment's evaluation prompts (every suite, or
 * those `evaluation.suites` names) with the
 * initial policy, then with every `evaluation.every`-th published version and with the final one;
 * scores them with the experiment's reward (relevance judged against the initial policy's answers)
 * and publishes the metrics. After the final version it writes `runs/<experiment>/report.md`
 * (initial vs RL policy per suite and on average; for an environment with pictures, a few of them as
 * PNG files in `report-pictures/` with both policies' answers) and marks the evaluation done in KV.
 *
 * With `rollout.retrieval`, answers are conditioned on retrieved evidence as rollouts are (the
 * experiment's retriever, `factrl.<exp>.retrieve`; no query dropout).
 *
 * Subjects: reads KV `policy` and `learner-progress`, weights from the object store; publishes
 * MetricsEvent on `metrics.evaluator`; writes KV `evaluation-done`; asks `factrl.<exp>.retrieve`.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { Duration, Effect } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import { writeRunPlots } from "../dashboard/index.ts";
import { type Environment, type EnvPrompt, encodePng, enlarge, selectSuites } from "../envs/index.ts";
import {
  Experiment,
  getState,
  MetricsEventMessage,
  POLICY_KEY,
  publishMessage,
  putState,
  RETRIEVE_ENDPOINT,
} from "../messaging/index.ts";
import type { Policy, TextFormat } from "../models/index.ts";
import type { RewardPipeline } from "../rewards/index.ts";
import { evaluationSample, experimentEnvironment } from "./environment.ts";
import {
  type Answerer,
  answerPrompts,
  type EvaluationResult,
  type EvaluationSampling,
  evaluateAnswers,
} from "./evaluation.ts";
import { type EvidenceSource, natsEvidence } from "./evidence.ts";
import { tryIo } from "./io.ts";
import { followPolicy } from "./policy-sync.ts";
import { publishedTextFormat } from "./policy-tokenizer.ts";
import { type ReportPicture, renderReport } from "./report.ts";
import { openRewardPipeline } from "./reward.ts";
import { type RoleDefinition, RoleFatal } from "./runtime.ts";
import { useBackend } from "./tf-backend.ts";
import { EVALUATION_DONE_KEY, LEARNER_PROGRESS_KEY, VERDICT_CACHE_KEYS } from "./topology.ts";

const POLL = Duration.seconds(1);
/** Evaluation pictures the report of a vision run shows, and how much they are enlarged. */
const REPORT_PICTURES = 6;
const REPORT_PICTURE_SCALE = 4;

/**
 * A few evaluation prompts with pictures — one from each (suite, bucket) in turn — written as PNG
 * files into `dir`, with both policies' answers, for the report. None when the prompts have no pictures.
 */
export async function writeReportPictures(
  dir: string,
  prompts: readonly EnvPrompt[],
  before: EvaluationResult,
  after: EvaluationResult,
): Promise<ReportPicture[]> {
  const groups = new Map<string, EnvPrompt[]>();
  for (const p of prompts) {
    if (!p.picture) continue;
    const key = `${p.suite}/${p.bucket ?? ""}`;
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  const chosen: EnvPrompt[] = [];
  for (let round = 0; chosen.length < REPORT_PICTURES && [...groups.values()].some((g) => g.length > round); round++)
    for (const group of groups.values())
      if (group[round] && chosen.length < REPORT_PICTURES) chosen.push(group[round]!);
  if (chosen.length === 0) return [];
  await mkdir(dir, { recursive: true });
  const answerOf = (result: EvaluationResult, id: string) =>
    result.answers.find((a) => a.promptId === id)?.answer ?? "";
  return Promise.all(
    chosen.map(async (p) => {
      const name = `${p.id.replaceAll(/[^A-Za-z0-9_-]/g, "-")}.png`;
      await writeFile(join(dir, name), encodePng(enlarge(p.picture!, REPORT_PICTURE_SCALE)));
      return {
        file: `${basename(dir)}/${name}`,
        promptId: p.id,
        prompt: p.text,
        before: answerOf(before, p.id),
        after: answerOf(after, p.id),
      };
    }),
  );
}

/**
 * The built-in terms every evaluation reports, whatever the experiment trains with (not `format`:
 * a weight-0 format term would turn a malformed answer's −1 into 0).
 */
const MEASURED_TERMS = ["precision", "relevance"] as const;

/**
 * The experiment's reward modules plus, with weight 0, any of the measured built-ins it lacks: a
 * precision-only run's answers are still judged for relevance (the study compares all arms on all
 * metrics), and the reward stays the one the policy was trained on. The built-ins need a knowledge
 * base: an environment without one is measured by its own modules only.
 */
export function evaluationModules(
  modules: ExperimentConfig["rewards"]["modules"],
  env: Pick<Environment, "knowledge">,
): ExperimentConfig["rewards"]["modules"] {
  if (!env.knowledge) return modules;
  const named = new Set(modules.flatMap((m) => ("name" in m ? [m.name] : [])));
  const missing = MEASURED_TERMS.filter((name) => !named.has(name)).map((name) => ({ name, weight: 0, options: {} }));
  return [...modules, ...missing];
}

/** How evaluation answers are sampled: the evaluation's temperature (else the rollouts') and seed, the rollouts' budget. */
export const evaluationSampling = (config: ExperimentConfig): EvaluationSampling => ({
  temperature: config.evaluation.temperature ?? config.rollout.temperature,
  topP: config.rollout.topP,
  maxNewTokens: config.rollout.maxNewTokens,
  seed: config.evaluation.seed,
  batch: Math.max(1, config.rollout.batch * config.rollout.groupSize),
});

/**
 * The evaluator role's work, written once for both runners: the fixed evaluation sample, the initial
 * policy's answers (the relevance references), one evaluation per version (written to
 * `eval/v<N>.json`) and the final report.
 */
export function makeEvaluation(
  config: ExperimentConfig,
  env: Environment,
  /** The policy's text format; absent when only an Answerer (a model behind an API) is evaluated. */
  format: TextFormat | undefined,
  pipeline: RewardPipeline,
  /** With `rollout.retrieval`: each prompt's evidence, prepended as rollouts do. */
  evidence?: EvidenceSource,
) {
  const suites = selectSuites(env, config.evaluation.suites);
  const prompts = evaluationSample(env.eval, config.evaluation.promptsPerSuite, config.evaluation.seed, suites);
  const runDir = join(config.output.dir, config.experiment);
  const outDir = join(runDir, "eval");
  const sampling = evaluationSampling(config);
  const startedAt = Date.now();
  let references: ReadonlyMap<string, string> | undefined;
  let before: EvaluationResult | undefined;

  const policyAnswers = (policy: Policy, withEvidence = true) => {
    if (!format) throw new Error("evaluate: a policy of this process needs its text format");
    return answerPrompts(policy, format, prompts, sampling, withEvidence ? evidence : undefined);
  };
  const save = async (result: EvaluationResult) => {
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, `v${result.version}.json`), `${JSON.stringify(result, null, 1)}\n`);
  };

  return {
    prompts,
    /**
     * Evaluates the initial policy; its answers become the relevance references of every later version.
     * `withoutEvidence`: answered from the prompts alone even with an evidence source (`factrl eval`
     * compares the same policy with evidence against this).
     */
    baseline: async (initial: Policy | Answerer, options: { withoutEvidence?: boolean } = {}) => {
      const answers =
        typeof initial === "function"
          ? await initial(prompts, sampling)
          : await policyAnswers(initial, !options.withoutEvidence);
      references = new Map(prompts.map((p, i) => [p.id, answers[i]!.text]));
      before = await evaluateAnswers(0, prompts, answers, pipeline, references);
      await save(before);
      return before;
    },
    /** Evaluates `policy` as version `version`: the result and its `eval.*` metrics. */
    evaluate: async (policy: Policy, version: number) => {
      if (!references) throw new Error("evaluate: the baseline (the initial policy) is not evaluated yet");
      const began = Date.now();
      const answers = await policyAnswers(policy);
      const result = await evaluateAnswers(version, prompts, answers, pipeline, references);
      await save(result);
      const o = result.overall;
      const values: Record<string, number> = { "eval.reward": o.reward, "eval.seconds": (Date.now() - began) / 1000 };
      if (result.cost) values["eval.promptTokens"] = result.cost.promptTokens;
      for (const [key, value] of Object.entries({
        hallucinationRate: o.hallucinationRate,
        detail: o.detail,
        relevanceWinRate: o.relevanceWinRate,
        abstentionRate: o.abstentionRate,
        meanLength: o.meanLength,
      }))
        if (value !== null) values[`eval.${key}`] = value;
      return { result, values };
    },
    /**
     * Writes `report.md` (initial vs `after`; its plots; pictures when the prompts have them): its
     * path, and why plots or pictures are missing if they could not be written.
     */
    report: async (after: EvaluationResult, steps: number, backbone: string) => {
      if (!before) throw new Error("report: the baseline (the initial policy) is not evaluated yet");
      // Pictures and plots are a help to the reader: a report without them beats no report.
      let incomplete: string | undefined;
      const pictures = await writeReportPictures(join(runDir, "report-pictures"), prompts, before, after).catch(
        (error: Error) => {
          incomplete = `report pictures not written: ${error.message}`;
          return [];
        },
      );
      const plots = await writeRunPlots(runDir).catch((error: Error) => {
        incomplete = `${incomplete ? `${incomplete}; ` : ""}report plots not written: ${error.message}`;
        return [];
      });
      const text = renderReport(config.experiment, before, after, {
        steps,
        wallSeconds: (Date.now() - startedAt) / 1000,
        backbone,
        temperature: sampling.temperature,
        pictures,
        plots,
      });
      const report = join(runDir, "report.md");
      await writeFile(report, text);
      return { report, incomplete };
    },
  };
}

/** One line of an evaluation for the log. */
export const describeEvaluation = ({ version, overall: o }: EvaluationResult) =>
  `evaluated policy v${version}: hallucination ${o.hallucinationRate?.toFixed(3)}, detail ${o.detail?.toFixed(2)}, ` +
  `relevance ${o.relevanceWinRate?.toFixed(3)}, reward ${o.reward.toFixed(3)}`;

export const evaluatorRole: RoleDefinition = {
  name: "evaluator",
  description: "evaluates the initial, periodic and final policies on every suite; writes the report",
  // Its reward pipeline is the reward actors' (evidence module, verdict cache) plus the measured terms;
  // with rollout.retrieval its answers are conditioned on evidence as the rollouts' are.
  writes: [EVALUATION_DONE_KEY, VERDICT_CACHE_KEYS],
  asks: [RETRIEVE_ENDPOINT],
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      yield* useBackend(config, actor);
      const { subjects } = yield* Experiment;
      const env = yield* experimentEnvironment(config);
      // The CLI checked the names before anything started; an actor started otherwise fails here, once.
      yield* Effect.try({
        try: () => selectSuites(env, config.evaluation.suites),
        catch: (error) => new RoleFatal({ reason: `evaluation.suites: ${(error as Error).message}` }),
      });
      const { pipeline } = yield* openRewardPipeline(config, env, evaluationModules(config.rewards.modules, env));
      const follower = yield* followPolicy;
      const retrieval = config.rollout.retrieval;
      const evidence = retrieval === undefined ? undefined : yield* natsEvidence({ ...retrieval, queryDropout: false });
      const evaluation = makeEvaluation(config, env, yield* publishedTextFormat, pipeline, evidence);

      const evaluate = (policy: Policy, version: number) =>
        Effect.gen(function* () {
          const { result, values } = yield* tryIo(`evaluating policy version ${version}`, () =>
            evaluation.evaluate(policy, version),
          );
          yield* publishMessage(subjects.metrics("evaluator"), MetricsEventMessage, {
            source: actor.id,
            values,
            tags: { role: "evaluator", policyVersion: String(version) },
          });
          actor.recordProcessed(evaluation.prompts.length);
          yield* Effect.logInfo(describeEvaluation(result));
          return result;
        });

      return Effect.gen(function* () {
        const initial = yield* follower.loadVersion(0);
        yield* tryIo("evaluating the initial policy", () => evaluation.baseline(initial));
        initial.dispose();
        let lastEvaluated = 0;
        for (;;) {
          const progress = (yield* getState(LEARNER_PROGRESS_KEY))?.value;
          const pointer = (yield* getState(POLICY_KEY))?.value;
          const final = progress?.done === true && pointer !== undefined && pointer.version === progress.policyVersion;
          const due =
            config.evaluation.every > 0 &&
            pointer !== undefined &&
            pointer.version >= lastEvaluated + config.evaluation.every;
          if (final || due) {
            const { policy, version } = yield* follower.current;
            actor.setPolicyVersion(version);
            const after = yield* evaluate(policy, version);
            lastEvaluated = version;
            if (final && version === progress!.policyVersion) {
              const { report, incomplete } = yield* tryIo("writing the report", () =>
                evaluation.report(after, progress!.step, policy.config.backbone),
              );
              if (incomplete) yield* Effect.logWarning(incomplete);
              yield* putState(EVALUATION_DONE_KEY, { finalVersion: version, report });
              yield* Effect.logInfo(`report written to ${report}`);
              return;
            }
          }
          if (actor.isDraining()) return;
          yield* Effect.sleep(POLL);
        }
      });
    }),
};
