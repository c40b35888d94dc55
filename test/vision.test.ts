/**
 * Pictures through the real actors — curator, rollout, reward, learner, evaluator, each its own
 * process — starting from the tiny captioner (test/fixtures/tiny-vision-policy, made by
 * test/fixtures/make-tiny-vision-policy.ts):
 * - the caption task (`env.kind: factworld-vision`): prompts carry pictures on the wire, the policy
 *   reads their image tokens, the caption rewards score the answers, the learner steps, and the report
 *   shows pictures with both policies' captions;
 * - prompts whose pictures the policy cannot read (the wrong size) are dead-lettered one by one, each
 *   named, while the others train.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect, Layer } from "effect";
import { describe, expect, inject, it } from "vitest";
import { LEARNER_PROGRESS_KEY, PROMPTS_QUEUE } from "../actors/topology.ts";
import { decodePng } from "../envs/index.ts";
import {
  connectNats,
  deadLetterCount,
  Experiment,
  experimentSubjects,
  getState,
  Nats,
  rootLogger,
} from "../messaging/index.ts";
import { startCli } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");
const REPO = resolve(import.meta.dirname, "..");
const POLICY = join(REPO, "test", "fixtures", "tiny-vision-policy");
const SMALL_PICTURES_ENV = join(REPO, "test", "fixtures", "vision-small-pictures-env.ts");

const config = (experiment: string, outDir: string, env: string) => `
experiment: ${experiment}
output: { dir: ${JSON.stringify(outDir)} }
env: ${env}
model: { init: ${JSON.stringify(POLICY)} }
rollout: { groupSize: 4, maxNewTokens: 40, batch: 2, temperature: 1.2 }
learner: { lr: 1.0e-3, groupsPerStep: 2, totalSteps: 2, checkpointEvery: 2 }
rewards:
  modules:
    - { name: format, weight: 1 }
    - { name: precision, weight: 1 }
    - { name: detail, weight: 0.1 }
    - { name: relevance, weight: 0.7 }
evaluation: { every: 0, promptsPerSuite: 4 }
curation: { maxGroupsInFlight: 6 }
actors: { rollout: 1 }
runtime: { heartbeatMs: 500 }
`;

async function run(experiment: string, env: string) {
  const outDir = await mkdtemp(join(tmpdir(), "factrl-vision-"));
  const file = join(outDir, "vision.yaml");
  writeFileSync(file, config(experiment, outDir, env));
  const cli = startCli(["run", file, "--nats", natsUrl], REPO);
  const { code } = await cli.exited;
  expect(code, cli.output().slice(-3000)).toBe(0);
  return { runDir: join(outDir, experiment) };
}

const metricsOf = (runDir: string) =>
  readFileSync(join(runDir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { type: string; body: { step?: number; values: Record<string, number> } })
    .filter((event) => event.type === "MetricsEvent")
    .map((event) => event.body);

const quietLogger = rootLogger().child({ component: "vision-test" }, { level: "warn" });
const ledger = (experiment: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      return {
        progress: (yield* getState(LEARNER_PROGRESS_KEY))?.value,
        deadLettered: yield* deadLetterCount(PROMPTS_QUEUE),
      };
    }).pipe(
      Effect.provide(
        Layer.merge(
          Layer.scoped(Nats, connectNats({ servers: natsUrl, name: "vision-test", logger: quietLogger })),
          Layer.succeed(Experiment, { subjects: experimentSubjects(experiment), sender: "vision-test" }),
        ),
      ),
    ) as Effect.Effect<{ progress: { step: number; done: boolean } | undefined; deadLettered: number }, never, never>,
  );

describe("pictures through the actors", () => {
  it("runs GRPO on the caption task: pictures on the wire, image tokens read, captions scored, a report with pictures", async () => {
    const experiment = `vision-${process.pid}`;
    const { runDir } = await run(
      experiment,
      "{ kind: factworld-vision, size: tiny, maxPicturesPerEntity: 12, dropAltText: 0.2 }",
    );
    const metrics = metricsOf(runDir);
    expect(metrics.flatMap((m) => (m.values["learner.loss"] !== undefined ? [m.step] : []))).toEqual([1, 2]);
    expect(metrics.some((m) => m.values["reward.mean"] !== undefined)).toBe(true);

    // The evaluator captioned the eval pictures of both suites; the caption rewards scored them.
    const final = JSON.parse(readFileSync(join(runDir, "eval", "v2.json"), "utf8")) as {
      bySuite: Record<string, { answers: number; hallucinationRate: number | null }>;
      answers: { promptId: string; answer: string; reward: number }[];
    };
    expect(Object.keys(final.bySuite).sort()).toEqual(["caption", "caption-no-alt"]);
    expect(final.answers.every((a) => a.promptId.startsWith("picture:"))).toBe(true);
    expect(final.answers.some((a) => a.answer.includes("</think>"))).toBe(true);
    expect(final.answers.every((a) => Number.isFinite(a.reward))).toBe(true);

    // The report shows pictures (enlarged PNGs beside it) with both policies' answers.
    const report = readFileSync(join(runDir, "report.md"), "utf8");
    expect(report).toContain("## Pictures");
    const files = readdirSync(join(runDir, "report-pictures"));
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) {
      expect(report).toContain(`(report-pictures/${file})`);
      expect(decodePng(readFileSync(join(runDir, "report-pictures", file)))).toMatchObject({ width: 128, height: 128 });
    }
  }, 300_000);

  it("dead-letters each prompt whose picture the policy cannot read, naming it, and trains on the rest", async () => {
    const experiment = `vision-small-${process.pid}`;
    const { runDir } = await run(experiment, `{ kind: module, path: ${JSON.stringify(SMALL_PICTURES_ENV)} }`);
    const { progress, deadLettered } = await ledger(experiment);
    expect(progress).toMatchObject({ step: 2, done: true });
    expect(deadLettered).toBeGreaterThan(0);
    expect(readFileSync(join(runDir, "logs", "rollout-1.log"), "utf8")).toMatch(
      /prompt picture:\d+:\d+ \(group g\d+\) cannot be read by this policy: picture is 16×16; this codebook tokenizes 32×32 pictures/,
    );
  }, 300_000);
});
