/**
 * The report's plots, drawn from what a run directory records: the reward and each of its terms over
 * the learner's steps, and hallucination / detail / relevance per evaluation suite across the
 * evaluated versions (the first is the initial policy, the last the final one). Written as SVG files
 * next to report.md; study.md gets one comparing the arms' hallucination over training.
 */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type EvaluationRecord,
  learnerCurve,
  parseRunEvents,
  readEvaluations,
  rewardTerms,
  type SuiteMetrics,
} from "./run-record.ts";
import { type ChartSeries, type LineChart, lineChartSvg } from "./svg-chart.ts";

/** A plot written next to a Markdown file: its path relative to that file, and its title. */
export interface ReportPlot {
  readonly file: string;
  readonly title: string;
}

const EVAL_METRICS: readonly (readonly [keyof SuiteMetrics, string])[] = [
  ["hallucinationRate", "Hallucination rate"],
  ["detail", "Detail (supported claims)"],
  ["relevanceWinRate", "Relevance win rate"],
];

/** One series per suite (and `all suites`) of an evaluation metric across versions. */
export function evaluationSeries(evaluations: readonly EvaluationRecord[], metric: keyof SuiteMetrics): ChartSeries[] {
  const suites = [...new Set(evaluations.flatMap((e) => Object.keys(e.bySuite)))];
  const seriesOf = (name: string, metricOf: (e: EvaluationRecord) => number | null | undefined): ChartSeries => ({
    name,
    points: evaluations.flatMap((e) => {
      const v = metricOf(e);
      return typeof v === "number" ? [[e.version, v] as const] : [];
    }),
  });
  return [
    seriesOf("all suites", (e) => e.overall[metric]),
    ...suites.map((suite) => seriesOf(suite, (e) => e.bySuite[suite]?.[metric])),
  ].filter((s) => s.points.length > 0);
}

/** The charts of a run directory (those with something to draw). */
export function runCharts(runDir: string): { readonly name: string; readonly chart: LineChart }[] {
  const metricsFile = join(runDir, "metrics.jsonl");
  const { events } = parseRunEvents(existsSync(metricsFile) ? readFileSync(metricsFile, "utf8") : "");
  const charts: { name: string; chart: LineChart }[] = [];
  const reward = learnerCurve(events, "learner.reward.mean");
  if (reward.length > 0)
    charts.push({
      name: "reward",
      chart: {
        title: "Reward during training (mean over the step's answers)",
        xLabel: "learner step",
        yLabel: "reward",
        series: [{ name: "reward", points: reward }],
      },
    });
  // The terms themselves; their components (counts, flags) are on the dashboard.
  const terms = rewardTerms(events).filter((t) => !t.includes("."));
  if (terms.length > 0)
    charts.push({
      name: "reward-terms",
      chart: {
        title: "Reward terms during training (mean)",
        xLabel: "learner step",
        yLabel: "term value",
        series: terms.map((t) => ({ name: t, points: learnerCurve(events, `learner.term.${t}.mean`) })),
      },
    });
  const evaluations = readEvaluations(runDir);
  for (const [metric, title] of EVAL_METRICS) {
    const series = evaluationSeries(evaluations, metric);
    if (series.length > 0)
      charts.push({
        name: `eval-${metric}`,
        chart: { title: `${title} per suite`, xLabel: "policy version", yLabel: title.toLowerCase(), series },
      });
  }
  return charts;
}

/** Writes the run's charts as `<dir>/<name>.svg`; returns them relative to `relativeTo`'s folder name. */
export async function writeRunPlots(runDir: string, dirName = "report-plots"): Promise<ReportPlot[]> {
  const charts = runCharts(runDir);
  if (charts.length === 0) return [];
  await mkdir(join(runDir, dirName), { recursive: true });
  return Promise.all(
    charts.map(async ({ name, chart }) => {
      await writeFile(join(runDir, dirName, `${name}.svg`), lineChartSvg(chart));
      return { file: `${dirName}/${name}.svg`, title: chart.title };
    }),
  );
}

/** The study's figure: each arm's overall hallucination rate across its evaluated versions. */
export function studyChart(arms: readonly { readonly name: string; readonly runDir: string }[]): LineChart {
  return {
    title: "Hallucination rate over training, by arm",
    xLabel: "policy version",
    yLabel: "hallucination rate",
    series: arms.map((arm) => ({
      name: arm.name,
      points: readEvaluations(arm.runDir).flatMap((e) =>
        typeof e.overall.hallucinationRate === "number" ? [[e.version, e.overall.hallucinationRate] as const] : [],
      ),
    })),
  };
}

/** Markdown embedding the plots (paths relative to the Markdown file). */
export const plotsMarkdown = (plots: readonly ReportPlot[]): string[] =>
  plots.length === 0 ? [] : ["## Plots", "", ...plots.flatMap((p) => [`![${p.title}](${p.file})`, ""])];
