/** Runs spawned by the benches, and their process trees from /proc (Linux): CPU accounting, and the chaos suite's victims. */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const REPO = resolve(import.meta.dirname, "../..");

/**
 * `factrl run CONFIG --nats URL --set …` against the bench's own server (FACTRL_NATS_URL cleared so
 * the environment cannot redirect it), its output into `logFile`.
 */
export const spawnFactrlRun = (
  config: string,
  natsUrl: string,
  sets: readonly string[],
  logFile: string,
): ChildProcess => {
  const child = spawn(
    process.execPath,
    [join(REPO, "bin", "factrl.mjs"), "run", config, "--nats", natsUrl, ...sets.flatMap((s) => ["--set", s])],
    { cwd: REPO, env: { ...process.env, FACTRL_NATS_URL: "" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const log = createWriteStream(logFile);
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return child;
};

/** One process of a tree: its role (`actor <role>`, `nats-server`, else `launcher`) and CPU seconds so far. */
export interface TreeProcess {
  readonly pid: number;
  readonly role: string;
  readonly cpu: number;
  /** The command line, arguments separated by spaces. */
  readonly cmd: string;
}

/** `root` and every process below it. */
export const processTree = (root: number): TreeProcess[] => {
  const procs = readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .flatMap((pid) => {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
        // After "pid (comm) ": ppid at index 1, utime and stime (clock ticks of 1/100 s) at 11 and 12.
        return [{ pid: Number(pid), ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / 100 }];
      } catch {
        return []; // gone meanwhile
      }
    });
  const inTree = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) {
      if (!inTree.has(p.pid) && inTree.has(p.ppid)) {
        inTree.add(p.pid);
        grew = true;
      }
    }
  }
  return procs
    .filter((q) => inTree.has(q.pid))
    .map((p) => {
      let cmd = "";
      try {
        cmd = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {}
      const role = /\bactor (\w+)/.exec(cmd)?.[1] ?? (/nats-server/.test(cmd) ? "nats-server" : "launcher");
      return { pid: p.pid, role, cpu: p.cpu, cmd };
    });
};

/** CPU seconds used so far by `root` and every process below it, by role. */
export const processTreeCpu = (root: number): Map<string, number> => {
  const byRole = new Map<string, number>();
  for (const p of processTree(root)) byRole.set(p.role, (byRole.get(p.role) ?? 0) + p.cpu);
  return byRole;
};

/** The sum over roles. */
export const totalCpu = (byRole: ReadonlyMap<string, number>) => [...byRole.values()].reduce((a, b) => a + b, 0);
