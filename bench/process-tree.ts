/** CPU accounting of process trees from /proc (Linux), shared by the benches that spawn runs. */
import { readdirSync, readFileSync } from "node:fs";

/** CPU seconds used so far by `root` and every process below it, by role (`actor <role>`, else the command). */
export const processTreeCpu = (root: number): Map<string, number> => {
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
  const byRole = new Map<string, number>();
  for (const p of procs.filter((q) => inTree.has(q.pid))) {
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${p.pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {}
    const role = /\bactor (\w+)/.exec(cmd)?.[1] ?? (/nats-server/.test(cmd) ? "nats-server" : "launcher");
    byRole.set(role, (byRole.get(role) ?? 0) + p.cpu);
  }
  return byRole;
};

/** The sum over roles. */
export const totalCpu = (byRole: ReadonlyMap<string, number>) => [...byRole.values()].reduce((a, b) => a + b, 0);
