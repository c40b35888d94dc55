/**
 * The chaos suite's pieces (test/chaos.test.ts, bench/chaos-noise.ts): a seeded schedule of SIGKILLs,
 * the actor processes of a launcher, a run's final evaluation, and what "within noise" means for it.
 * No vitest here: the noise bench imports this too.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { EvaluationResult } from "../actors/index.ts";
import { processTree } from "../bench/lib/process-tree.ts";
import { mulberry32 } from "../models/index.ts";

/** What one chaos event kills. */
export type ChaosTarget = "actor" | "learner" | "node";

export interface ChaosEvent {
  readonly target: ChaosTarget;
  /** Fires once the learner has reached this step… */
  readonly afterStep: number;
  /** …and this much longer (the kill lands anywhere inside a step, not only at its end). */
  readonly delayMs: number;
  /** Which one, as a fraction: index ⌊pick · n⌋ of the n candidates alive when it fires. */
  readonly pick: number;
  /** A node stays down this long before it is started again on its store (0 for processes). */
  readonly downMs: number;
}

export interface ChaosOptions {
  readonly seed: number;
  readonly events: number;
  /** The run's learner steps: events fire after steps 1 … totalSteps − 2, so they land mid-run. */
  readonly totalSteps: number;
  /** Node kills only on a cluster (one node down at a time: R3 keeps a majority). */
  readonly nodes: boolean;
}

/**
 * The seeded schedule: `events` kills at random learner steps plus a random delay of up to 3 s, in
 * the order they fire. Each kind of target appears at least once (when there are enough events), and
 * those first ones fire in the run's first half: a fast run could otherwise end before a late one
 * (seed 3 at 10 steps drew its only learner kill after step 8). The rest are drawn at random over the
 * whole run. The same options give the same schedule.
 */
export function chaosSchedule(options: ChaosOptions): ChaosEvent[] {
  const random = mulberry32(options.seed);
  const kinds: ChaosTarget[] = options.nodes ? ["actor", "learner", "node"] : ["actor", "learner"];
  const targets = Array.from({ length: options.events }, (_, i) =>
    i < kinds.length ? kinds[i]! : kinds[Math.floor(random() * kinds.length)]!,
  );
  const lastStep = Math.max(1, options.totalSteps - 2);
  const halfway = Math.max(1, Math.floor(options.totalSteps / 2) - 1);
  return targets
    .map((target, i) => ({
      target,
      afterStep: 1 + Math.floor(random() * (i < kinds.length ? halfway : lastStep)),
      delayMs: Math.round(random() * 3_000),
      pick: random(),
      downMs: target === "node" ? 2_000 + Math.round(random() * 4_000) : 0,
    }))
    .sort((a, b) => a.afterStep - b.afterStep || a.delayMs - b.delayMs);
}

/** The one of `candidates` an event picks. */
export const pickOne = <T>(candidates: readonly T[], pick: number): T | undefined =>
  candidates[Math.min(candidates.length - 1, Math.floor(pick * candidates.length))];

export interface ActorProcess {
  readonly id: string;
  readonly role: string;
  readonly pid: number;
}

/** The actor processes below a launcher, from their command lines (`actor ROLE … --id ID`): no NATS needed. */
export const actorProcesses = (launcherPid: number): ActorProcess[] =>
  processTree(launcherPid).flatMap(({ pid, cmd }) => {
    const role = /\bactor (\w+)/.exec(cmd)?.[1];
    const id = /--id (\S+)/.exec(cmd)?.[1];
    return role !== undefined && id !== undefined ? [{ id, role, pid }] : [];
  });

/** A finished run's evaluations (`eval/v<N>.json`): the initial policy's (v0) and the final one (the newest). */
export function runEvaluations(runDir: string): { initial: EvaluationResult; final: EvaluationResult } {
  const read = (version: number) =>
    JSON.parse(readFileSync(join(runDir, "eval", `v${version}.json`), "utf8")) as EvaluationResult;
  const versions = readdirSync(join(runDir, "eval")).flatMap((file) => {
    const version = /^v(\d+)\.json$/.exec(file)?.[1];
    return version === undefined ? [] : [Number(version)];
  });
  return { initial: read(0), final: read(Math.max(...versions)) };
}

/**
 * The standard deviation of the final evaluation's mean reward across undisturbed runs of
 * configs/chaos.yaml: six seeds measured by bench/chaos-noise.ts and the undisturbed run of a chaos
 * test (seed 1), pooled (docs/results.md, "Chaos: the noise of an undisturbed run"). A chaos run is
 * one of those runs with kills in it: if the kills cost nothing, its final reward and an undisturbed
 * run's are two independent draws, whose difference has a standard deviation of √2 · this.
 */
export const UNDISTURBED_REWARD_STD = 0.157;

/** Within noise: the two differ by at most three standard deviations of a difference of two runs. */
export const noiseBound = (std: number): number => 3 * Math.SQRT2 * std;

/** Sample mean and standard deviation (n − 1). */
export function meanAndStd(values: readonly number[]): { mean: number; std: number } {
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  const variance = values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / Math.max(1, values.length - 1);
  return { mean, std: Math.sqrt(variance) };
}
