/**
 * `curation.strategy: cit` in the serial runner: a selection before the first group and at every
 * multiple of `curation.cit.every`, each with the live policy's version, reported as the curator's
 * metrics; and the run still repeats itself (the policy at each step is a function of the seed).
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect } from "effect";
import { expect, it } from "vitest";
import { loadConfig } from "../configs/index.ts";
import { runSerial } from "../pipeline/serial-runner.ts";

const REPO = resolve(import.meta.dirname, "..");

const run = async (dir: string, experiment: string) => {
  const config = await Effect.runPromise(
    loadConfig(join(REPO, "configs/tiny.yaml"), {
      set: [
        "actors.evaluator=0",
        "learner.totalSteps=4",
        "curation.strategy=cit",
        "curation.cit.every=2",
        "curation.cit.minRatio=0.3",
        `experiment=${experiment}`,
        `output.dir=${dir}`,
        `model.init=${REPO}/test/fixtures/tiny-policy`,
      ],
    }),
  );
  const result = await Effect.runPromise(Effect.scoped(runSerial(config)));
  return readFileSync(result.metricsFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line).body as { step: number; values: Record<string, number>; tags: { role: string } })
    .filter((m) => m.tags.role === "curator")
    .map(({ step, values }) => ({
      step,
      values: Object.fromEntries(Object.entries(values).filter(([k]) => !k.endsWith("ms"))),
    }));
};

it("selects before the first group and at step 2 with the live policy, reports it, and repeats itself", async () => {
  const dir = await mkdtemp(join(tmpdir(), "factrl-cit-"));
  const a = await run(dir, "a");
  const rounds = a.filter((m) => m.values["curation.cit.version"] !== undefined);
  // Before the first group (version 0) and once step 2 is reached (version 2); step 4 ends the run.
  expect(rounds.map((m) => [m.step, m.values["curation.cit.version"]])).toEqual([
    [0, 0],
    [2, 2],
  ]);
  for (const { values } of rounds) expect(values["curation.cit.keptShare"]).toBeGreaterThanOrEqual(0.29);
  const handedOut = a.filter((m) => m.values["curation.handedOut"] !== undefined).at(-1)!.values;
  expect(handedOut["curation.handedOut"]).toBeGreaterThanOrEqual(4 * 2); // 4 steps of 2 groups (configs/tiny.yaml), and any dropped
  expect(handedOut["curation.handedOut.tailShare"]).toBeGreaterThan(0);
  expect(await run(dir, "b")).toEqual(a);
}, 300_000);
