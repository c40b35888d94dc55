/**
 * The dashboard's page: one HTML document with its script inline, drawing with uPlot (served by the
 * dashboard at /uplot.js). It loads a snapshot, then follows the run by Server-Sent Events: learner
 * curves by step, throughput by time, evaluations per suite across versions, the actor table from
 * heartbeats, and the resolved config. Each chart's element says how many points it has
 * (`data-points`), which the browser test waits for.
 */
import { PER_ACTOR_METRIC } from "./state.ts";

const escapeHtml = (text: string) =>
  text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

const STYLE = `
body { font-family: system-ui, sans-serif; margin: 1rem 1.5rem; color: #222; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; } h2 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
.muted { color: #777; font-size: .85rem; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: .8rem; }
.chart { border: 1px solid #ddd; border-radius: 4px; padding: .3rem; min-height: 60px; }
.chart .empty { color: #999; font-size: .85rem; padding: .5rem; }
table { border-collapse: collapse; font-size: .85rem; } td, th { border: 1px solid #ddd; padding: .2rem .5rem; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
pre { background: #f6f6f6; padding: .6rem; max-height: 24rem; overflow: auto; font-size: .8rem; }
.state-running { color: #1a7f37; } .state-failed { color: #cf222e; } .state-draining, .state-stopped { color: #9a6700; }
`;

/** Runs in the browser: kept as plain JavaScript text (no build step). */
const SCRIPT = String.raw`
const PER_ACTOR_METRIC = ${PER_ACTOR_METRIC};
const token = new URLSearchParams(location.search).get("token");
const q = token ? "?token=" + encodeURIComponent(token) : "";
const learner = new Map(), timed = new Map(), actors = new Map();
let evaluations = [];
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#999999", "#000000"];

const pick = (pattern) => [...learner.keys()].filter((k) => pattern.test(k)).sort();
const curve = (map, key) => map.get(key) || [];
const perActor = (name) => [...timed.keys()].filter((k) => k.startsWith(name + "@")).sort()
  .map((k) => ({ label: k.slice(name.length + 1), points: curve(timed, k) }));
const labelOf = (key) => key.replace(/^learner\.(term\.)?/, "").replace(/\.mean$/, "");
const CHARTS = [
  { id: "reward", title: "Reward (mean ± std over the step's answers)", series: () => {
    const mean = curve(learner, "learner.reward.mean"), std = new Map(curve(learner, "learner.reward.std"));
    return [
      { label: "mean", points: mean },
      { label: "mean − std", points: mean.map(([x, y]) => [x, y - (std.get(x) ?? 0)]) },
      { label: "mean + std", points: mean.map(([x, y]) => [x, y + (std.get(x) ?? 0)]) },
    ];
  } },
  { id: "terms", title: "Reward terms (mean)", series: () =>
    pick(/^learner\.term\.[^.]+\.mean$/).map((k) => ({ label: labelOf(k), points: curve(learner, k) })) },
  { id: "components", title: "Reward term components (mean)", series: () =>
    pick(/^learner\.term\.[^.]+\..+\.mean$/).map((k) => ({ label: labelOf(k), points: curve(learner, k) })) },
  { id: "length", title: "Answer length (tokens, mean)", series: () => [{ label: "tokens", points: curve(learner, "learner.answerTokens.mean") }] },
  { id: "shares", title: "Malformed / truncated / abstaining share", series: () =>
    ["malformedShare", "truncatedShare", "abstainedShare"].map((k) => ({ label: k, points: curve(learner, "learner." + k) })) },
  { id: "update", title: "Update: KL, clip fraction, entropy", series: () =>
    ["kl", "clipFraction", "entropy"].map((k) => ({ label: k, points: curve(learner, "learner." + k) })) },
  { id: "lag", title: "Policy lag of the groups used (versions)", series: () =>
    ["policyLag.mean", "policyLag.max"].map((k) => ({ label: k, points: curve(learner, "learner." + k) })) },
  { id: "drops", title: "Groups consumed and dropped (totals)", series: () =>
    ["learner.consumed", ...pick(/^learner\.drops\./)].map((k) => ({ label: labelOf(k), points: curve(learner, k) })) },
  { id: "throughput", title: "Rollout tokens per second, per actor", time: true, series: () => perActor("rollout.tokensPerSecond") },
  { id: "busy", title: "Share of time busy (sampling, scoring), per actor", time: true, series: () =>
    [...perActor("rollout.busyShare"), ...perActor("reward.busyShare")] },
  { id: "stalled", title: "Share of time stalled (work in hand, waiting on messaging or weights), per actor", time: true, series: () =>
    [...perActor("rollout.stalledShare"), ...perActor("reward.stalledShare")] },
  { id: "queues", title: "Work queues: messages waiting", time: true, series: () =>
    [...timed.keys()].filter((k) => /^queue\.\w+\.pending$/.test(k)).sort().map((k) => ({ label: k.split(".")[1], points: curve(timed, k) })) },
];
const plots = new Map();

function aligned(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  return [xs, ...series.map((s) => { const m = new Map(s.points); return xs.map((x) => m.has(x) ? m.get(x) : null); })];
}

function draw() {
  for (const spec of CHARTS) {
    const el = document.getElementById("chart-" + spec.id);
    const series = spec.series().filter((s) => s.points.length > 0);
    const points = series.reduce((n, s) => n + s.points.length, 0);
    el.dataset.points = String(points);
    if (points === 0) continue;
    const labels = series.map((s) => s.label).join("|");
    const data = aligned(series);
    const existing = plots.get(spec.id);
    if (existing && existing.labels === labels) { existing.plot.setData(data); continue; }
    if (existing) existing.plot.destroy();
    el.innerHTML = "";
    const plot = new uPlot({
      title: spec.title, width: Math.max(320, el.clientWidth - 8), height: 220,
      scales: { x: { time: !!spec.time } },
      // Steps are whole numbers: no ticks between them.
      axes: [spec.time ? {} : { label: "learner step", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, {}],
      series: [{ label: spec.time ? "time" : "step" }, ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: true }))],
    }, data, el);
    plots.set(spec.id, { plot, labels });
  }
}

// Live events arrive several times a second; redrawing for each would make the watching browser compete
// with training for the machine's cores (bench/dashboard-open.ts). Once a second is enough for a person.
const REDRAW_MS = 1000;
const throttled = (fn) => { let pending = false; return () => { if (!pending) { pending = true; setTimeout(() => { pending = false; fn(); }, REDRAW_MS); } }; };
// A tab in the background draws nothing; it catches up when shown again.
const whenVisible = (fn) => () => { if (!document.hidden) fn(); };
const redraw = throttled(whenVisible(draw));
const redrawActors = throttled(whenVisible(() => renderActors()));
document.addEventListener("visibilitychange", () => { if (!document.hidden) { draw(); renderActors(); } });

const esc = (t) => String(t).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
function renderActors() {
  const rows = [...actors.values()].sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id));
  document.getElementById("actors").innerHTML = rows.length === 0 ? "<p class=muted>No heartbeat yet.</p>" :
    "<table><tr><th>role</th><th>id</th><th>host</th><th>state</th><th>processed</th><th>failed</th><th>restarts</th><th>policy</th><th>busy with</th><th>seen</th></tr>" +
    rows.map((a) => "<tr data-actor=\"" + esc(a.id) + "\"><td>" + esc(a.role) + "</td><td class=text>" + esc(a.id) + "</td><td class=text>" + esc(a.host) +
      "</td><td class=\"text state-" + esc(a.state) + "\">" + esc(a.state) + "</td><td>" + a.processed + "</td><td>" + a.failed + "</td><td>" + a.restarts +
      "</td><td>" + (a.policyVersion ?? "–") + "</td><td class=text>" + esc(a.busy ?? "") + "</td><td>" + Math.max(0, Math.round((Date.now() - a.time) / 1000)) + " s ago</td></tr>").join("") + "</table>";
}

const EVAL = [["hallucinationRate", "Hallucination rate", true], ["detail", "Detail (supported claims)", false], ["relevanceWinRate", "Relevance win rate", true]];
function renderEvaluations() {
  const el = document.getElementById("evaluations");
  if (evaluations.length === 0) { el.innerHTML = "<p class=muted>No evaluation yet.</p>"; return; }
  const suites = ["all suites", ...new Set(evaluations.flatMap((e) => Object.keys(e.bySuite)))];
  const fmt = (v, pct) => typeof v !== "number" ? "–" : pct ? (100 * v).toFixed(1) + "%" : v.toFixed(2);
  el.innerHTML = EVAL.map(([key, title, pct]) => "<h3 class=muted>" + title + " per suite, by policy version</h3><table><tr><th>suite</th>" +
    evaluations.map((e) => "<th>v" + e.version + "</th>").join("") + "</tr>" +
    suites.map((s) => "<tr><td>" + esc(s) + "</td>" + evaluations.map((e) => "<td>" + fmt(s === "all suites" ? e.overall[key] : e.bySuite[s]?.[key], pct) + "</td>").join("") + "</tr>").join("") +
    "</table>").join("");
}

let lagPlot;
async function refreshLineage() {
  const { lagHistogram } = await (await fetch("/api/lineage" + q)).json();
  const el = document.getElementById("chart-lag-histogram");
  const total = lagHistogram.reduce((a, b) => a + b, 0);
  el.dataset.points = String(total);
  if (total === 0) return;
  const data = [lagHistogram.map((_, i) => i), lagHistogram];
  if (lagPlot && lagPlot.data[0].length === data[0].length) { lagPlot.setData(data); return; }
  if (lagPlot) lagPlot.destroy();
  el.innerHTML = "";
  lagPlot = new uPlot({
    title: "Policy lag of the groups used (lineage: groups per lag)", width: Math.max(320, el.clientWidth - 8), height: 200,
    scales: { x: { time: false, range: (u, lo, hi) => [lo - 0.5, hi + 0.5] } },
    axes: [{ label: "versions behind the trained policy", incrs: [1, 2, 5, 10] }, {}],
    series: [{ label: "lag" }, { label: "groups", stroke: COLOURS[0], fill: COLOURS[0] + "88", paths: uPlot.paths.bars({ size: [0.6] }), points: { show: false } }],
  }, data, el);
}

async function searchLineage(event) {
  event.preventDefault();
  const value = document.getElementById("lineage-id").value.trim();
  const by = document.getElementById("lineage-by").value;
  const out = document.getElementById("lineage-results");
  if (!value) return;
  const { lines, matched } = await (await fetch("/api/lineage" + (q ? q + "&" : "?") + by + "=" + encodeURIComponent(value))).json();
  out.textContent = matched === 0 ? "No traced group matches (output.lineageShare, or never delivered to the learner)." :
    (matched > lines.length ? "newest " + lines.length + " of " + matched + "\n\n" : "") +
    lines.map((l) => "group " + l.groupId + " · prompt " + l.promptId + " (" + l.suite + ") · " + l.fate +
      (l.fate === "used" ? " in step " + l.step + ", trained on v" + l.trainedOn + ", lag " + l.policyLag : l.reason ? ": " + l.reason : "") +
      "\n  sampled by v" + l.sampledBy + " on " + l.rolloutActor + " in " + Math.round(l.sampleMs) + " ms; reward " + Math.round(l.rewardLatencyMs) + " ms later by " + l.scorer +
      "\n" + l.answers.map((a, i) => "  answer " + (i + 1) + ": reward " + a.reward.toFixed(3) + " (" + a.tokens + " tokens, " + a.finishReason + ") " + a.text).join("\n")).join("\n\n");
}

function addMetrics(r) {
  if (r.tags && r.tags.kind === "summary") return;
  for (const [k, v] of Object.entries(r.values)) {
    const map = r.role === "learner" && r.step !== undefined ? learner : timed;
    const x = map === learner ? r.step : r.time / 1000;
    const keys = map === timed && PER_ACTOR_METRIC.test(k) ? [k, k + "@" + r.source] : [k];
    for (const key of keys) {
      if (!map.has(key)) map.set(key, []);
      const pts = map.get(key);
      if (pts.length > 0 && pts[pts.length - 1][0] === x) pts[pts.length - 1] = [x, v]; else pts.push([x, v]);
    }
  }
}

async function start() {
  // One element per chart, from CHARTS: the page's list of charts is this one.
  document.getElementById("training").innerHTML = CHARTS.map((c) =>
    '<div class="chart" id="chart-' + c.id + '" data-points="0"><div class="empty">' + esc(c.title) + ": no points yet</div></div>").join("");
  const snap = await (await fetch("/api/snapshot" + q)).json();
  for (const [k, v] of Object.entries(snap.learner)) learner.set(k, v);
  for (const [k, v] of Object.entries(snap.timed)) timed.set(k, v);
  for (const a of snap.actors) actors.set(a.id, a);
  evaluations = snap.evaluations;
  document.getElementById("config").textContent = snap.config ?? "(no config.yaml in the run directory)";
  document.getElementById("malformed").textContent = String(snap.malformed);
  draw(); renderActors(); renderEvaluations();
  const events = new EventSource("/api/events" + q);
  events.addEventListener("metrics", (e) => { addMetrics(JSON.parse(e.data)); redraw(); });
  events.addEventListener("heartbeat", (e) => { const a = JSON.parse(e.data); actors.set(a.id, a); redrawActors(); });
  events.addEventListener("evaluations", (e) => { evaluations = JSON.parse(e.data); renderEvaluations(); });
  events.onopen = () => { document.getElementById("live").textContent = "live"; };
  events.onerror = () => { document.getElementById("live").textContent = "disconnected (retrying)"; };
  document.getElementById("lineage-form").addEventListener("submit", (e) => searchLineage(e).catch((error) => { document.getElementById("lineage-results").textContent = error.message; }));
  refreshLineage();
  setInterval(renderActors, 5000);
  setInterval(refreshLineage, 10000);
  // The initial policy's evaluation publishes no metrics event: look for new evaluation files too.
  setInterval(async () => { evaluations = await (await fetch("/api/evaluations" + q)).json(); renderEvaluations(); }, 10000);
}
start().catch((error) => { document.getElementById("live").textContent = "could not load: " + error.message; });
`;

export function dashboardPage(runDir: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>factrl · ${escapeHtml(runDir)}</title>
<link rel="stylesheet" href="uplot.css"><style>${STYLE}</style></head>
<body>
<h1>factrl dashboard</h1>
<div class="muted">${escapeHtml(runDir)} · <span id="live">loading</span> · records dropped as malformed: <span id="malformed">0</span> · names: docs/metrics.md · Prometheus: <a href="metrics">/metrics</a></div>
<h2>Training</h2>
<div class="charts" id="training"></div>
<h2>Evaluations</h2>
<div id="evaluations"></div>
<h2>Lineage</h2>
<div class="charts"><div class="chart" id="chart-lag-histogram" data-points="0"><div class="empty">policy lag: no traced group used yet</div></div></div>
<form id="lineage-form"><select id="lineage-by"><option value="group">group id</option><option value="prompt">prompt id</option></select>
<input id="lineage-id" size="32" placeholder="e.g. g12 or bio:6"> <button>trace</button> <span class="muted">(also: factrl trace GROUP_ID)</span></form>
<pre id="lineage-results"></pre>
<h2>Actors</h2>
<div id="actors"></div>
<h2>Resolved config</h2>
<pre id="config"></pre>
<script src="uplot.js"></script>
<script>${SCRIPT}</script>
</body></html>
`;
}

export function errorPage(problem: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>factrl dashboard: cannot show this run</title><style>${STYLE}</style></head>
<body><h1>factrl dashboard: cannot show this run</h1><p id="problem">${escapeHtml(problem)}</p>
<p class="muted">Start one with <code>factrl run CONFIG</code>, or point <code>factrl dashboard</code> at <code>runs/&lt;experiment&gt;</code>.</p></body></html>
`;
}
