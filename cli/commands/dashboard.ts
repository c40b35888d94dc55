/**
 * `factrl dashboard RUN_DIR`: serves the dashboard of a run directory — a finished run, or one still
 * writing on this machine (its metrics.jsonl is followed) — until interrupted. The same page and
 * `/metrics` the monitor serves during a run (docs/metrics.md).
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { followRunFile, makeDashboardState, runDirProblem, startDashboard } from "../../dashboard/index.ts";
import { runMain, UsageError } from "../run-main.ts";

export function registerDashboard(program: Command): void {
  program
    .command("dashboard")
    .description("serve a run directory's dashboard (curves, evaluations, actors, config) and Prometheus /metrics")
    .argument("<runDir>", "the run directory, e.g. runs/quickstart")
    .option("--host <host>", "address to listen on (0.0.0.0 exposes it to the network)", "127.0.0.1")
    .option("--port <port>", "port (0: a free one)", "8750")
    .option("--token <token>", "require this token on every request (?token= or Authorization: Bearer)")
    .action((dir: string, options: { host: string; port: string; token?: string }) => {
      const program = Effect.gen(function* () {
        const runDir = resolve(dir);
        const port = Number(options.port);
        if (!Number.isInteger(port) || port < 0 || port > 65_535)
          return yield* new UsageError({ reason: `--port: expected an integer in [0, 65535], got ${options.port}` });
        // The page says what is wrong too; the terminal says it first.
        const problem = runDirProblem(runDir);
        if (problem) yield* Effect.logWarning(problem);
        const state = makeDashboardState();
        yield* Effect.acquireRelease(
          Effect.sync(() => followRunFile(runDir, state)),
          (f) => Effect.sync(() => f.stop()),
        );
        const server = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: () =>
              startDashboard({
                runDir,
                state,
                host: options.host,
                port,
                ...(options.token ? { token: options.token } : {}),
              }),
            catch: (error) =>
              new UsageError({ reason: `cannot listen on ${options.host}:${port}: ${(error as Error).message}` }),
          }),
          (s) => Effect.promise(() => s.close()),
        );
        yield* Console.log(`dashboard of ${runDir}: ${server.url} (Prometheus: /metrics; Ctrl-C stops it)`);
        return yield* Effect.never;
      });
      runMain(Effect.scoped(program));
    });
}
