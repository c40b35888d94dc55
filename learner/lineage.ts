/**
 * Per-sample lineage: for a share of the scored groups the learner receives (`output.lineageShare`,
 * chosen by group id so every runner and every restart picks the same ones), one line in
 * `runs/<experiment>/lineage.jsonl` saying what became of it — its prompt, the policy version that
 * sampled it and the one that trained on it, each answer's reward and terms, how long the reward
 * took, and its fate: used, skipped (a non-finite update), or dropped as stale, zero-variance,
 * duplicate or invalid (dead-lettered). `factrl trace GROUP_ID` prints a group's lines.
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import type { ScoredGroup } from "../actors/index.ts";
import type { ExperimentConfig } from "../configs/index.ts";
import type { DropReason } from "./drop-journal.ts";

export type LineageFate = "used" | "skipped" | DropReason;

export interface LineageRecord {
  readonly time: number;
  readonly groupId: string;
  readonly promptId: string;
  readonly suite: string;
  readonly prompt: string;
  readonly fate: LineageFate;
  /** Why an invalid group was dead-lettered. */
  readonly reason?: string;
  /** The policy version that sampled every answer, and the rollout actor. */
  readonly sampledBy: number;
  readonly rolloutActor: string;
  /** Sampling wall time, and from the end of sampling to the end of scoring (the reward's latency). */
  readonly sampleMs: number;
  readonly rewardLatencyMs: number;
  readonly scorer: string;
  /** Used or skipped: the version the update started from, the learner step, and the lag between them. */
  readonly trainedOn?: number;
  readonly step?: number;
  readonly policyLag?: number;
  readonly answers: readonly {
    readonly text: string;
    readonly tokens: number;
    readonly finishReason: string;
    readonly reward: number;
    readonly terms: Readonly<Record<string, number>>;
    readonly failures: readonly string[];
  }[];
}

export const lineageFile = (config: ExperimentConfig) => join(config.output.dir, config.experiment, "lineage.jsonl");

/** FNV-1a of the group id in [0, 1): the same groups are traced by every runner and after every restart. */
export function lineageDraw(groupId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < groupId.length; i++) {
    hash ^= groupId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) / 2 ** 32;
}

export function lineageRecord(
  group: ScoredGroup,
  fate: LineageFate,
  trained?: { readonly trainedOn: number; readonly step?: number },
  reason?: string,
): LineageRecord {
  const { rollout } = group;
  return {
    time: Date.now(),
    groupId: rollout.group.groupId,
    promptId: rollout.group.promptId,
    suite: rollout.group.suite,
    prompt: rollout.group.prompt,
    fate,
    ...(reason === undefined ? {} : { reason }),
    sampledBy: rollout.policyVersion,
    rolloutActor: rollout.actor,
    sampleMs: rollout.timings.finishedAt - rollout.timings.startedAt,
    rewardLatencyMs: group.scoredAt - rollout.timings.finishedAt,
    scorer: group.scorer,
    ...(trained === undefined
      ? {}
      : {
          trainedOn: trained.trainedOn,
          ...(trained.step === undefined ? {} : { step: trained.step }),
          policyLag: trained.trainedOn - rollout.policyVersion,
        }),
    answers: rollout.answers.map((a, i) => ({
      text: a.text,
      tokens: a.tokens.length,
      finishReason: a.finishReason,
      reward: group.scores[i]?.reward ?? Number.NaN,
      terms: group.scores[i]?.components ?? {},
      failures: (group.scores[i]?.failures ?? []).map((f) => `${f.module}: ${f.kind}`),
    })),
  };
}

/** The lineage writer of a run: records the traced share of the groups; `close` flushes. */
export function openLineage(config: ExperimentConfig) {
  const share = config.output.lineageShare;
  let stream: WriteStream | undefined;
  const traced = (group: ScoredGroup) => share > 0 && lineageDraw(group.rollout.group.groupId) < share;
  const write = (record: LineageRecord) => {
    if (!stream) {
      mkdirSync(join(config.output.dir, config.experiment), { recursive: true });
      stream = createWriteStream(lineageFile(config), { flags: "a" });
    }
    stream.write(`${JSON.stringify(record)}\n`);
  };
  return {
    /** A group the learner dropped (or dead-lettered, with the reason). */
    dropped: (group: ScoredGroup, reason: DropReason, why?: string) => {
      if (traced(group)) write(lineageRecord(group, reason, undefined, why));
    },
    /** Groups of an update: used (`step` given) or skipped (not applied). */
    trained: (groups: readonly ScoredGroup[], trainedOn: number, step?: number) => {
      for (const group of groups)
        if (traced(group))
          write(
            lineageRecord(group, step === undefined ? "skipped" : "used", {
              trainedOn,
              ...(step === undefined ? {} : { step }),
            }),
          );
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (stream) stream.end(() => resolve());
        else resolve();
      }),
  };
}

export type Lineage = ReturnType<typeof openLineage>;
