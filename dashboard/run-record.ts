/**
 * What a run directory records, read back: `metrics.jsonl` (metrics events and heartbeats, one JSON
 * object a line: docs/metrics.md) and `eval/v<version>.json` (an evaluation per policy version). The
 * dashboard, the report's plots and `factrl study` read runs through here. A line that is not a
 * well-formed event is counted and left out, never fatal: the file is written by other processes.
 */
import { createReadStream, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

export interface MetricsRecord {
  readonly time: number;
  readonly source: string;
  readonly role: string;
  readonly step?: number;
  readonly values: Readonly<Record<string, number>>;
  readonly tags: Readonly<Record<string, string>>;
}

export interface HeartbeatRecord {
  readonly time: number;
  readonly role: string;
  readonly id: string;
  readonly host: string;
  readonly state: string;
  readonly processed: number;
  readonly failed: number;
  readonly restarts: number;
  readonly policyVersion?: number;
  readonly busy?: string;
}

export type RunEvent =
  | { readonly kind: "metrics"; readonly record: MetricsRecord }
  | { readonly kind: "heartbeat"; readonly record: HeartbeatRecord };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNumberMap = (v: unknown): v is Record<string, number> =>
  isObject(v) && Object.values(v).every((x) => typeof x === "number");
const isStringMap = (v: unknown): v is Record<string, string> =>
  isObject(v) && Object.values(v).every((x) => typeof x === "string");

/**
 * One line's event, or why it is not one. Accepts what the monitor and the serial runner write:
 * `{ time, type: "MetricsEvent" | "Heartbeat", sender, body }`.
 */
export function parseRunEvent(line: string): RunEvent | { readonly malformed: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return { malformed: "not JSON" };
  }
  if (!isObject(parsed) || typeof parsed.time !== "number" || !isObject(parsed.body))
    return { malformed: "no time or body" };
  const { body, time } = parsed;
  if (parsed.type === "MetricsEvent") {
    if (typeof body.source !== "string" || !isNumberMap(body.values) || !isStringMap(body.tags))
      return { malformed: "MetricsEvent without source, numeric values or string tags" };
    if (body.step !== undefined && typeof body.step !== "number")
      return { malformed: "MetricsEvent step not a number" };
    const role = body.tags.role ?? body.source;
    return {
      kind: "metrics",
      record: {
        time,
        source: body.source,
        role,
        values: body.values,
        tags: body.tags,
        ...(body.step === undefined ? {} : { step: body.step }),
      },
    };
  }
  if (parsed.type === "Heartbeat") {
    const { role, id, host, state, processed, failed } = body;
    if (
      typeof role !== "string" ||
      typeof id !== "string" ||
      typeof host !== "string" ||
      typeof state !== "string" ||
      typeof processed !== "number" ||
      typeof failed !== "number"
    )
      return { malformed: "Heartbeat without role, id, host, state, processed or failed" };
    const busy = isObject(body.busy) && typeof body.busy.what === "string" ? body.busy.what : undefined;
    return {
      kind: "heartbeat",
      record: {
        time,
        role,
        id,
        host,
        state,
        processed,
        failed,
        restarts: typeof body.restarts === "number" ? body.restarts : 0,
        ...(typeof body.policyVersion === "number" ? { policyVersion: body.policyVersion } : {}),
        ...(busy === undefined ? {} : { busy }),
      },
    };
  }
  return { malformed: `unknown type ${JSON.stringify(parsed.type)?.slice(0, 40)}` };
}

export interface ParsedRecord {
  readonly events: readonly RunEvent[];
  readonly malformed: number;
}

/** Every well-formed event of a metrics.jsonl text, and how many lines were not. */
export function parseRunEvents(text: string): ParsedRecord {
  const events: RunEvent[] = [];
  let malformed = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const event = parseRunEvent(line);
    if ("malformed" in event) malformed += 1;
    else events.push(event);
  }
  return { events, malformed };
}

/** The learner's value of `name` at each step, in step order (the newest line wins a repeated step). */
export function learnerCurve(events: readonly RunEvent[], name: string): [number, number][] {
  const byStep = new Map<number, number>();
  for (const e of events)
    if (e.kind === "metrics" && e.record.role === "learner" && e.record.step !== undefined) {
      const value = e.record.values[name];
      if (value !== undefined) byStep.set(e.record.step, value);
    }
  return [...byStep].sort((a, b) => a[0] - b[0]);
}

/** The reward terms and components the learner reported (`learner.term.<name>.mean`), sorted. */
export function rewardTerms(events: readonly RunEvent[]): string[] {
  const terms = new Set<string>();
  for (const e of events)
    if (e.kind === "metrics" && e.record.role === "learner")
      for (const key of Object.keys(e.record.values)) {
        const m = /^learner\.term\.(.+)\.mean$/.exec(key);
        if (m) terms.add(m[1]!);
      }
  return [...terms].sort();
}

/** The factuality numbers an evaluation reports per suite (a subset of actors' FactualityMetrics). */
export interface SuiteMetrics {
  readonly hallucinationRate: number | null;
  readonly detail: number | null;
  readonly relevanceWinRate: number | null;
  readonly abstentionRate?: number | null;
  readonly meanLength?: number | null;
}

export interface EvaluationRecord {
  readonly version: number;
  readonly overall: SuiteMetrics & { readonly reward?: number };
  readonly bySuite: Readonly<Record<string, SuiteMetrics>>;
}

/** The evaluations a run wrote, in version order; a file that is not one is left out. */
export function readEvaluations(runDir: string): EvaluationRecord[] {
  const dir = join(runDir, "eval");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((f) => {
      const m = /^v(\d+)\.json$/.exec(f);
      if (!m) return [];
      try {
        const parsed = JSON.parse(readFileSync(join(dir, f), "utf8")) as Partial<EvaluationRecord>;
        if (typeof parsed.version !== "number" || !isObject(parsed.bySuite) || !isObject(parsed.overall)) return [];
        return [{ version: parsed.version, overall: parsed.overall, bySuite: parsed.bySuite }];
      } catch {
        return [];
      }
    })
    .sort((a, b) => a.version - b.version);
}

/** A line of `lineage.jsonl` (learner/lineage.ts has its full shape), read as far as the readers need. */
export interface LineageLine {
  readonly groupId: string;
  readonly promptId: string;
  readonly fate: string;
  readonly policyLag?: number;
  readonly [field: string]: unknown;
}

/**
 * The lineage lines of a run directory that `keep` accepts, in the order they were written; a line
 * that is not one (cut by a crash mid-write) is skipped. None when the run recorded no lineage.
 */
export async function readLineage(runDir: string, keep: (line: LineageLine) => boolean): Promise<LineageLine[]> {
  const file = join(runDir, "lineage.jsonl");
  if (!existsSync(file)) return [];
  const found: LineageLine[] = [];
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const text of lines) {
    if (text.trim() === "") continue;
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      continue;
    }
    if (isObject(line) && typeof line.groupId === "string" && typeof line.promptId === "string")
      if (keep(line as unknown as LineageLine)) found.push(line as unknown as LineageLine);
  }
  return found;
}

/** How many used groups had each policy lag (index = lag in versions). */
export const lagHistogram = (lines: readonly LineageLine[]): number[] => {
  const counts: number[] = [];
  for (const l of lines)
    if (l.fate === "used" && typeof l.policyLag === "number" && l.policyLag >= 0)
      counts[l.policyLag] = (counts[l.policyLag] ?? 0) + 1;
  return Array.from(counts, (c) => c ?? 0);
};
