/**
 * The serial runner: `factrl run CONFIG --serial`. The same roles as the actor runner — the
 * curator's `promptGroupAt`, the rollout work, the reward scoring, the learner loop and the
 * evaluation, each written once — called in one process in a fixed order, with no NATS: curator →
 * rollout → reward until the learner has a step's usable groups, then the update, then (when due)
 * the evaluation of the new version.
 *
 * Repeatable by construction: every random choice is a function of (seed, group id, policy version),
 * the order is fixed, and a checkpoint holds everything else (weights, Adam state, the ledger and the
 * curator's cursor), so two runs with one seed — or a run stopped and resumed — give the same
 * metrics and bit-identical weights on the same machine and backend (docs/pipeline.md says what
 * breaks it). It is what a researcher debugs with a breakpoint and what bench/pipeline.ts compares
 * the actor runner against.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Data, Effect } from "effect";
import {
  checkTrainingPool,
  citDue,
  citMetrics,
  createExperimentRewards,
  curateByPolicy,
  describeEvaluation,
  evaluationModules,
  experimentEnvironment,
  HandedOut,
  type IoFailed,
  inProcessEvidence,
  type LearnerProgress,
  localVerification,
  makeEvaluation,
  makeRolloutWork,
  makeScoring,
  openConfiguredRetriever,
  promptGroupAt,
  type ScoredGroup,
  tryIo,
  verificationMetrics,
} from "../actors/index.ts";
import type { ExperimentConfig, RolloutRetrieval } from "../configs/index.ts";
import {
  environmentMismatch,
  initialPolicy,
  type LearnerLink,
  learnerStepMetrics,
  loadStartingPolicy,
  makeLedger,
  openLineage,
  runLearner,
  saveLearnerCheckpoint,
  type TimedUpdate,
  updateOnGroups,
} from "../learner/index.ts";
import { type BackendInfo, createOptimizer, initBackend, textFormatOfRecord } from "../models/index.ts";

/** The serial run cannot go on: a policy that cannot read the environment, or no learning signal at all. */
export class SerialRunFailed extends Data.TaggedError("SerialRunFailed")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

export interface SerialRunOptions {
  /** Stop after this learner step (checkpointed), as if interrupted there: for resume tests and debugging. */
  readonly stopAfterStep?: number;
  /** Asked to stop (SIGINT): the run stops before its next step; the last checkpoint is where it resumes. */
  readonly stopRequested?: () => boolean;
  /** One line per step and evaluation. */
  readonly onLine?: (line: string) => void;
  /** After each learner step: its groups and the ledger's progress (bench/pipeline.ts times and sizes them). */
  readonly onStep?: (step: { readonly groups: readonly ScoredGroup[]; readonly progress: LearnerProgress }) => void;
}

export interface SerialRunResult {
  /** The learner's budget was spent (else: stopped early). */
  readonly completed: boolean;
  readonly step: number;
  readonly policyVersion: number;
  /** `runs/<experiment>/metrics.jsonl`: one line per rollout batch, learner step and evaluation (the monitor's format). */
  readonly metricsFile: string;
  /** The report, when the final version was evaluated. */
  readonly report?: string;
}

/** Groups in a row without a usable one after which the run fails instead of sampling on forever. */
const MAX_FRUITLESS_GROUPS = 500;

let backend: Promise<BackendInfo> | undefined;

export const runSerial = (config: ExperimentConfig, options: SerialRunOptions = {}) =>
  Effect.gen(function* () {
    const L = config.learner;
    const say = options.onLine ?? (() => {});
    backend ??= initBackend({ backend: config.model.backend, threads: config.model.threads });
    yield* Effect.promise(() => backend!);
    const env = yield* experimentEnvironment(config);
    const optimizer = createOptimizer({ learningRate: L.lr, warmupSteps: 0, totalSteps: L.totalSteps, clipNorm: 1 });
    const start = yield* Effect.acquireRelease(loadStartingPolicy(config, env, optimizer), (s) =>
      Effect.sync(() => s.policy.dispose()),
    );
    const { policy } = start;
    const mismatch = environmentMismatch(env, start.tokenizer, config.model.init ?? "a fresh policy");
    if (mismatch) return yield* new SerialRunFailed({ reason: mismatch });
    // Version 0: the relevance judge's reference answers, the KL reference and the evaluation baseline.
    const initial = yield* Effect.acquireRelease(
      tryIo(`loading the initial policy (${config.model.init ?? "a fresh policy"})`, () => initialPolicy(config, env)),
      (i) => Effect.sync(() => i.policy.dispose()),
    );
    const format = textFormatOfRecord(config.model.backbone, start.tokenizer, config.model.init ?? "a fresh policy");
    // Retrieval-augmented rollouts: the retriever's index, opened in this process (no NATS, no timeout).
    const retrieval = config.rollout.retrieval;
    const retriever = retrieval === undefined ? undefined : yield* openConfiguredRetriever(config, env);
    const evidenceFrom = (settings: RolloutRetrieval | undefined) =>
      retriever && settings ? inProcessEvidence(retriever, settings) : undefined;
    const evidence = evidenceFrom(retrieval);
    const work = makeRolloutWork(config, format, Effect.succeed(initial.policy), evidence);
    // The retriever in this process (for `evidence`) and one verdict cache for training and evaluation.
    const evaluated = evaluationModules(config.rewards.modules, env);
    const verification = yield* localVerification(config, env, evaluated);
    const rewards = yield* Effect.acquireRelease(
      // A `service` module needs NATS: the serial runner says so instead of failing with a defect.
      tryIo("building the reward pipeline", () =>
        createExperimentRewards(config, env, undefined, config.rewards.modules, verification),
      ),
      (r) => Effect.promise(() => r.close()),
    );
    const score = makeScoring(env, rewards);
    const evaluating = config.actors.evaluator > 0;
    const evaluationRewards = yield* Effect.acquireRelease(
      tryIo("building the evaluation's reward pipeline", () =>
        createExperimentRewards(config, env, undefined, evaluated, verification),
      ),
      (r) => Effect.promise(() => r.close()),
    );
    const evaluation = makeEvaluation(
      config,
      env,
      format,
      evaluationRewards,
      // Evaluation answers see evidence as rollouts do, without query dropout.
      evidenceFrom(retrieval && { ...retrieval, queryDropout: false }),
    );

    const runDir = join(config.output.dir, config.experiment);
    mkdirSync(runDir, { recursive: true });
    const metricsFile = join(runDir, "metrics.jsonl");
    // The monitor's line format (actors/monitor.ts), so one reader serves both runners.
    const record = (role: string, step: number, values: Record<string, number>) =>
      appendFileSync(
        metricsFile,
        `${JSON.stringify({ time: Date.now(), type: "MetricsEvent", sender: role, body: { source: role, step, values, tags: { role } } })}\n`,
      );

    // The pool's prompt checks: counted as the curator's metrics, listed in rejected-prompts.jsonl.
    record("curator", 0, yield* checkTrainingPool(config, env));
    const lineage = yield* Effect.acquireRelease(
      Effect.sync(() => openLineage(config)),
      (l) => Effect.promise(() => l.close()),
    );
    const ledger = makeLedger(config, start.state, [], lineage);
    let cursor = start.state.curatorCursor ?? 0;
    if (start.recoveredFrom !== undefined)
      say(`finished an interrupted checkpoint save: resuming from ${start.recoveredFrom}`);
    say(`serial run ${start.resumed ? "resumed" : "starts"} at step ${ledger.progress.step} (${config.experiment})`);
    if (evaluating) {
      const baseline = yield* tryIo("evaluating the initial policy", () => evaluation.baseline(initial.policy));
      say(describeEvaluation(baseline));
    }
    let finalResult: Awaited<ReturnType<typeof evaluation.evaluate>>["result"] | undefined;
    let lastEvaluated = 0;
    let fruitless = 0;
    let lastUpdate: TimedUpdate | undefined;
    const handedOut = new HandedOut();
    /** `cit`: the learner step of the last selection (none yet: one is due before the first group). */
    let citStep: number | undefined;
    const curateIfDue = Effect.gen(function* () {
      const { step, policyVersion } = ledger.progress;
      if (config.curation.strategy !== "cit" || !citDue(citStep, step, config.curation.cit.every)) return;
      const round = yield* Effect.try({
        try: () => curateByPolicy(env, config.curation, policy, format, policyVersion),
        catch: (error) => new SerialRunFailed({ reason: error instanceof Error ? error.message : String(error) }),
      });
      citStep = step;
      record("curator", step, citMetrics(round));
      say(
        `CiT at step ${step}: kept ${round.kept} prompts (${(100 * round.keptShare).toFixed(1)} % of the pool, ` +
          `${(100 * round.keptTailShare).toFixed(1)} % of them tail) in ${Math.round(round.ms)} ms`,
      );
    });

    const link: LearnerLink<SerialRunFailed | IoFailed, never> = {
      collect: (want) =>
        Effect.gen(function* () {
          if (options.stopRequested?.()) return undefined;
          if (options.stopAfterStep !== undefined && ledger.progress.step >= options.stopAfterStep) return undefined;
          const batch: ScoredGroup[] = [];
          const inBatch = new Set<string>();
          while (batch.length < want) {
            const count = Math.min(want - batch.length, config.rollout.batch);
            yield* curateIfDue;
            const groups = Array.from({ length: count }, (_, i) => promptGroupAt(env, config, cursor + i));
            cursor += count;
            handedOut.add(groups);
            record("curator", ledger.progress.step, handedOut.metrics());
            const rolled = yield* work.rollOut(groups, policy, ledger.progress.policyVersion, "serial");
            const m = rolled.metrics;
            record("rollout", ledger.progress.step, {
              "rollout.groups": rolled.rollouts.length,
              "rollout.unreadable": rolled.unreadable.length,
              ...(m["rollout.tokens"] === undefined
                ? {}
                : {
                    "rollout.tokens": m["rollout.tokens"],
                    "rollout.sampleMs": m["rollout.sampleMs"]!,
                    "rollout.batchMs": m["rollout.batchMs"]!,
                    "rollout.promptTokens": m["rollout.promptTokens"]!,
                  }),
              ...Object.fromEntries(Object.entries(m).filter(([key]) => key.startsWith("rollout.retrieval."))),
            });
            for (const { reason } of rolled.unreadable) yield* Effect.logWarning(reason);
            ledger.recordDrops(rolled.unreadable.map(() => ({ reason: "invalid" as const })));
            const limits = ledger.limits(policy);
            for (const rollout of rolled.rollouts) {
              const scored = yield* Effect.promise(() => score(rollout, "serial"));
              const verdict = ledger.judge(scored, limits, inBatch);
              if (verdict._tag === "Use") {
                batch.push(scored);
                inBatch.add(rollout.group.groupId);
                fruitless = 0;
                continue;
              }
              fruitless += 1;
              if (verdict._tag === "Invalid") {
                yield* Effect.logWarning(`group ${rollout.group.groupId} is invalid: ${verdict.reason}`);
                ledger.recordDrops([{ reason: "invalid" }]);
              } else ledger.recordDrops([{ reason: verdict.reason, id: rollout.group.groupId }]);
            }
            fruitless += rolled.unreadable.length;
            if (fruitless >= MAX_FRUITLESS_GROUPS) {
              const p = ledger.progress;
              return yield* new SerialRunFailed({
                reason:
                  `no learning signal: the last ${fruitless} groups were all unusable (so far ${p.zeroVariance} ` +
                  `zero-variance — every answer to a prompt got the same reward —, ${p.offPolicy} off-policy — ` +
                  `decoded by rollout.decoding ${config.rollout.decoding.kind} and dropped by learner.offPolicy.mode drop —, ` +
                  `${p.invalid} invalid)`,
              });
            }
          }
          return batch;
        }),
      update: (groups) =>
        Effect.promise(async () => {
          const reference = L.klBeta > 0 ? initial.policy : undefined;
          lastUpdate = await updateOnGroups(config, policy, optimizer, reference, groups);
          return lastUpdate.stats;
        }),
      skipped: (_groups, reason) =>
        Effect.gen(function* () {
          ledger.progress = { ...ledger.progress, skippedSteps: ledger.progress.skippedSteps + 1 };
          yield* Effect.logError(`learner step ${ledger.progress.step + 1} NOT APPLIED: ${reason}`);
        }),
      // In one process the policy object is the newest version; the evaluator's turn comes when it is due.
      publish: (version) =>
        Effect.gen(function* () {
          const final = ledger.progress.step === L.totalSteps;
          if (
            !evaluating ||
            !(final || (config.evaluation.every > 0 && version >= lastEvaluated + config.evaluation.every))
          )
            return;
          const { result, values } = yield* tryIo(`evaluating policy version ${version}`, () =>
            evaluation.evaluate(policy, version),
          );
          lastEvaluated = version;
          record("evaluator", ledger.progress.step, values);
          say(describeEvaluation(result));
          if (final) finalResult = result;
        }),
      // Suspended: the ledger's state (and the cursor) when the checkpoint is taken.
      checkpoint: Effect.suspend(() =>
        saveLearnerCheckpoint(
          config,
          policy,
          optimizer,
          start.tokenizer,
          ledger.checkpointed({ curatorCursor: cursor }),
        ),
      ),
      mustCheckpoint: () => false,
      stepped: (stats, groups, trainedOn) =>
        Effect.sync(() => {
          const { progress } = ledger;
          const values = learnerStepMetrics(stats, groups, progress, trainedOn);
          record("learner", progress.step, {
            ...values,
            "learner.updateMs": lastUpdate?.wallMs ?? 0,
            "learner.updateCpuMs": lastUpdate?.cpuMs ?? 0,
          });
          record("reward", progress.step, verificationMetrics("reward", verification));
          options.onStep?.({ groups, progress });
          say(
            `step ${progress.step}/${L.totalSteps} loss ${stats.loss.toFixed(4)} reward ${values["learner.reward.mean"]!.toFixed(3)} ` +
              `(zero-variance ${progress.zeroVariance}, invalid ${progress.invalid})`,
          );
        }),
    };
    const completed = yield* runLearner(config, ledger, link);
    let report: string | undefined;
    if (completed && finalResult) {
      const written = yield* tryIo("writing the report", () =>
        evaluation.report(finalResult!, ledger.progress.step, policy.config.backbone),
      );
      if (written.incomplete) yield* Effect.logWarning(written.incomplete);
      report = written.report;
    }
    return {
      completed,
      step: ledger.progress.step,
      policyVersion: ledger.progress.policyVersion,
      metricsFile,
      ...(report ? { report } : {}),
    } satisfies SerialRunResult;
  });
