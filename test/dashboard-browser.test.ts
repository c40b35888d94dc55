/**
 * The dashboard in a real browser: a tiny run (`factrl run configs/tiny.yaml`, every role its own
 * process, the test's nats-server), the address the launcher prints opened in headless Chromium
 * (Debian's `chromium`, driven by playwright-core; .ci/run installs it), until a learner curve has
 * points, the actor table lists the run's actors, the initial evaluation is shown and the lineage
 * view has its lag histogram and finds a group. The screenshot is a test artefact
 * (test-artifacts/dashboard.png; docs/dashboard.png is one of them).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { describe, expect, inject, it } from "vitest";
import { startCli, waitFor } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");
const REPO = resolve(import.meta.dirname, "..");
const CHROMIUM = process.env.FACTRL_CHROMIUM ?? "/usr/bin/chromium";
const ARTEFACTS = join(REPO, "test-artifacts");

describe("the dashboard in a browser", () => {
  it("shows a live run: a reward curve with points, the actor table with every role", async () => {
    expect(
      existsSync(CHROMIUM),
      `no browser at ${CHROMIUM}: apt-get install -y chromium (or set FACTRL_CHROMIUM)`,
    ).toBe(true);
    const outDir = await mkdtemp(join(tmpdir(), "factrl-dashboard-e2e-"));
    const experiment = `dash-e2e-${process.pid}`;
    const run = startCli(
      [
        "run",
        join(REPO, "configs", "tiny.yaml"),
        "--nats",
        natsUrl,
        "--set",
        `experiment=${experiment}`,
        "--set",
        `output.dir=${outDir}`,
        // Longer than the test: the page must stay live until the last check (SIGINT stops it then).
        "--set",
        "learner.totalSteps=400",
      ],
      REPO,
    );
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    try {
      const url = await waitFor(
        "the launcher to print the dashboard's address",
        () => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.output())?.[1],
        120_000,
      );
      const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
      const errors: string[] = [];
      page.on("pageerror", (error: Error) => errors.push(error.message));
      await page.goto(url);
      // Page-side expressions as text: the test's TypeScript has no DOM types.
      await page.waitForFunction(
        'Number(document.querySelector("#chart-reward")?.getAttribute("data-points") ?? 0) >= 3',
        undefined,
        { timeout: 180_000 },
      );
      // The curve is drawn: uPlot made its canvas, and the terms chart has its series too.
      expect(await page.locator("#chart-reward canvas").count()).toBeGreaterThan(0);
      expect(Number(await page.locator("#chart-terms").getAttribute("data-points"))).toBeGreaterThan(0);
      await page.waitForFunction(
        `(() => {
          const roles = [...document.querySelectorAll("#actors tr[data-actor] td:first-child")].map((td) => td.textContent);
          // tiny.yaml's rewards are in-process, so its rollout actors score and no reward actor runs.
          return ["curator", "rollout", "learner", "monitor"].every((r) => roles.includes(r)) && !roles.includes("reward");
        })()`,
        undefined,
        { timeout: 60_000 },
      );
      // The initial policy's evaluation, per suite (found by the page's poll of the evaluation files).
      await page.waitForSelector("#evaluations table", { timeout: 120_000 });
      expect(await page.locator("#evaluations th", { hasText: "v0" }).count()).toBeGreaterThan(0);
      // The monitor reads the work queues' depths from JetStream.
      await page.waitForFunction(
        'Number(document.querySelector("#chart-queues")?.getAttribute("data-points") ?? 0) > 0',
        undefined,
        { timeout: 30_000 },
      );
      // Each actor reports its busy and stalled shares: the per-actor charts have curves.
      for (const chart of ["busy", "stalled", "throughput"])
        await page.waitForFunction(
          `Number(document.querySelector("#chart-${chart}")?.getAttribute("data-points") ?? 0) > 0`,
          undefined,
          { timeout: 30_000 },
        );
      // The lineage: the policy-lag histogram has the used groups, and a search finds one group's path.
      await page.waitForFunction(
        'Number(document.querySelector("#chart-lag-histogram")?.getAttribute("data-points") ?? 0) > 0',
        undefined,
        { timeout: 60_000 },
      );
      const traced = JSON.parse(readFileSync(join(outDir, experiment, "lineage.jsonl"), "utf8").split("\n")[0]!);
      await page.fill("#lineage-id", traced.groupId);
      await page.click("#lineage-form button");
      await page.waitForFunction(
        `document.querySelector("#lineage-results").textContent.includes("group ${traced.groupId} ")`,
        undefined,
        { timeout: 10_000 },
      );
      expect(await page.locator("#live").textContent()).toBe("live");
      expect(await page.locator("#config").textContent()).toContain(`experiment: ${experiment}`);
      expect(errors).toEqual([]);
      mkdirSync(ARTEFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTEFACTS, "dashboard.png"), fullPage: true });
    } finally {
      await browser.close();
      run.child.kill("SIGINT");
      await run.exited;
    }
  }, 420_000);
});
