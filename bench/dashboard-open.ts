/**
 * Does watching the dashboard slow training? The quick start's actor run, shortened, with the
 * dashboard closed (served, nobody looking) and open (one headless Chromium page on it, as a user
 * leaves a tab open), arms alternated within each round so the machine's load hits both alike.
 * Per arm: learner steps per second over the steady-state steps, CPU seconds per step of the run's
 * processes, and of the browser.
 *
 *   node bin/run-ts.mjs bench/dashboard-open.ts [--steps 40] [--rounds 2] [--config configs/quickstart.yaml]
 *
 * Needs Debian's `chromium` (or FACTRL_CHROMIUM). Figures in BENCHMARKS.md, "Dashboard".
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { parseRunEvents } from "../dashboard/index.ts";
import { processTreeCpu, totalCpu } from "./lib/process-tree.ts";

const REPO = resolve(import.meta.dirname, "..");
const CHROMIUM = process.env.FACTRL_CHROMIUM ?? "/usr/bin/chromium";
const { values: args } = parseArgs({
  options: {
    config: { type: "string", default: "configs/quickstart.yaml" },
    steps: { type: "string", default: "40" },
    rounds: { type: "string", default: "2" },
  },
});
const steps = Number(args.steps);
const outDir = mkdtempSync(join(tmpdir(), "factrl-dashboard-open-"));

type Arm = "closed" | "open";
interface ArmResult {
  readonly arm: Arm;
  readonly stepsPerSecond: number;
  readonly runCpuPerStep: number;
  readonly browserCpuPerStep: number;
  readonly monitorCpuPerStep: number;
}

/** One shortened quick start; with `open`, a browser page on its dashboard for the whole run. */
async function runArm(arm: Arm, round: number): Promise<ArmResult> {
  const experiment = `dash-${arm}-${round}`;
  const child = spawn(
    process.execPath,
    [
      "bin/factrl.mjs",
      "run",
      args.config,
      "--fresh",
      ...["--set", `experiment=${experiment}`, "--set", `output.dir=${outDir}`],
      ...["--set", `learner.totalSteps=${steps}`, "--set", `learner.checkpointEvery=${steps}`],
      // The initial and final evaluations stay, small: the learning loop is what is timed.
      ...["--set", `evaluation.every=${steps}`, "--set", "evaluation.promptsPerSuite=4"],
    ],
    { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr.on("data", (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number>((done) => child.on("exit", (code) => done(code ?? 1)));

  // CPU by role every half second, with its time: the steady-state window is cut from these afterwards.
  const samples: { time: number; run: Map<string, number>; browser: number }[] = [];
  // The browser is this process's child too: its CPU is this tree's, less the run's and this process's own.
  const sampler = setInterval(() => {
    const run = processTreeCpu(child.pid!);
    const own = process.cpuUsage();
    const browser = totalCpu(processTreeCpu(process.pid)) - totalCpu(run) - (own.user + own.system) / 1e6;
    samples.push({ time: Date.now(), run, browser: Math.max(0, browser) });
  }, 500);

  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  if (arm === "open") {
    const url = await new Promise<string>((found, failed) => {
      const poll = setInterval(() => {
        const match = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(output)?.[1];
        if (match) {
          clearInterval(poll);
          found(match);
        }
      }, 100);
      void exited.then(() => {
        clearInterval(poll);
        failed(new Error(`the run ended before printing its dashboard:\n${output.slice(-2000)}`));
      });
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    await page.goto(url);
  }
  const code = await exited;
  clearInterval(sampler);
  await browser?.close();
  if (code !== 0) throw new Error(`${experiment} exited with ${code}:\n${output.slice(-2000)}`);

  // Steady state: from the end of step 20 % to the end of step 90 % (start-up, the first evaluation
  // and the final one are outside).
  const { events } = parseRunEvents(readFileSync(join(outDir, experiment, "metrics.jsonl"), "utf8"));
  const stepTimes = new Map<number, number>();
  for (const e of events)
    if (e.kind === "metrics" && e.record.role === "learner" && e.record.step !== undefined)
      stepTimes.set(e.record.step, Math.max(stepTimes.get(e.record.step) ?? 0, e.record.time));
  const from = Math.max(2, Math.round(0.2 * steps));
  const to = Math.round(0.9 * steps);
  const [t0, t1] = [stepTimes.get(from), stepTimes.get(to)];
  if (t0 === undefined || t1 === undefined) throw new Error(`${experiment}: steps ${from} and ${to} not both recorded`);
  const at = (time: number) =>
    samples.reduce((best, s) => (Math.abs(s.time - time) < Math.abs(best.time - time) ? s : best));
  const [s0, s1] = [at(t0), at(t1)];
  const window = to - from;
  return {
    arm,
    stepsPerSecond: window / ((t1 - t0) / 1000),
    runCpuPerStep: (totalCpu(s1.run) - totalCpu(s0.run)) / window,
    monitorCpuPerStep: ((s1.run.get("monitor") ?? 0) - (s0.run.get("monitor") ?? 0)) / window,
    browserCpuPerStep: (s1.browser - s0.browser) / window,
  };
}

const results: ArmResult[] = [];
for (let round = 0; round < Number(args.rounds); round++) {
  const order: Arm[] = round % 2 === 0 ? ["closed", "open"] : ["open", "closed"];
  for (const arm of order) {
    const result = await runArm(arm, round);
    results.push(result);
    console.log(
      `round ${round} ${arm.padEnd(6)} ${result.stepsPerSecond.toFixed(3)} steps/s · run CPU ${result.runCpuPerStep.toFixed(3)} s/step ` +
        `(monitor ${result.monitorCpuPerStep.toFixed(4)}) · browser ${result.browserCpuPerStep.toFixed(4)} s/step · load ${loadavg()[0]!.toFixed(1)}`,
    );
  }
}
const mean = (arm: Arm, pick: (r: ArmResult) => number) => {
  const xs = results.filter((r) => r.arm === arm).map(pick);
  return xs.reduce((a, b) => a + b, 0) / xs.length;
};
const closed = mean("closed", (r) => r.stepsPerSecond);
const open = mean("open", (r) => r.stepsPerSecond);
const cpuOpen = mean("open", (r) => r.runCpuPerStep + r.browserCpuPerStep);
console.log(
  `\nsteps/s: closed ${closed.toFixed(3)}, open ${open.toFixed(3)} → open/closed ${(open / closed).toFixed(3)} ` +
    `(${(100 * (open / closed - 1)).toFixed(1)} %)\n` +
    `the browser's share of the open arm's CPU per step: ${((100 * mean("open", (r) => r.browserCpuPerStep)) / cpuOpen).toFixed(2)} %; ` +
    `monitor CPU per step closed ${mean("closed", (r) => r.monitorCpuPerStep).toFixed(4)} s, open ${mean("open", (r) => r.monitorCpuPerStep).toFixed(4)} s`,
);
