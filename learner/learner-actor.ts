/**
 * learner: GRPO over the actor pipeline. Pulls scored groups, dead-letters the invalid ones
 * (group-validation.ts), drops the stale (older than `max_policy_lag` versions), the zero-variance
 * and the already-used ones (each counted), runs the GRPO update, publishes weights every
 * `publishEvery` steps and checkpoints every `checkpointEvery`.
 *
 * Exactly-once use: a group used in an update is acked only after a checkpoint that includes its
 * effect is on disk. A learner killed at any point resumes from its checkpoint (step, Adam state,
 * policy version, counts, the ids of groups used and dropped) and the groups it had not
 * checkpointed are redelivered and used again — by the resumed weights, which never saw them. A
 * dropped group is settled at once, after its drop is on disk in the drop journal (drop-journal.ts),
 * so dropping never waits for a checkpoint. Every group is used at most once in the surviving run,
 * and none is lost: consumed + stale + zero-variance + dead-lettered adds up.
 *
 * Subjects: pulls ScoredGroup from the `scored` work queue; publishes weights (a blob per version) and the
 * `policy`, `policy-architecture` and `learner-progress` KV keys (it is the only writer of `policy`:
 * policy-pointer.ts); metrics on `metrics.learner`.
 */
import { join } from "node:path";
import { Duration, Effect } from "effect";
import {
  EVALUATION_DONE_KEY,
  experimentEnvironment,
  LEARNER_PROGRESS_KEY,
  POLICY_ARCHITECTURE_KEY,
  publishPolicyTokenizer,
  type RoleDefinition,
  RoleFatal,
  SCORED_QUEUE,
  type ScoredGroup,
  useBackend,
} from "../actors/index.ts";
import type { ExperimentConfig } from "../configs/index.ts";
import {
  Experiment,
  getBlob,
  getState,
  MetricsEventMessage,
  type Nats,
  openWorkFetcher,
  POLICY_KEY,
  publishMessage,
  putState,
  type WorkItem,
  WorkOutcome,
  weightsBlobName,
} from "../messaging/index.ts";
import { buildPolicy, createOptimizer, memoryFigures, type Policy } from "../models/index.ts";
import { type Drop, openDropJournal, readDropJournal } from "./drop-journal.ts";
import {
  environmentMismatch,
  type LearnerLink,
  loadStartingPolicy,
  makeLedger,
  runLearner,
  saveLearnerCheckpoint,
  updateOnGroups,
} from "./learner.ts";
import { openLineage } from "./lineage.ts";
import { ownPolicyPointer, startingAnnouncement } from "./policy-pointer.ts";
import { type StallReport, watchForStalls } from "./stall-watchdog.ts";
import { learnerStepMetrics } from "./step-metrics.ts";

const FETCH_EXPIRES_MS = 1_000;
/**
 * Used groups wait unacked for a checkpoint; the `scored` consumer stops delivering at its
 * max-ack-pending (1,000 by default), so the learner checkpoints early rather than hold more than this.
 */
const MAX_HELD_DELIVERIES = 500;

/** Beside the checkpoint, not in it: a checkpoint replaces its whole directory. */
const learnerDropJournalDir = (config: ExperimentConfig) =>
  join(config.output.dir, config.experiment, "checkpoints", "learner-drops");

/** A few ids for a log line, each cut short: ids come from messages. */
const someIds = (ids: readonly string[]) =>
  ids
    .slice(0, 8)
    .map((id) => id.slice(0, 32))
    .join(", ") + (ids.length > 8 ? `, … (${ids.length})` : "");

export const learnerRole: RoleDefinition = {
  name: "learner",
  description: "GRPO updates from scored groups; publishes weights, checkpoints and resumes",
  endsExperiment: true,
  takes: [SCORED_QUEUE],
  writes: [POLICY_KEY, POLICY_ARCHITECTURE_KEY, LEARNER_PROGRESS_KEY],
  writesBlobs: true,
  start: (actor) =>
    Effect.gen(function* () {
      const { config } = actor;
      const L = config.learner;
      yield* useBackend(config, actor);
      const { subjects } = yield* Experiment;
      const optimizer = createOptimizer({ learningRate: L.lr, warmupSteps: 0, totalSteps: L.totalSteps, clipNorm: 1 });
      const env = yield* experimentEnvironment(config);
      const start = yield* loadStartingPolicy(config, env, optimizer);
      const { policy } = start;
      yield* Effect.addFinalizer(() => Effect.sync(() => policy.dispose()));
      const mismatch = environmentMismatch(env, start.tokenizer, config.model.init ?? "a fresh policy");
      if (mismatch) return yield* new RoleFatal({ reason: mismatch });

      // Drops after the checkpoint were settled already: their ids and counts come from the journal.
      const journalDir = learnerDropJournalDir(config);
      const journalGeneration = start.state.dropJournal ?? 0;
      const journaled = yield* readDropJournal(journalDir, journalGeneration);
      const journal = yield* openDropJournal(journalDir, journalGeneration);
      const lineage = yield* Effect.acquireRelease(
        Effect.sync(() => openLineage(config)),
        (l) => Effect.promise(() => l.close()),
      );
      const ledger = makeLedger(config, start.state, journaled, lineage);

      // One progress write at a time, each of the newest progress, so the KV value never goes back.
      const progressWrites = yield* Effect.makeSemaphore(1);
      const saveProgress = progressWrites.withPermits(1)(
        Effect.suspend(() => putState(LEARNER_PROGRESS_KEY, ledger.progress)),
      );

      // Announce the tokenizer and the architecture, then the weights under a version no follower has passed.
      yield* publishPolicyTokenizer(start.tokenizer);
      yield* putState(POLICY_ARCHITECTURE_KEY, policy.config as unknown as Record<string, unknown>);
      // A pointer that is no pointer at all names no version and no weights: the learner starts from
      // its checkpoint (or the initial policy) and announces it over the garbage, instead of dying.
      let garbageRevision: number | undefined;
      const pointerAtStart = yield* getState(POLICY_KEY).pipe(
        Effect.catchTag("StateError", (error) => {
          if (error.badValue === undefined) return Effect.fail(error);
          garbageRevision = error.badValue.revision;
          actor.recordFailed(1);
          return Effect.as(
            Effect.logError(
              `the policy pointer (revision ${garbageRevision}) is not a policy pointer (${error.reason}); ` +
                "starting from the checkpoint or the initial policy and announcing it over it",
            ),
            undefined,
          );
        }),
      );
      const announcement = startingAnnouncement({
        checkpointVersion: ledger.progress.policyVersion,
        pointer: pointerAtStart,
        announcedVersion: (yield* getState(LEARNER_PROGRESS_KEY))?.value.policyVersion,
      });
      if (announcement._tag === "Forged") return yield* new RoleFatal({ reason: announcement.reason });
      const pointer = yield* ownPolicyPointer(pointerAtStart?.revision ?? garbageRevision);
      ledger.progress = { ...ledger.progress, policyVersion: announcement.version };
      actor.setPolicyVersion(ledger.progress.policyVersion);
      yield* saveProgress;
      if (announcement._tag === "Publish") {
        yield* pointer.publish(ledger.progress.policyVersion, yield* Effect.promise(() => policy.exportWeights()));
      }
      if (start.recoveredFrom !== undefined)
        yield* Effect.logWarning(`finished an interrupted checkpoint save: resuming from ${start.recoveredFrom}`);
      yield* Effect.logInfo(
        `learner ${start.resumed ? "resumed" : "starts"} at step ${ledger.progress.step}, policy version ${ledger.progress.policyVersion}`,
      );

      // The frozen reference for β·KL: the initial policy (version 0's weights).
      let reference: Policy | undefined;
      if (L.klBeta > 0) {
        reference = buildPolicy(policy.config);
        const initial = yield* getBlob(weightsBlobName(0));
        yield* Effect.promise(() => reference!.importWeights(initial, weightsBlobName(0)));
      }
      yield* Effect.addFinalizer(() => Effect.sync(() => reference?.dispose()));

      const scored = yield* openWorkFetcher(SCORED_QUEUE);
      /** Deliveries settled by the learner only once a checkpoint covers them. */
      let held: WorkItem<ScoredGroup>[] = [];
      yield* Effect.forkScoped(scored.keepingAlive(() => held, Effect.never));

      const publishMetrics = (values: Record<string, number>) =>
        publishMessage(subjects.metrics("learner"), MetricsEventMessage, {
          source: actor.id,
          step: ledger.progress.step,
          values,
          tags: { role: "learner" },
        });

      const reportStall = (report: StallReport) =>
        Effect.gen(function* () {
          ledger.progress = { ...ledger.progress, stalledSince: report.since };
          yield* saveProgress;
          const s = report.sinceLastStep;
          yield* Effect.logError(
            `learner stalled: no step completed for ${Math.round(report.stalledMs / 1000)} s ` +
              `(learner.stallWarnMs ${L.stallWarnMs}). Since the last step: ${s.fetched} groups fetched; dropped ` +
              `${s.stale} stale, ${s.zeroVariance} zero-variance, ${s.duplicates} duplicate, ${s.offPolicy} off-policy; ${s.invalid} invalid ` +
              `(dead-lettered); ${s.skippedSteps} steps skipped (non-finite)`,
          );
          yield* publishMetrics({ "learner.stalledMs": report.stalledMs, "learner.fetchedSinceStep": s.fetched });
        });
      const stalls = yield* watchForStalls(L.stallWarnMs, reportStall);

      /**
       * Journals the drops (on disk before any is settled), settles them — an invalid group is
       * dead-lettered, with its reason logged by the queue — and counts them.
       */
      const settleDrops = (drops: readonly { item: WorkItem<ScoredGroup>; drop: Drop; outcome?: WorkOutcome }[]) =>
        Effect.gen(function* () {
          if (drops.length === 0) return;
          yield* journal.record(drops.map((d) => d.drop));
          ledger.recordDrops(drops.map((d) => d.drop));
          for (const { item, drop, outcome } of drops) {
            stalls.dropped(drop.reason);
            if (outcome === undefined) held.push(item);
          }
          yield* Effect.forEach(
            drops.flatMap((d) => (d.outcome ? [[d.item, d.outcome] as const] : [])),
            ([item, outcome]) =>
              item
                .settle(outcome)
                .pipe(
                  Effect.catchAll((error) =>
                    Effect.logWarning(
                      `could not settle a dropped group (stream seq ${item.streamSequence}): ${error.message}; ` +
                        "it will be redelivered and counted as a duplicate",
                    ),
                  ),
                ),
            { concurrency: "unbounded", discard: true },
          );
          // Dropped groups return the curator's credits now, not at the next step.
          yield* saveProgress;
        });

      // Durations of the loop's parts, for the step's metrics.
      const timings = { collectMs: 0, updateMs: 0, updateCpuMs: 0, publishMs: 0, checkpointMs: 0 };
      const timed = <A, E, R>(key: keyof typeof timings, effect: Effect.Effect<A, E, R>) =>
        Effect.gen(function* () {
          const started = performance.now();
          const result = yield* effect;
          timings[key] = performance.now() - started;
          return result;
        });

      const link: LearnerLink<unknown, Nats | Experiment> = {
        /** Pulls until `want` usable groups are in hand; every other delivery is settled and counted. */
        collect: (want) =>
          timed(
            "collectMs",
            Effect.gen(function* () {
              const batch: ScoredGroup[] = [];
              const inBatch = new Set<string>();
              while (batch.length < want) {
                if (actor.isDraining()) return undefined;
                yield* pointer.check;
                const items = yield* scored.fetch({ max: want - batch.length, expiresMs: FETCH_EXPIRES_MS });
                stalls.fetched(items.length);
                const limits = ledger.limits(policy);
                const drops: { item: WorkItem<ScoredGroup>; drop: Drop; outcome?: WorkOutcome }[] = [];
                for (const item of items) {
                  const group = item.body;
                  const id = group.rollout.group.groupId;
                  const verdict = ledger.judge(group, limits, inBatch);
                  if (verdict._tag === "Use") {
                    held.push(item);
                    batch.push(group);
                    inBatch.add(id);
                  } else if (verdict._tag === "Invalid") {
                    drops.push({ item, drop: { reason: "invalid" }, outcome: WorkOutcome.reject(verdict.reason) });
                  } else {
                    const drop = { reason: verdict.reason, id };
                    drops.push(verdict.hold ? { item, drop } : { item, drop, outcome: WorkOutcome.done });
                  }
                }
                yield* settleDrops(drops);
              }
              return batch;
            }),
          ),
        // The update blocks this process's event loop for seconds: announced first, so status shows it busy.
        update: (groups) =>
          actor.busy(
            `GRPO update (step ${ledger.progress.step + 1})`,
            Effect.promise(async () => {
              const { stats, wallMs, cpuMs } = await updateOnGroups(config, policy, optimizer, reference, groups);
              timings.updateMs = wallMs;
              timings.updateCpuMs = cpuMs;
              return stats;
            }),
          ),
        skipped: (groups, reason) =>
          Effect.gen(function* () {
            const progress = { ...ledger.progress, skippedSteps: ledger.progress.skippedSteps + 1 };
            ledger.progress = progress;
            stalls.skipped();
            yield* Effect.logError(
              `learner step ${progress.step + 1} NOT APPLIED: ${reason}. Its ${groups.length} groups ` +
                `(${someIds(groups.map((g) => g.rollout.group.groupId))}) count as consumed; ` +
                `${progress.skippedSteps} steps skipped so far`,
            );
            yield* publishMetrics({
              "learner.skippedSteps": progress.skippedSteps,
              "learner.consumed": progress.consumed,
            });
            yield* saveProgress;
          }),
        // In the loop, not behind it: a version announced later would make every group one step
        // staler (a background publish here dropped 19 % of groups as stale instead of none).
        publish: (version) =>
          timed(
            "publishMs",
            Effect.gen(function* () {
              const weights = yield* Effect.promise(() => policy.exportWeights());
              // The progress announces the version before the pointer does: followers refuse a pointer ahead of it.
              yield* saveProgress;
              yield* pointer.publish(version, weights);
              actor.setPolicyVersion(version);
            }),
          ),
        checkpoint: timed(
          "checkpointMs",
          Effect.gen(function* () {
            yield* saveLearnerCheckpoint(
              config,
              policy,
              optimizer,
              start.tokenizer,
              ledger.checkpointed({ dropJournal: journal.generation() + 1 }),
            );
            // The checkpoint holds the journal's drops now: the next generation starts empty.
            yield* journal.rotate;
            const settled = held;
            held = [];
            yield* Effect.forEach(settled, (item) => item.settle(WorkOutcome.done), { discard: true });
          }),
        ),
        /** Used groups wait unacked for a checkpoint; the consumer stops delivering at its max-ack-pending. */
        mustCheckpoint: () => held.length + L.groupsPerStep > MAX_HELD_DELIVERIES,
        stepped: (stats, groups, trainedOn) =>
          Effect.gen(function* () {
            stalls.stepCompleted();
            actor.recordProcessed(groups.length);
            const { progress } = ledger;
            yield* publishMetrics({
              ...learnerStepMetrics(stats, groups, progress, trainedOn),
              "learner.stepMs": timings.updateMs + timings.publishMs + timings.checkpointMs,
              "learner.collectMs": timings.collectMs,
              "learner.updateMs": timings.updateMs,
              "learner.updateCpuMs": timings.updateCpuMs,
              "learner.publishMs": timings.publishMs,
              "learner.checkpointMs": timings.checkpointMs,
              // Per step, to tell a leak (tensors grow) from a fragmented wasm heap (only the heap grows).
              ...memoryFigures("learner.memory"),
            });
            timings.publishMs = 0;
            timings.checkpointMs = 0;
            yield* saveProgress;
          }),
      };

      return Effect.gen(function* () {
        const spent = yield* runLearner(config, ledger, link);
        if (!spent) return yield* Effect.logInfo("learner drained; unsettled groups will be redelivered");
        yield* stalls.stop;
        ledger.progress = { ...ledger.progress, done: true };
        yield* saveProgress;
        yield* Effect.logInfo(
          `learner done: ${ledger.progress.step} steps, policy version ${ledger.progress.policyVersion}`,
        );
        // The experiment ends with the learner; with evaluators, once the final policy is evaluated.
        if (config.actors.evaluator > 0) {
          yield* Effect.logInfo("waiting for the final evaluation");
          for (;;) {
            yield* pointer.check;
            const evaluation = yield* getState(EVALUATION_DONE_KEY);
            if (evaluation && evaluation.value.finalVersion >= ledger.progress.policyVersion) break;
            if (actor.isDraining()) return;
            yield* Effect.sleep(Duration.seconds(1));
          }
        }
      });
    }),
};
