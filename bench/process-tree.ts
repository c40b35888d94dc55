/** Process trees from /proc (Linux): CPU accounting shared by the benches that spawn runs, and the chaos suite's victims. */
import { readdirSync, readFileSync } from "node:fs";

export interface TreeProcess {
  readonly pid: number;
  /** CPU seconds used so far. */
  readonly cpu: number;
  /** The command line, arguments separated by spaces. */
  readonly cmd: string;
}

/** `root` and every process below it. */
export const processesBelow = (root: number): TreeProcess[] => {
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
    .filter((p) => inTree.has(p.pid))
    .map(({ pid, cpu }) => {
      let cmd = "";
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {}
      return { pid, cpu, cmd };
    });
};

/** CPU seconds used so far by `root` and every process below it, by role (`actor <role>`, else the command). */
export const processTreeCpu = (root: number): Map<string, number> => {
  const byRole = new Map<string, number>();
  for (const { cpu, cmd } of processesBelow(root)) {
    const role = /\bactor (\w+)/.exec(cmd)?.[1] ?? (/nats-server/.test(cmd) ? "nats-server" : "launcher");
    byRole.set(role, (byRole.get(role) ?? 0) + cpu);
  }
  return byRole;
};

/** The sum over roles. */
export const totalCpu = (byRole: ReadonlyMap<string, number>) => [...byRole.values()].reduce((a, b) => a + b, 0);
