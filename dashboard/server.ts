/**
 * The dashboard's HTTP server (node:http): the page, its data (a snapshot, then live records by
 * Server-Sent Events), Prometheus' `/metrics`, and uPlot's script. Bound to 127.0.0.1 unless told
 * otherwise; with a token, every request must carry it (`?token=` or `Authorization: Bearer`).
 * A run directory that is missing or from an older factrl gets an error page that says so.
 */
import { existsSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { dashboardPage, errorPage } from "./page.ts";
import { lagHistogram, type RunEvent, readEvaluations, readLineage } from "./run-record.ts";
import type { DashboardState } from "./state.ts";

export interface DashboardOptions {
  readonly runDir: string;
  readonly state: DashboardState;
  /** Default 127.0.0.1: only this machine. */
  readonly host?: string;
  /** 0: a free port. */
  readonly port?: number;
  readonly token?: string;
}

export interface DashboardServer {
  /** Where the dashboard is (with the token, when there is one). */
  readonly url: string;
  readonly port: number;
  readonly close: () => Promise<void>;
}

const SSE_KEEPALIVE_MS = 15_000;
/** Lineage lines a search returns (the newest). */
const LINEAGE_LIMIT = 200;

const require = createRequire(import.meta.url);
const asset = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`));

/**
 * Why the run directory cannot be shown, if it cannot: missing, not a run, or recorded by an older
 * factrl (its learner wrote `learner.rewardMean`, before docs/metrics.md's names).
 */
export function runDirProblem(runDir: string): string | undefined {
  if (!existsSync(runDir)) return `There is no run directory at ${runDir}.`;
  const metrics = join(runDir, "metrics.jsonl");
  if (!existsSync(metrics) && !existsSync(join(runDir, "config.yaml")))
    return `${runDir} is not a factrl run directory: it has neither metrics.jsonl nor config.yaml.`;
  if (existsSync(metrics)) {
    const text = readFileSync(metrics, "utf8");
    if (text.includes('"learner.rewardMean"') && !text.includes('"learner.reward.mean"'))
      return (
        `${runDir} was recorded by an older factrl: its learner metrics predate the names in docs/metrics.md ` +
        "(learner.rewardMean, no reward terms), so there are no curves to draw. Run the experiment again with this version."
      );
  }
  return undefined;
}

const sseLine = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

export function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const { runDir, state, token } = options;
  const host = options.host ?? "127.0.0.1";
  const uplotScript = asset("uPlot.iife.min.js");
  const uplotStyle = asset("uPlot.min.css");
  const streams = new Set<ServerResponse>();

  const authorised = (req: IncomingMessage, url: URL) =>
    token === undefined || url.searchParams.get("token") === token || req.headers.authorization === `Bearer ${token}`;

  const configText = () => {
    const file = join(runDir, "config.yaml");
    return existsSync(file) ? readFileSync(file, "utf8") : undefined;
  };

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  };

  const unlisten = state.listen((event: RunEvent) => {
    if (streams.size === 0) return;
    const lines = [sseLine(event.kind, event.record)];
    // A new evaluation: its per-suite numbers are in the run directory now.
    if (event.kind === "metrics" && event.record.role === "evaluator")
      lines.push(sseLine("evaluations", readEvaluations(runDir)));
    for (const res of streams) res.write(lines.join(""));
  });

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://dashboard");
    // uPlot's files hold no run data: the page loads them without the token.
    if (!url.pathname.startsWith("/uplot.") && !authorised(req, url))
      return send(res, 401, "text/plain; charset=utf-8", "a valid token is required\n");
    switch (url.pathname) {
      case "/": {
        const problem = runDirProblem(runDir);
        return problem
          ? send(res, 404, "text/html; charset=utf-8", errorPage(problem))
          : send(res, 200, "text/html; charset=utf-8", dashboardPage(runDir));
      }
      case "/api/snapshot":
        return send(
          res,
          200,
          "application/json",
          JSON.stringify({ ...state.snapshot(), evaluations: readEvaluations(runDir), config: configText() ?? null }),
        );
      case "/api/lineage": {
        // ?group=ID or ?prompt=ID: that group's (or prompt's) lines, at most LINEAGE_LIMIT; neither: the lag histogram.
        const group = url.searchParams.get("group");
        const prompt = url.searchParams.get("prompt");
        const reply = (body: unknown) => send(res, 200, "application/json", JSON.stringify(body));
        const failed = (error: Error) => send(res, 500, "text/plain; charset=utf-8", `${error.message}\n`);
        if (group || prompt)
          readLineage(runDir, (l) => (group ? l.groupId === group : l.promptId === prompt)).then(
            (lines) => reply({ lines: lines.slice(-LINEAGE_LIMIT), matched: lines.length }),
            failed,
          );
        else
          readLineage(runDir, (l) => l.fate === "used").then(
            (lines) => reply({ lagHistogram: lagHistogram(lines) }),
            failed,
          );
        return;
      }
      case "/api/evaluations":
        return send(res, 200, "application/json", JSON.stringify(readEvaluations(runDir)));
      case "/api/events": {
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          connection: "keep-alive",
        });
        res.write(": factrl dashboard\n\n");
        streams.add(res);
        const keepalive = setInterval(() => res.write(": keepalive\n\n"), SSE_KEEPALIVE_MS);
        req.on("close", () => {
          clearInterval(keepalive);
          streams.delete(res);
        });
        return;
      }
      case "/metrics":
        state.prometheus.text().then(
          (text) => send(res, 200, state.prometheus.contentType, text),
          (error: Error) => send(res, 500, "text/plain; charset=utf-8", `${error.message}\n`),
        );
        return;
      case "/uplot.js":
        return send(res, 200, "text/javascript", uplotScript);
      case "/uplot.css":
        return send(res, 200, "text/css", uplotStyle);
      default:
        return send(res, 404, "text/html; charset=utf-8", errorPage(`Nothing at ${url.pathname}.`));
    }
  });

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      const { port } = server.address() as AddressInfo;
      const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
      resolve({
        url: `http://${shownHost}:${port}/${token === undefined ? "" : `?token=${encodeURIComponent(token)}`}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            unlisten();
            for (const res of streams) res.end();
            streams.clear();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
