/**
 * factrl's metrics in Prometheus' conventions (docs/metrics.md, "Prometheus"): the same names,
 * `factrl_` + snake_case, the unit at the end (`…Ms` becomes `_seconds` and is divided by 1000,
 * `…Share` `_ratio`), counts that only grow as counters ending `_total`, and the parts of a name that
 * vary — a reward term, a statistic, a drop reason, the reporting actor — as labels, so one Grafana
 * panel shows them all.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { HeartbeatRecord, MetricsRecord } from "./run-record.ts";

export interface PrometheusSeries {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly kind: "gauge" | "counter";
  /** Multiplies the recorded value (milliseconds → seconds). */
  readonly scale: number;
}

/** Totals since the run started (docs/metrics.md): counters. */
const COUNTERS: Readonly<Record<string, string>> = {
  "learner.consumed": "factrl_learner_consumed_groups_total",
  "learner.skippedSteps": "factrl_learner_skipped_steps_total",
};
const STATISTICS = new Set(["mean", "std", "max"]);

const snake = (camel: string) =>
  camel
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^a-zA-Z0-9_]/g, "_")
    .toLowerCase();

/** Where a factrl metric goes in Prometheus, and how its value is scaled. */
export function prometheusSeries(name: string, source: string): PrometheusSeries {
  const counter = COUNTERS[name];
  if (counter) return { name: counter, labels: { source }, kind: "counter", scale: 1 };
  const term = /^learner\.term\.(.+)\.(mean|std)$/.exec(name);
  if (term)
    return {
      name: "factrl_learner_reward_term",
      labels: { term: term[1]!, stat: term[2]!, source },
      kind: "gauge",
      scale: 1,
    };
  const drop = /^learner\.drops\.(\w+)$/.exec(name);
  if (drop)
    return {
      name: "factrl_learner_dropped_groups_total",
      labels: { reason: drop[1]!, source },
      kind: "counter",
      scale: 1,
    };
  const queue = /^queue\.(\w+)\.(pending|deadLettered)$/.exec(name);
  if (queue)
    return queue[2] === "pending"
      ? { name: "factrl_queue_pending_messages", labels: { queue: queue[1]!, source }, kind: "gauge", scale: 1 }
      : { name: "factrl_queue_dead_lettered_total", labels: { queue: queue[1]!, source }, kind: "counter", scale: 1 };
  const rejected = /^curation\.rejected\.(.+)$/.exec(name);
  if (rejected)
    return {
      name: "factrl_curation_rejected_prompts",
      labels: { reason: rejected[1]!, source },
      kind: "gauge",
      scale: 1,
    };
  const parts = name.split(".");
  const labels: Record<string, string> = { source };
  if (parts.length > 2 && STATISTICS.has(parts.at(-1)!)) labels.stat = parts.pop()!;
  let last = parts.pop()!;
  let unit = "";
  let scale = 1;
  if (/[a-z]Ms$/.test(last)) {
    last = last.slice(0, -2);
    unit = "_seconds";
    scale = 1e-3;
  } else if (/(^s|[a-z]S)econds$/.test(last)) {
    last = last.slice(0, -7);
    unit = "_seconds";
  } else if (/[a-z]Share$/.test(last)) {
    last = last.slice(0, -5);
    unit = "_ratio";
  } else if (last === "startedAt") {
    last = "started";
    unit = "_timestamp_seconds";
    scale = 1e-3;
  }
  const base = [...parts, last].filter(Boolean).map(snake).join("_");
  return { name: `factrl_${base}${unit}`, labels, kind: "gauge", scale };
}

/**
 * A Prometheus registry fed with factrl's records. Counters are fed totals: each record adds the
 * increase since the last one (a total that went down — a restarted actor — starts over).
 */
export function makePrometheus() {
  const registry = new Registry();
  const gauges = new Map<string, Gauge>();
  const counters = new Map<string, Counter>();
  const lastTotals = new Map<string, number>();
  // A name whose label set differs from the first one seen (a plug-in term named like a built-in): skipped.
  const labelSets = new Map<string, string>();

  const help = (name: string) => `factrl metric; names and units: docs/metrics.md (${name})`;

  const record = (series: PrometheusSeries, value: number) => {
    const labelNames = Object.keys(series.labels).sort();
    const key = labelNames.join(",");
    const seen = labelSets.get(series.name);
    if (seen !== undefined && seen !== key) return;
    labelSets.set(series.name, key);
    const scaled = value * series.scale;
    if (series.kind === "gauge") {
      let gauge = gauges.get(series.name);
      if (!gauge) {
        gauge = new Gauge({ name: series.name, help: help(series.name), labelNames, registers: [registry] });
        gauges.set(series.name, gauge);
      }
      gauge.set(series.labels, scaled);
      return;
    }
    let counter = counters.get(series.name);
    if (!counter) {
      counter = new Counter({ name: series.name, help: help(series.name), labelNames, registers: [registry] });
      counters.set(series.name, counter);
    }
    const id = `${series.name}${JSON.stringify(series.labels)}`;
    const last = lastTotals.get(id) ?? 0;
    counter.inc(series.labels, scaled >= last ? scaled - last : scaled);
    lastTotals.set(id, scaled);
  };

  const malformed = new Counter({
    name: "factrl_dashboard_malformed_events_total",
    help: "Metrics or heartbeat records the dashboard could not read and dropped, by kind",
    labelNames: ["kind"],
    registers: [registry],
  });

  return {
    registry,
    metrics: (r: MetricsRecord) => {
      for (const [name, value] of Object.entries(r.values))
        if (Number.isFinite(value)) record(prometheusSeries(name, r.source), value);
      if (r.role === "learner" && r.step !== undefined)
        record({ name: "factrl_learner_step", labels: { source: r.source }, kind: "gauge", scale: 1 }, r.step);
    },
    heartbeat: (h: HeartbeatRecord) => {
      const labels = { role: h.role, id: h.id, host: h.host };
      record({ name: "factrl_actor_processed_total", labels, kind: "counter", scale: 1 }, h.processed);
      record({ name: "factrl_actor_failed_total", labels, kind: "counter", scale: 1 }, h.failed);
      record({ name: "factrl_actor_restarts_total", labels, kind: "counter", scale: 1 }, h.restarts);
      record({ name: "factrl_actor_heartbeat_timestamp_seconds", labels, kind: "gauge", scale: 1e-3 }, h.time);
    },
    malformed: (kind: string) => malformed.inc({ kind }),
    text: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

export type Prometheus = ReturnType<typeof makePrometheus>;
