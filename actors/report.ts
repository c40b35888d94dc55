/**
 * The experiment's report: the initial (SFT) policy against the RL policy on every evaluation suite
 * and on average (the mean over suites, as the paper averages over benchmarks), and for an
 * environment with pictures a few of them with both policies' captions. Pure: numbers in, Markdown
 * out (the evaluator writes the pictures' PNG files).
 */
import { plotsMarkdown, type ReportPlot } from "../dashboard/index.ts";
import { answerPrecisions, type FactualityMetrics, macroAverageStandardError, meanEstimate } from "../rewards/index.ts";
import type { EvaluationResult } from "./evaluation.ts";

export interface ComparisonRow {
  readonly suite: string;
  readonly before: FactualityMetrics;
  readonly after: FactualityMetrics;
}

type Metric = "hallucinationRate" | "detail" | "relevanceWinRate" | "abstentionRate" | "meanLength";
const METRICS: readonly Metric[] = ["hallucinationRate", "detail", "relevanceWinRate", "abstentionRate", "meanLength"];

const mean = (values: readonly (number | null)[]): number | null => {
  const present = values.filter((v): v is number => v !== null);
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
};

/** Per-suite rows plus the macro average over suites. */
export function comparisonRows(before: EvaluationResult, after: EvaluationResult): ComparisonRow[] {
  const suites = Object.keys(after.bySuite).filter((s) => before.bySuite[s]);
  const rows = suites.map((suite) => ({ suite, before: before.bySuite[suite]!, after: after.bySuite[suite]! }));
  const average = (side: "before" | "after"): FactualityMetrics => {
    const metrics = Object.fromEntries(METRICS.map((m) => [m, mean(rows.map((r) => r[side][m]))]));
    return {
      answers: rows.reduce((n, r) => n + r[side].answers, 0),
      malformedRate: mean(rows.map((r) => r[side].malformedRate)),
      ...(metrics as Record<Metric, number | null>),
    };
  };
  return [...rows, { suite: "average", before: average("before"), after: average("after") }];
}

const pct = (v: number | null) => (v === null ? "–" : `${(100 * v).toFixed(1)}%`);
const num = (v: number | null, digits = 2) => (v === null ? "–" : v.toFixed(digits));

/** One policy's evaluation (`factrl eval`): per suite, per bucket when the prompts have them, and overall. */
export function renderEvaluationTable(result: EvaluationResult): string {
  const row = (name: string, m: FactualityMetrics) =>
    `| ${name} | ${m.answers} | ${pct(m.hallucinationRate)} | ${num(m.detail)} | ${pct(m.abstentionRate)} | ${pct(m.malformedRate)} | ${num(m.meanLength, 1)} |`;
  return [
    "| suite / bucket | answers | hallucination | supported claims | abstention | malformed | length (words) |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...Object.entries(result.bySuite).map(([suite, m]) => row(suite, m)),
    ...Object.entries(result.byBucket).map(([bucket, m]) => row(`bucket ${bucket}`, m)),
    row("**all**", result.overall),
    "",
    `mean reward ${result.overall.reward.toFixed(3)}`,
  ].join("\n");
}

/**
 * One policy without and with retrieved evidence (`factrl eval` with `rollout.retrieval`), per
 * popularity bucket and overall: hallucination, detail and abstention each way, the evidence answers'
 * relevance win rate against the policy's own answers without it, and what the evidence costs.
 */
export function renderRetrievalComparison(without: EvaluationResult, withEvidence: EvaluationResult): string {
  const row = (name: string, a: FactualityMetrics | undefined, b: FactualityMetrics | undefined) =>
    a === undefined || b === undefined
      ? []
      : [
          `| ${name} | ${a.answers} | ${pct(a.hallucinationRate)} → ${pct(b.hallucinationRate)} | ${num(a.detail)} → ${num(b.detail)} | ` +
            `${pct(a.abstentionRate)} → ${pct(b.abstentionRate)} | ${pct(a.malformedRate)} → ${pct(b.malformedRate)} | ${pct(b.relevanceWinRate)} |`,
        ];
  const cost = (label: string, c: EvaluationResult["cost"]) =>
    c === undefined
      ? []
      : [
          `${label}: ${num(c.promptTokens, 1)} prompt tokens per answer, ${num(c.generatedTokens, 1)} generated, ` +
            `${num(c.tokensPerSecond, 0)} tokens/s sampling` +
            (c.documents === undefined
              ? ""
              : `; ${num(c.documents)} documents per prompt, ${c.retrievalMissed} retrievals missed`),
        ];
  return [
    "| bucket | answers | hallucination (without → with) | supported claims | abstention | malformed | relevance win rate (with vs without) |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...Object.keys(without.byBucket).flatMap((bucket) =>
      row(bucket, without.byBucket[bucket], withEvidence.byBucket[bucket]),
    ),
    ...row("**all**", without.overall, withEvidence.overall),
    "",
    ...cost("without evidence", without.cost),
    ...cost("with evidence", withEvidence.cost),
  ].join("\n");
}

export interface ReportVerdict {
  readonly hallucinationDropPoints: number | null;
  readonly detailChange: number | null;
  readonly relevanceWinRate: number | null;
  /** The quick start's goals: ≥ 10 pp less hallucination, ≤ 5 % less detail, win rate ≥ 50 %. */
  readonly meetsGoals: boolean;
}

export function verdict(rows: readonly ComparisonRow[]): ReportVerdict {
  const average = rows.find((r) => r.suite === "average");
  const b = average?.before;
  const a = average?.after;
  const drop =
    b?.hallucinationRate != null && a?.hallucinationRate != null
      ? 100 * (b.hallucinationRate - a.hallucinationRate)
      : null;
  const detailChange = b?.detail != null && a?.detail != null && b.detail > 0 ? (a.detail - b.detail) / b.detail : null;
  const win = a?.relevanceWinRate ?? null;
  return {
    hallucinationDropPoints: drop,
    detailChange,
    relevanceWinRate: win,
    meetsGoals:
      drop !== null && drop >= 10 && detailChange !== null && detailChange >= -0.05 && win !== null && win >= 0.5,
  };
}

/** One standard error of the verdict's averages: the sampling noise of a single evaluation. */
export interface VerdictNoise {
  /** Of the hallucination drop, in points (both evaluations' errors combined). */
  readonly hallucinationDropPoints: number | null;
  /** Of the RL policy's relevance win rate. */
  readonly relevanceWinRate: number | null;
}

/**
 * The verdict's noise from the evaluations' answers: each average is a mean over suites of per-answer
 * values (claim precision; the judge's 0, ½ or 1), so its standard error is the suites' combined
 * (`macroAverageStandardError`). It says how far another run's evaluation may land from this one.
 */
export function verdictNoise(before: EvaluationResult, after: EvaluationResult): VerdictNoise {
  const suites = Object.keys(after.bySuite).filter((s) => before.bySuite[s]);
  const bySuite = <T>(result: EvaluationResult, values: (answers: EvaluationResult["answers"]) => T[]) =>
    suites.map((suite) => values(result.answers.filter((a) => a.suite === suite))).filter((v) => v.length > 0);
  const precisionSe = (result: EvaluationResult) => macroAverageStandardError(bySuite(result, answerPrecisions));
  const b = precisionSe(before);
  const a = precisionSe(after);
  return {
    hallucinationDropPoints: b === null || a === null ? null : 100 * Math.hypot(b, a),
    relevanceWinRate: macroAverageStandardError(
      bySuite(after, (answers) => answers.flatMap((x) => (x.relevance === undefined ? [] : [x.relevance]))),
    ),
  };
}

/** The verdict's sentence: the three figures ± one standard error, and whether the goals hold. */
function verdictSentence(v: ReportVerdict, noise: VerdictNoise): string {
  const pm = (se: number | null, scale = 1) => (se === null ? "" : ` (± ${(scale * se).toFixed(1)})`);
  const drop = v.hallucinationDropPoints;
  const win = v.relevanceWinRate;
  // A goal missed by less than the evaluation's own noise is a coin toss, not a verdict on the method.
  const withinNoise =
    !v.meetsGoals &&
    ((drop !== null &&
      noise.hallucinationDropPoints !== null &&
      drop < 10 &&
      10 - drop <= noise.hallucinationDropPoints) ||
      (win !== null && noise.relevanceWinRate !== null && win < 0.5 && 0.5 - win <= noise.relevanceWinRate));
  return (
    `Hallucination rate ${drop === null ? "–" : `${drop >= 0 ? "−" : "+"}${Math.abs(drop).toFixed(1)} pp`}${pm(noise.hallucinationDropPoints)}, ` +
    `detail ${v.detailChange === null ? "–" : `${v.detailChange >= 0 ? "+" : "−"}${Math.abs(100 * v.detailChange).toFixed(1)} %`}, ` +
    `relevance win rate ${pct(win)}${pm(noise.relevanceWinRate, 100)}` +
    (noise.hallucinationDropPoints === null && noise.relevanceWinRate === null
      ? ". "
      : " (± one standard error of the evaluations' sampling). ") +
    `Goals (≥ 10 pp less hallucination, ≤ 5 % less detail, win rate ≥ 50 %): ${v.meetsGoals ? "met" : "not met"}` +
    (withinNoise ? " — missed by less than one standard error, so another run may meet them." : ".")
  );
}

/** An evaluation picture shown in the report: its PNG (relative to report.md), its prompt, both policies' answers. */
export interface ReportPicture {
  readonly file: string;
  readonly promptId: string;
  readonly prompt: string;
  readonly before: string;
  readonly after: string;
}

/** Answers hold `<think>` and web titles hold `|`: shown as text in a table cell. */
const cell = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("|", "\\|");

function pictureSection(pictures: readonly ReportPicture[]): string[] {
  if (pictures.length === 0) return [];
  return [
    "## Pictures",
    "",
    "A few evaluation pictures (enlarged) with their prompt and each policy's answer to it.",
    "",
    "| picture | prompt | SFT answer | RL answer |",
    "|---|---|---|---|",
    ...pictures.map(
      (p) => `| ![${p.promptId}](${p.file}) | ${cell(p.prompt)} | ${cell(p.before)} | ${cell(p.after)} |`,
    ),
    "",
  ];
}

export function renderReport(
  experiment: string,
  before: EvaluationResult,
  after: EvaluationResult,
  context: {
    readonly steps: number;
    readonly wallSeconds: number;
    readonly backbone: string;
    /** Sampling temperature of every evaluation answer. */
    readonly temperature: number;
    /** For an environment with pictures: a few of them, written next to the report. */
    readonly pictures?: readonly ReportPicture[];
    /** Training curves and per-suite evaluations, written next to the report. */
    readonly plots?: readonly ReportPlot[];
  },
): string {
  const rows = comparisonRows(before, after);
  const v = verdict(rows);
  const lines = [
    `# ${experiment}: initial (SFT) policy vs RL policy`,
    "",
    `Policy versions ${before.version} → ${after.version} (${context.backbone} backbone) after ${context.steps} GRPO steps, ` +
      `${Math.round(context.wallSeconds)} s of wall time; answers sampled at temperature ${context.temperature}. ` +
      "Relevance is the judge's win rate of each policy's answers against the initial policy's answers to the same " +
      "prompts (ties count half).",
    "",
    "| suite | hallucination SFT | hallucination RL | detail SFT | detail RL | relevance win RL | abstention SFT | abstention RL | length SFT | length RL |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows
      .map(({ suite, before: b, after: a }) =>
        [
          suite === "average" ? "**average**" : suite,
          pct(b.hallucinationRate),
          pct(a.hallucinationRate),
          num(b.detail),
          num(a.detail),
          pct(a.relevanceWinRate),
          pct(b.abstentionRate),
          pct(a.abstentionRate),
          num(b.meanLength, 1),
          num(a.meanLength, 1),
        ].join(" | "),
      )
      .map((row) => `| ${row} |`),
    "",
    verdictSentence(v, verdictNoise(before, after)),
    "",
    ...plotsMarkdown(context.plots ?? []),
    ...pictureSection(context.pictures ?? []),
  ];
  return lines.join("\n");
}

export interface StudyRun {
  /** The reward the run trained with (e.g. "precision only"). */
  readonly name: string;
  readonly before: EvaluationResult;
  readonly after: EvaluationResult;
}

/**
 * The reward-hacking study's table in the paper's style: one row per reward, averaged over suites,
 * with the initial policy as the first row (every run starts from it, so its numbers are shared).
 */
export function renderStudyTable(runs: readonly StudyRun[]): string {
  const first = runs[0];
  if (!first) return "";
  const averageOf = (run: StudyRun) => comparisonRows(run.before, run.after).find((r) => r.suite === "average")!;
  const row = (name: string, m: FactualityMetrics, reward: number | null) =>
    `| ${name} | ${pct(m.hallucinationRate)} | ${num(m.detail)} | ${pct(m.relevanceWinRate)} | ${pct(m.abstentionRate)} | ${num(m.meanLength, 1)} | ${num(reward, 3)} |`;
  return [
    "| policy | hallucination | detail (supported claims) | relevance win rate vs initial | abstention | length (words) | reward |",
    "|---|---:|---:|---:|---:|---:|---:|",
    row("initial (SFT)", averageOf(first).before, first.before.overall.reward),
    ...runs.map((run) => row(`RL: ${run.name}`, averageOf(run).after, run.after.overall.reward)),
  ].join("\n");
}

const BUCKET_ORDER = ["head", "torso", "tail"];

/** Hallucination of one bucket's answers with its standard error (over answers that make claims) and their count. */
function bucketHallucination(result: EvaluationResult, bucket: string) {
  const estimate = meanEstimate(answerPrecisions(result.answers.filter((a) => a.bucket === bucket)));
  return estimate === null ? undefined : { rate: 1 - estimate.mean, se: estimate.se, n: estimate.n };
}

/**
 * The study's popularity table: hallucination per bucket (FactWorld: head, torso, tail) of the
 * initial policy and of each run's final policy, ± one standard error over the answers that make
 * claims (n of them), then per run the change per bucket, whether the tail's fell at least as much as
 * the head's, and whether the quick start's overall goals hold. Empty when no answer has a bucket.
 */
export function renderBucketTable(runs: readonly StudyRun[]): string {
  const first = runs[0];
  if (!first) return "";
  const seen = new Set(first.before.answers.flatMap((a) => (a.bucket === undefined ? [] : [a.bucket])));
  const buckets = [...BUCKET_ORDER.filter((b) => seen.has(b)), ...[...seen].filter((b) => !BUCKET_ORDER.includes(b))];
  if (buckets.length === 0) return "";
  const cellOf = (result: EvaluationResult, bucket: string) => {
    const h = bucketHallucination(result, bucket);
    return h ? `${(100 * h.rate).toFixed(1)}% ± ${(100 * h.se).toFixed(1)} (${h.n})` : "–";
  };
  const row = (name: string, result: EvaluationResult) =>
    `| ${name} | ${buckets.map((b) => cellOf(result, b)).join(" | ")} |`;
  const points = (v: number) => {
    const shown = Number(v.toFixed(1));
    return `${shown < 0 ? "−" : shown > 0 ? "+" : "±"}${Math.abs(shown).toFixed(1)} pp`;
  };
  const readings = runs.map((run) => {
    const change = (bucket: string) => {
      const before = bucketHallucination(run.before, bucket);
      const after = bucketHallucination(run.after, bucket);
      return before && after ? 100 * (after.rate - before.rate) : undefined;
    };
    const changes = buckets.map((b) => {
      const c = change(b);
      return `${b} ${c === undefined ? "–" : points(c)}`;
    });
    const head = change("head");
    const tail = change("tail");
    const tailVsHead =
      head === undefined || tail === undefined
        ? ""
        : `; the tail's hallucination fell ${tail <= head ? "at least as much as" : "less than"} the head's`;
    const goals = verdict(comparisonRows(run.before, run.after)).meetsGoals ? "met" : "not met";
    return `- RL: ${run.name}: ${changes.join(", ")}${tailVsHead}; overall goals ${goals}.`;
  });
  return [
    `| policy | ${buckets.map((b) => `hallucination ${b}`).join(" | ")} |`,
    `|---|${buckets.map(() => "---:").join("|")}|`,
    row("initial (SFT)", first.before),
    ...runs.map((run) => row(`RL: ${run.name}`, run.after)),
    "",
    ...readings,
  ].join("\n");
}

export interface RunOutcome {
  readonly experiment: string;
  readonly outcome: "completed" | "failed" | "stopped";
  readonly reason: string;
  /** The learner's progress at the end, when the experiment has a learner. */
  readonly learner?: { readonly step: number; readonly totalSteps: number; readonly done: boolean };
  readonly startedAt: number;
  readonly endedAt: number;
}

const HEADLINES: Record<RunOutcome["outcome"], string> = {
  completed: "completed",
  failed: "failed — did not complete",
  stopped: "stopped before completing (run it again to resume)",
};

/**
 * How a run ended, for `runs/<experiment>/outcome.md`: written for every run, so one that did not
 * complete (and so has no final evaluation in report.md) says so, at which learner step, and why.
 */
export function renderOutcome(run: RunOutcome): string {
  const learner = run.learner;
  const learnerLine =
    learner === undefined
      ? []
      : learner.done && learner.step >= learner.totalSteps
        ? [`Learner: completed, step ${learner.step} of ${learner.totalSteps}.`, ""]
        : [`Learner: incomplete at step ${learner.step} of ${learner.totalSteps}.`, ""];
  return [
    `# ${run.experiment}: ${HEADLINES[run.outcome]}`,
    "",
    `Why: ${run.reason}`,
    "",
    ...learnerLine,
    `Ran ${Math.round((run.endedAt - run.startedAt) / 1000)} s, from ${new Date(run.startedAt).toISOString()} to ${new Date(run.endedAt).toISOString()}.`,
    ...(run.outcome === "completed"
      ? []
      : ["", "The run did not complete: any report.md beside this file is not this run's final evaluation."]),
    "",
  ].join("\n");
}
