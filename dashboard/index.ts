/** What other parts may use from dashboard/. */

export { followRunFile } from "./follow.ts";
export { makePrometheus, prometheusSeries } from "./prometheus.ts";
export { plotsMarkdown, type ReportPlot, studyChart, writeRunPlots } from "./report-plots.ts";
export {
  type HeartbeatRecord,
  type LineageLine,
  lagHistogram,
  type MetricsRecord,
  parseRunEvents,
  type RunEvent,
  readLineage,
} from "./run-record.ts";
export { type DashboardServer, runDirProblem, startDashboard } from "./server.ts";
export { type DashboardState, makeDashboardState } from "./state.ts";
export { type ChartSeries, type LineChart, lineChartSvg } from "./svg-chart.ts";
