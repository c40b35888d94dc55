/**
 * The dashboard server over a real socket: `/metrics` read back with a Prometheus text-format
 * parser, the token, live records by SSE, malformed records counted and dropped, and the error pages
 * of a missing or older run directory.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterEach, describe, expect, it } from "vitest";
import { followRunFile } from "./follow.ts";
import { prometheusSeries } from "./prometheus.ts";
import { type DashboardServer, startDashboard } from "./server.ts";
import { makeDashboardState } from "./state.ts";

const line = (type: string, body: unknown, time = 1_700_000_000_000) =>
  JSON.stringify({ time, type, sender: "x", body });
const learnerLine = (step: number, values: Record<string, number>) =>
  line("MetricsEvent", { source: "learner", step, values, tags: { role: "learner" } });
const heartbeat = (id: string, processed: number) =>
  line("Heartbeat", {
    role: "rollout",
    id,
    host: "h1",
    pid: 1,
    uptimeMs: 5,
    processed,
    failed: 1,
    state: "running",
    restarts: 2,
  });

const servers: DashboardServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function runDir(lines: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "factrl-dashboard-"));
  writeFileSync(join(dir, "metrics.jsonl"), `${lines.join("\n")}\n`);
  writeFileSync(join(dir, "config.yaml"), "experiment: dash\n");
  return dir;
}

async function serve(dir: string, token?: string) {
  const state = makeDashboardState();
  const follower = followRunFile(dir, state, 50);
  const server = await startDashboard({ runDir: dir, state, port: 0, ...(token ? { token } : {}) });
  servers.push({
    ...server,
    close: () => {
      follower.stop();
      return server.close();
    },
  });
  return { state, server, base: server.url.replace(/\?.*$/, "") };
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { headers });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
};

const RECORDS = [
  learnerLine(1, {
    "learner.reward.mean": 0.5,
    "learner.term.precision.mean": 0.75,
    "learner.term.service:judge.std": 0.1,
    "learner.updateMs": 1500,
    "learner.consumed": 4,
    "learner.drops.stale": 1,
    "learner.malformedShare": 0.25,
  }),
  learnerLine(2, { "learner.reward.mean": 0.7, "learner.consumed": 8, "learner.drops.stale": 3 }),
  heartbeat("rollout-1", 10),
  "{not json",
  line("MetricsEvent", { source: "rollout-1", values: { "rollout.tokensPerSecond": "fast" }, tags: {} }),
  line("Heartbeat", { role: "rollout" }),
];

describe("the dashboard state", () => {
  it("keeps throughput and busy/stalled shares per actor as well as over all actors", () => {
    const state = makeDashboardState();
    const timedLine = (source: string, time: number, values: Record<string, number>) =>
      line("MetricsEvent", { source, values, tags: {} }, time);
    state.ingestLine(timedLine("rollout-0", 1_000, { "rollout.busyShare": 0.8, "rollout.fetchMs": 3 }));
    state.ingestLine(timedLine("rollout-1", 2_000, { "rollout.busyShare": 0.4 }));
    state.ingestLine(timedLine("reward-0", 3_000, { "reward.stalledShare": 0.1 }));
    const { timed } = state.snapshot();
    expect(timed["rollout.busyShare"]).toEqual([
      [1, 0.8],
      [2, 0.4],
    ]);
    expect(timed["rollout.busyShare@rollout-0"]).toEqual([[1, 0.8]]);
    expect(timed["rollout.busyShare@rollout-1"]).toEqual([[2, 0.4]]);
    expect(timed["reward.stalledShare@reward-0"]).toEqual([[3, 0.1]]);
    // Other timed metrics stay one curve over all actors.
    expect(Object.keys(timed).filter((k) => k.startsWith("rollout.fetchMs"))).toEqual(["rollout.fetchMs"]);
  });
});

describe("prometheusSeries", () => {
  it("maps the names of docs/metrics.md to Prometheus conventions: snake case, units, totals, labels", () => {
    expect(prometheusSeries("learner.updateMs", "learner")).toEqual({
      name: "factrl_learner_update_seconds",
      labels: { source: "learner" },
      kind: "gauge",
      scale: 1e-3,
    });
    expect(prometheusSeries("learner.term.precision.supported.mean", "l")).toMatchObject({
      name: "factrl_learner_reward_term",
      labels: { term: "precision.supported", stat: "mean" },
    });
    expect(prometheusSeries("learner.drops.zeroVariance", "l")).toMatchObject({
      name: "factrl_learner_dropped_groups_total",
      labels: { reason: "zeroVariance" },
      kind: "counter",
    });
    expect(prometheusSeries("learner.answerTokens.std", "l")).toMatchObject({
      name: "factrl_learner_answer_tokens",
      labels: { stat: "std" },
    });
    expect(prometheusSeries("learner.truncatedShare", "l").name).toBe("factrl_learner_truncated_ratio");
    expect(prometheusSeries("eval.seconds", "e").name).toBe("factrl_eval_seconds");
    expect(prometheusSeries("rollout.tokensPerSecond", "r").name).toBe("factrl_rollout_tokens_per_second");
    expect(prometheusSeries("queue.scored.pending", "monitor-1")).toMatchObject({
      name: "factrl_queue_pending_messages",
      labels: { queue: "scored" },
      kind: "gauge",
    });
    expect(prometheusSeries("queue.scored.deadLettered", "monitor-1")).toMatchObject({
      name: "factrl_queue_dead_lettered_total",
      kind: "counter",
    });
  });
});

describe("the dashboard server", () => {
  it("serves /metrics in the Prometheus text format: gauges scaled to their unit, totals as counters, terms as labels", async () => {
    const { base } = await serve(runDir(RECORDS));
    const res = await get(`${base}metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const families = new Map(parsePrometheusTextFormat(res.text).map((f) => [f.name, f]));
    const sample = (name: string, labels: Record<string, string> = {}) =>
      families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
    expect(families.get("factrl_learner_update_seconds")?.type).toBe("GAUGE");
    expect(Number(sample("factrl_learner_update_seconds")?.value)).toBe(1.5);
    expect(Number(sample("factrl_learner_reward", { stat: "mean" })?.value)).toBe(0.7);
    expect(Number(sample("factrl_learner_reward_term", { term: "precision", stat: "mean" })?.value)).toBe(0.75);
    expect(Number(sample("factrl_learner_reward_term", { term: "service:judge", stat: "std" })?.value)).toBe(0.1);
    expect(Number(sample("factrl_learner_malformed_ratio")?.value)).toBe(0.25);
    // Totals: counters ending _total, whose value is the newest total (4 then 8; 1 then 3).
    expect(families.get("factrl_learner_consumed_groups_total")?.type).toBe("COUNTER");
    expect(Number(sample("factrl_learner_consumed_groups_total")?.value)).toBe(8);
    expect(Number(sample("factrl_learner_dropped_groups_total", { reason: "stale" })?.value)).toBe(3);
    expect(Number(sample("factrl_learner_step")?.value)).toBe(2);
    expect(
      Number(sample("factrl_actor_processed_total", { role: "rollout", id: "rollout-1", host: "h1" })?.value),
    ).toBe(10);
    expect(Number(sample("factrl_actor_restarts_total", { id: "rollout-1" })?.value)).toBe(2);
    // Three lines were not records: counted, and nothing of theirs shown.
    expect(Number(sample("factrl_dashboard_malformed_events_total", { kind: "record" })?.value)).toBe(3);
    expect(families.has("factrl_rollout_tokens_per_second")).toBe(false);
  });

  it("gives the page, and a snapshot with the curves, actors, evaluations and config", async () => {
    const dir = runDir(RECORDS);
    const { base } = await serve(dir);
    const page = await get(base);
    expect(page.status).toBe(200);
    expect(page.text).toContain('id="training"');
    expect((await get(`${base}uplot.js`)).text).toContain("uPlot");
    const snapshot = JSON.parse((await get(`${base}api/snapshot`)).text);
    expect(snapshot.learner["learner.reward.mean"]).toEqual([
      [1, 0.5],
      [2, 0.7],
    ]);
    expect(snapshot.actors.map((a: { id: string }) => a.id)).toEqual(["rollout-1"]);
    expect(snapshot.malformed).toBe(3);
    expect(snapshot.config).toBe("experiment: dash\n");
    expect(snapshot.evaluations).toEqual([]);
    // An evaluation written later is served in version order; a file that is not one is left out.
    mkdirSync(join(dir, "eval"));
    const suite = { hallucinationRate: 0.3, detail: 1.5, relevanceWinRate: 0.5 };
    for (const version of [10, 2])
      writeFileSync(
        join(dir, "eval", `v${version}.json`),
        JSON.stringify({ version, overall: suite, bySuite: { bio: suite }, answers: [] }),
      );
    writeFileSync(join(dir, "eval", "v3.json"), "{cut mid-write");
    const evaluations = JSON.parse((await get(`${base}api/evaluations`)).text);
    expect(evaluations.map((e: { version: number }) => e.version)).toEqual([2, 10]);
    expect(evaluations[0].bySuite.bio).toEqual(suite);
  });

  it("streams records appended to the run by SSE", async () => {
    const dir = runDir(RECORDS);
    const { base } = await serve(dir);
    const received = new Promise<string>((resolve, reject) => {
      const req = request(`${base}api/events`, (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes("event: metrics")) {
            resolve(text);
            req.destroy();
          }
        });
      });
      req.on("error", reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(
      join(dir, "metrics.jsonl"),
      `${[...RECORDS, learnerLine(3, { "learner.reward.mean": 0.9 })].join("\n")}\n`,
    );
    const text = await received;
    const data = JSON.parse(/event: metrics\ndata: (.*)\n/.exec(text)![1]!);
    expect(data).toMatchObject({ role: "learner", step: 3, values: { "learner.reward.mean": 0.9 } });
  });

  it("searches the lineage by group or prompt, and counts the used groups' policy lags", async () => {
    const dir = runDir(RECORDS);
    const lineage = [
      { groupId: "g1", promptId: "bio:1", fate: "used", policyLag: 0 },
      { groupId: "g2", promptId: "bio:1", fate: "used", policyLag: 2 },
      { groupId: "g3", promptId: "bio:2", fate: "stale" },
      { groupId: "g4", promptId: "bio:2", fate: "used", policyLag: 2 },
    ];
    writeFileSync(join(dir, "lineage.jsonl"), `${lineage.map((l) => JSON.stringify(l)).join("\n")}\n{cut`);
    const { base } = await serve(dir);
    const json = async (path: string) => JSON.parse((await get(`${base}${path}`)).text);
    expect(await json("api/lineage")).toEqual({ lagHistogram: [1, 0, 2] });
    expect((await json("api/lineage?group=g3")).lines).toEqual([lineage[2]]);
    expect((await json("api/lineage?prompt=bio:1")).lines.map((l: { groupId: string }) => l.groupId)).toEqual([
      "g1",
      "g2",
    ]);
    expect(await json("api/lineage?group=nope")).toEqual({ lines: [], matched: 0 });
  });

  it("with a token, refuses requests without it (uPlot's file excepted)", async () => {
    const { base, server } = await serve(runDir(RECORDS), "s3cret");
    expect(server.url).toBe(`${base}?token=s3cret`);
    expect((await get(`${base}metrics`)).status).toBe(401);
    expect((await get(`${base}api/snapshot?token=wrong`)).status).toBe(401);
    expect((await get(`${base}metrics`, { authorization: "Bearer s3cret" })).status).toBe(200);
    expect((await get(server.url)).status).toBe(200);
    expect((await get(`${base}uplot.js`)).status).toBe(200);
  });

  it("says clearly when the run directory is missing, not a run, or from an older factrl", async () => {
    const missing = await serve(join(tmpdir(), "factrl-no-such-run"));
    const page = await get(missing.base);
    expect(page.status).toBe(404);
    expect(page.text).toContain("There is no run directory at");
    const empty = mkdtempSync(join(tmpdir(), "factrl-dashboard-"));
    expect((await get((await serve(empty)).base)).text).toContain("is not a factrl run directory");
    const old = runDir([learnerLine(1, { "learner.rewardMean": 0.5 })]);
    const oldPage = await get((await serve(old)).base);
    expect(oldPage.status).toBe(404);
    expect(oldPage.text).toContain("recorded by an older factrl");
  });
});
