/**
 * Environments are plug-ins: a task in one file (test/fixtures/lookup-env.ts) runs GRPO end to end
 * through the real actors — curator, rollout, reward, learner, evaluator, each its own process — with
 * a policy made from scratch over the environment's vocabulary and scored by the environment's own
 * reward module. Nothing outside that file and this config names the task.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { makeEnvironment } from "../envs/index.ts";
import { startCli } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");
const REPO = resolve(import.meta.dirname, "..");
const LOOKUP_ENV = join(REPO, "test", "fixtures", "lookup-env.ts");

const config = (experiment: string, outDir: string) => `
experiment: ${experiment}
output: { dir: ${JSON.stringify(outDir)} }
env: { kind: module, path: ${JSON.stringify(LOOKUP_ENV)}, options: { evalCodes: 4 } }
model: { backbone: dense, dModel: 32, layers: 1, heads: 2, dFF: 64, maxSeqLen: 48 }
rollout: { groupSize: 4, maxNewTokens: 8, batch: 2, temperature: 1.5 }
learner: { lr: 1.0e-3, groupsPerStep: 2, totalSteps: 3, checkpointEvery: 2 }
rewards: { reference: knowledge-base, modules: [{ name: lookup, weight: 1 }] }
evaluation: { every: 0, promptsPerSuite: 4 }
curation: { maxGroupsInFlight: 6 }
actors: { rollout: 1 }
runtime: { heartbeatMs: 500 }
`;

describe("an environment from a file", () => {
  it("runs GRPO through every actor process: a fresh policy over its vocabulary, scored by its own reward", async () => {
    const env = await makeEnvironment({ kind: "module", path: LOOKUP_ENV, options: { evalCodes: 4 } });
    const vocabulary = new Set(env.vocabulary);
    const experiment = `toy-env-${process.pid}`;
    const outDir = await mkdtemp(join(tmpdir(), "factrl-env-"));
    const file = join(outDir, "lookup.yaml");
    writeFileSync(file, config(experiment, outDir));

    const run = startCli(["run", file, "--nats", natsUrl], REPO);
    const { code } = await run.exited;
    expect(code, run.output().slice(-3000)).toBe(0);

    const runDir = join(outDir, experiment);
    const events = readFileSync(join(runDir, "metrics.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { type: string; body: { step?: number; values: Record<string, number> } })
      .filter((event) => event.type === "MetricsEvent")
      .map((event) => event.body);
    const steps = events.flatMap((m) => (m.values["learner.loss"] !== undefined ? [m.step] : []));
    expect(steps).toEqual([1, 2, 3]);
    expect(events.some((m) => m.values["reward.mean"] !== undefined)).toBe(true);

    // The evaluator answered the environment's eval prompts with the policy's tokenizer: every word
    // it wrote is one of the environment's (or a special token), and its own module scored them.
    const final = JSON.parse(readFileSync(join(runDir, "eval", "v3.json"), "utf8")) as {
      answers: { promptId: string; answer: string; reward: number }[];
    };
    expect(final.answers.map((a) => a.promptId).sort()).toEqual(env.eval.map((p) => p.id).sort());
    for (const { answer, reward } of final.answers) {
      const words = answer.split(/\s+/).filter((w) => w !== "" && !w.startsWith("<"));
      expect(words.filter((w) => !vocabulary.has(w))).toEqual([]);
      expect(Number.isFinite(reward)).toBe(true);
    }
    expect(readFileSync(join(runDir, "report.md"), "utf8")).toContain("lookup");
  }, 240_000);
});
