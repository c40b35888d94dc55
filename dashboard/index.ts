/** What other parts may use from dashboard/. */

export { plotsMarkdown, type ReportPlot, studyChart, writeRunPlots } from "./report-plots.ts";
export { parseRunEvents, type RunEvent } from "./run-record.ts";
export { type ChartSeries, type LineChart, lineChartSvg } from "./svg-chart.ts";
