/**
 * What the dashboard knows about a run, kept up to date as records arrive — from the monitor's
 * subscription (a live run) or from tailing `metrics.jsonl` (`factrl dashboard RUN_DIR`): the learner's
 * curves by step, the other roles' figures by time, the newest heartbeat of each actor, and how many
 * records could not be read. Listeners (the server's SSE streams) hear each accepted record.
 */
import { makePrometheus, type Prometheus } from "./prometheus.ts";
import { type HeartbeatRecord, type MetricsRecord, parseRunEvent, type RunEvent } from "./run-record.ts";

/**
 * Timed metrics also kept per actor (as `name@source`), for the per-actor charts: throughput and the
 * shares of time busy and stalled. The rest are charted over all actors together.
 */
export const PER_ACTOR_METRIC = /(?:tokensPerSecond|busyShare|stalledShare)$/;

/** Points kept per curve; beyond it every other old point is dropped (the shape stays, memory does not grow). */
export const MAX_POINTS = 5_000;

export type CurvePoint = readonly [number, number];

export interface DashboardSnapshot {
  /** Learner metrics by step. */
  readonly learner: Readonly<Record<string, readonly CurvePoint[]>>;
  /** Other roles' metrics by time (epoch seconds), every source together; per-actor ones also as `name@source`. */
  readonly timed: Readonly<Record<string, readonly CurvePoint[]>>;
  readonly actors: readonly HeartbeatRecord[];
  readonly malformed: number;
}

function thin(points: CurvePoint[]): void {
  if (points.length <= MAX_POINTS) return;
  const half = points.length >> 1;
  const kept = points.slice(0, half).filter((_, i) => i % 2 === 0);
  points.splice(0, half, ...kept);
}

export function makeDashboardState(prometheus: Prometheus = makePrometheus()) {
  const learner = new Map<string, CurvePoint[]>();
  const timed = new Map<string, CurvePoint[]>();
  const actors = new Map<string, HeartbeatRecord>();
  const listeners = new Set<(event: RunEvent) => void>();
  let malformed = 0;

  const add = (curves: Map<string, CurvePoint[]>, name: string, point: CurvePoint) => {
    let points = curves.get(name);
    if (!points) {
      points = [];
      curves.set(name, points);
    }
    // A repeated step (a resumed run re-reporting it) replaces the old point.
    if (points.length > 0 && points.at(-1)![0] === point[0]) points[points.length - 1] = point;
    else points.push(point);
    thin(points);
  };

  const metrics = (r: MetricsRecord) => {
    if (r.tags.kind === "summary") return;
    for (const [name, value] of Object.entries(r.values)) {
      if (!Number.isFinite(value)) continue;
      if (r.role === "learner" && r.step !== undefined) add(learner, name, [r.step, value]);
      else {
        add(timed, name, [r.time / 1000, value]);
        if (PER_ACTOR_METRIC.test(name)) add(timed, `${name}@${r.source}`, [r.time / 1000, value]);
      }
    }
    prometheus.metrics(r);
  };

  return {
    prometheus,
    /** Takes one record; returns whether it was accepted. */
    ingest: (event: RunEvent) => {
      if (event.kind === "metrics") metrics(event.record);
      else {
        actors.set(event.record.id, event.record);
        prometheus.heartbeat(event.record);
      }
      for (const listener of listeners) listener(event);
    },
    /** One line of metrics.jsonl: a line that is not a record is counted and dropped. */
    ingestLine(line: string): boolean {
      if (line.trim() === "") return false;
      const event = parseRunEvent(line);
      if ("malformed" in event) {
        malformed += 1;
        prometheus.malformed("record");
        return false;
      }
      this.ingest(event);
      return true;
    },
    /** Messages the monitor's subscriptions rejected (logged there with their subject): counted here too. */
    countMalformed: (kind: string, count = 1) => {
      malformed += count;
      for (let i = 0; i < count; i++) prometheus.malformed(kind);
    },
    listen: (listener: (event: RunEvent) => void) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    snapshot: (): DashboardSnapshot => ({
      learner: Object.fromEntries(learner),
      timed: Object.fromEntries(timed),
      actors: [...actors.values()].sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id)),
      malformed,
    }),
  };
}

export type DashboardState = ReturnType<typeof makeDashboardState>;
