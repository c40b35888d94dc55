/**
 * `factrl status`: a table of the experiment's actors — those answering the NATS services protocol, and
 * those that cannot answer right now (busy, silent), from their last recorded heartbeat.
 */
import type { Command } from "commander";
import { Console, Effect } from "effect";
// The module itself, not actors/index.ts: the index also exports the roles (tfjs and all).
import { type ActorStatus, listActors } from "../../actors/runtime-status.ts";
import { commandLayer, natsOption, resolveTarget } from "../nats-target.ts";
import { roles } from "../roles.ts";
import { runMain } from "../run-main.ts";

const duration = (ms: number): string => {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
};

const clockTime = (epochMs: number): string => new Date(epochMs).toTimeString().slice(0, 8);

/** STATE as shown: a busy or silent actor says so (its heartbeat state is that of its last heartbeat). */
function shownState(a: ActorStatus): string {
  if (a.busy !== undefined) return "busy";
  if (!a.answered) return a.state === "failed" ? "failed" : "silent";
  return a.state;
}

/** What an operator needs to know beyond the state: busy with what since when, silent since when, why it stops. */
function note(a: ActorStatus, now: number): string {
  if (a.busy !== undefined)
    return `busy since ${clockTime(a.busy.since)} (${duration(Math.max(0, now - a.busy.since))}): ${a.busy.what}`;
  if (!a.answered && a.state !== "failed") return `no answer; last seen ${clockTime(now - a.heartbeatAgeMs)}`;
  return a.reason ?? "";
}

/** A plain, aligned text table. */
export function formatStatusTable(actors: readonly ActorStatus[], now = Date.now()): string {
  const header = [
    "ROLE",
    "ID",
    "HOST",
    "PID",
    "STATE",
    "UPTIME",
    "PROCESSED",
    "FAILED",
    "RESTARTS",
    "POLICY",
    "HEARTBEAT",
    "NOTE",
  ];
  const rows = actors.map((a) => [
    a.role,
    a.id,
    a.host,
    String(a.pid),
    shownState(a),
    duration(a.uptimeMs),
    String(a.processed),
    String(a.failed),
    String(a.restarts ?? 0),
    a.policyVersion !== undefined ? `v${a.policyVersion}` : "-",
    `${(a.heartbeatAgeMs / 1000).toFixed(1)}s ago`,
    note(a, now),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description(
      "list the actors of an experiment (role, id, host, pid, state, uptime, processed, failed, restarts, heartbeat); " +
        "a busy or silent actor is listed from its last heartbeat",
    )
    .requiredOption("--experiment <id>", "experiment id")
    .addOption(natsOption("NATS server (default: FACTRL_NATS_URL, then the URL recorded by a local launcher)"))
    .option("--config <file>", "config with the server's credentials/TLS")
    .option("--output-dir <dir>", "where local launchers record their NATS URL", "runs")
    .option("--json", "print JSON (one array of actors) instead of a table")
    .action((options: { experiment: string; nats?: string; config?: string; outputDir: string; json?: boolean }) => {
      const run = Effect.gen(function* () {
        const target = yield* resolveTarget(options);
        // Asked by role: a dashboard key may not ask every service on the server (docs/security.md).
        const actors = yield* listActors(target.experiment, undefined, roles.names).pipe(
          Effect.scoped,
          Effect.provide(commandLayer(target, "factrl-status", "dashboard")),
        );
        if (options.json) return yield* Console.log(JSON.stringify(actors));
        if (actors.length === 0) return yield* Console.log(`no live actors in experiment ${target.experiment}`);
        yield* Console.log(formatStatusTable(actors));
      });
      runMain(run);
    });
}
