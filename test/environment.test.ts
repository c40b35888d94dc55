/**
 * Environments are plug-ins, run through the real actors — curator, rollout, reward, learner,
 * evaluator, each its own process:
 * - a task in one file (test/fixtures/lookup-env.ts), with a policy made from scratch over its
 *   vocabulary and scored by its own reward module; nothing outside that file and this config names it;
 * - a JSONL prompt set judged by an OpenAI-compatible judge (a local server speaking the real protocol
 *   over a real socket, as a user's judge model would).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { makeEnvironment } from "../envs/index.ts";
import { startCli } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");
const REPO = resolve(import.meta.dirname, "..");
const LOOKUP_ENV = join(REPO, "test", "fixtures", "lookup-env.ts");

const lookupConfig = (experiment: string, outDir: string) => `
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
    writeFileSync(file, lookupConfig(experiment, outDir));

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

  it("runs a JSONL prompt set judged over HTTP: the judge's verdicts are the reward", async () => {
    // The judge: every sentence of the answer is a claim; a claim is supported when it has an even
    // number of words — arbitrary, but it varies between answers, so groups carry signal.
    let requests = 0;
    const judge = createServer(async (req: IncomingMessage, res) => {
      let text = "";
      for await (const chunk of req) text += chunk;
      requests += 1;
      const prompt: string = JSON.parse(text).messages[0].content;
      const marked = /Response: .*?<SOS>(.*?)<EOS>/s.exec(prompt)?.[1];
      const content =
        marked !== undefined
          ? marked
              .split(" . ")
              .filter((c) => c.trim() !== "")
              .map((c) => `- ${c.trim()}.`)
              .join("\n") || "No verifiable claim."
          : (/Claim: (.*)/.exec(prompt)?.[1] ?? "").trim().split(/\s+/).length % 2 === 0
            ? "Supported"
            : "Unsupported";
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content } }] }));
    });
    await new Promise<void>((done) => judge.listen(0, "127.0.0.1", done));
    const judgeUrl = `http://127.0.0.1:${(judge.address() as AddressInfo).port}/v1`;
    try {
      // Prompts in the tiny world's words, so the tiny policy (its tokenizer) can read them.
      const factworld = await makeEnvironment({ kind: "factworld", size: "tiny", promptSeed: 1, evalFraction: 0.2 });
      const outDir = await mkdtemp(join(tmpdir(), "factrl-jsonl-"));
      const prompts = join(outDir, "bios.jsonl");
      writeFileSync(
        prompts,
        factworld.train
          .filter((p) => p.suite === "bio")
          .map((p) => JSON.stringify({ id: p.id, prompt: p.text, suite: "bios" }))
          .join("\n"),
      );
      const experiment = `jsonl-env-${process.pid}`;
      const file = join(outDir, "jsonl.yaml");
      writeFileSync(
        file,
        `extends: ${JSON.stringify(join(REPO, "configs", "tiny.yaml"))}
experiment: ${experiment}
output: { dir: ${JSON.stringify(outDir)} }
env: { kind: jsonl, path: ${JSON.stringify(prompts)}, evalFraction: 0.3 }
model: { init: ${JSON.stringify(join(REPO, "test", "fixtures", "tiny-policy"))} }
rollout: { maxNewTokens: 40 }
learner: { totalSteps: 2 }
rewards: { reference: knowledge-base, modules: [{ http: { url: ${JSON.stringify(judgeUrl)}, model: judge-1 }, weight: 1 }] }
`,
      );
      const run = startCli(["run", file, "--nats", natsUrl], REPO);
      const { code } = await run.exited;
      expect(code, run.output().slice(-3000)).toBe(0);
      const runDir = join(outDir, experiment);
      const final = JSON.parse(readFileSync(join(runDir, "eval", "v2.json"), "utf8")) as {
        bySuite: Record<string, unknown>;
        answers: { promptId: string }[];
      };
      expect(Object.keys(final.bySuite)).toEqual(["bios"]);
      expect(final.answers.length).toBeGreaterThan(0);
      expect(requests).toBeGreaterThan(0);
    } finally {
      await new Promise<void>((done) => judge.close(() => done()));
    }
  }, 240_000);
});
