/**
 * A real prompt set end to end, as a user with LongFact or FACTORY prompts runs it: the shipped
 * example (configs/jsonl/http-judge.yaml over configs/jsonl/prompts.jsonl, the tiny Hugging Face
 * Llama as the policy) judged by an OpenAI-compatible judge — a local server speaking the real
 * protocol over a real socket, the one remote service this test fakes — through the serial runner,
 * through the actors, and `factrl eval` of a model behind an OpenAI-compatible API (the same server).
 */
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Effect } from "effect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../configs/index.ts";
import { runSerial } from "../pipeline/serial-runner.ts";
import { runCli, startCli } from "./cli-helpers.ts";

const natsUrl = inject("natsUrl");
const REPO = resolve(import.meta.dirname, "..");
const EXAMPLE = join(REPO, "configs/jsonl/http-judge.yaml");
const PROMPTS = readFileSync(join(REPO, "configs/jsonl/prompts.jsonl"), "utf8")
  .trim()
  .split("\n")
  .map((line) => JSON.parse(line) as { id: string; suite: string; prompt: string });

/** What the server was asked, by kind. */
const asked = { extraction: 0, verification: 0, answer: 0, models: new Set<string>() };
let server: Server;
let url: string;

const body = async (req: IncomingMessage) => {
  let text = "";
  for await (const chunk of req) text += chunk;
  return JSON.parse(text) as { model: string; messages: { content: string }[]; max_tokens: number };
};

/**
 * The judge: every sentence of the marked text is one claim; a claim is supported when it has an even
 * number of words (arbitrary, but it varies between answers, so groups carry signal). Asked anything
 * else, it is the policy under evaluation: two sentences about the prompt, the second cut off when
 * max_tokens is under 20.
 */
beforeAll(async () => {
  server = createServer(async (req, res) => {
    const request = await body(req);
    asked.models.add(request.model);
    const prompt = request.messages[0]!.content;
    const marked = /Response: .*?<SOS>(.*?)<EOS>/s.exec(prompt)?.[1];
    const claim = /Claim: (.*)/.exec(prompt)?.[1];
    let content: string;
    let finish = "stop";
    if (marked !== undefined) {
      asked.extraction++;
      content = marked.trim() === "" ? "No verifiable claim." : `- ${marked.trim().replace(/[.!?]*$/, "")}.`;
    } else if (claim !== undefined) {
      asked.verification++;
      content = claim.trim().split(/\s+/).length % 2 === 0 ? "Supported" : "Unsupported";
    } else {
      asked.answer++;
      content = `It is a well studied subject. ${prompt.split(" ").slice(0, 3).join(" ")} has a long history.`;
      if (request.max_tokens < 20) finish = "length";
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content }, finish_reason: finish }] }),
    );
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

const overrides = (dir: string, steps: number) => [
  `rewards.modules[0].http.url=${url}`,
  `output.dir=${dir}`,
  `learner.totalSteps=${steps}`,
  `learner.checkpointEvery=${Math.max(1, steps)}`,
  "rollout.maxNewTokens=16",
];

const suitesOfFile = [...new Set(PROMPTS.map((p) => p.suite))];

const finalEval = (dir: string, version: number) =>
  JSON.parse(readFileSync(join(dir, "jsonl-http-judge", "eval", `v${version}.json`), "utf8")) as {
    bySuite: Record<string, unknown>;
    answers: { promptId: string; reward: number }[];
  };

describe("the shipped JSONL prompt set with an http: judge", () => {
  it("runs GRPO through the serial runner: the judge's verdicts on whole answers are the reward", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-jsonl-serial-"));
    const before = asked.verification;
    const config = await Effect.runPromise(loadConfig(EXAMPLE, { set: overrides(dir, 2) }));
    const result = await Effect.runPromise(Effect.scoped(runSerial(config)));
    expect(result).toMatchObject({ completed: true, step: 2 });
    expect(asked.verification).toBeGreaterThan(before);
    const final = finalEval(dir, 2);
    expect(Object.keys(final.bySuite).every((suite) => suitesOfFile.includes(suite))).toBe(true);
    const ids = new Set(PROMPTS.map((p) => p.id));
    expect(final.answers.length).toBeGreaterThan(0);
    expect(final.answers.every((a) => ids.has(a.promptId) && a.reward >= 0 && a.reward <= 1)).toBe(true);
  }, 300_000);

  it("runs GRPO through the actors, each its own process", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-jsonl-actors-"));
    const before = asked.verification;
    const run = startCli(["run", EXAMPLE, "--nats", natsUrl, ...overrides(dir, 2).flatMap((s) => ["--set", s])], REPO);
    const { code } = await run.exited;
    expect(code, run.output().slice(-3000)).toBe(0);
    expect(asked.verification).toBeGreaterThan(before);
    const final = finalEval(dir, 2);
    expect(final.answers.length).toBeGreaterThan(0);
    expect(Object.keys(final.bySuite).every((suite) => suitesOfFile.includes(suite))).toBe(true);
  }, 300_000);

  it("factrl eval scores a model behind an OpenAI-compatible API and writes its claims with the judge's verdicts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-jsonl-eval-"));
    const answersBefore = asked.answer;
    const result = await runCli(
      [
        "eval",
        EXAMPLE,
        "--policy",
        `openai:${url}`,
        "--model",
        "policy-under-test",
        ...overrides(dir, 1).flatMap((s) => ["--set", s]),
        "--set",
        "rollout.maxNewTokens=64",
      ],
      REPO,
    );
    expect(result.stderr).not.toMatch(/factrl:/);
    expect(result.code).toBe(0);
    expect(asked.models.has("policy-under-test")).toBe(true);
    const evaluated = finalEval(dir, 0);
    expect(asked.answer - answersBefore).toBe(evaluated.answers.length);
    expect(result.stdout).toContain(`policy-under-test at ${url} on ${evaluated.answers.length} evaluation prompts`);
    expect(result.stdout).toMatch(/\| \*\*all\*\* \|/);
    // Two sentences, one claim each: "It is a well studied subject." (6 words: supported), then
    // "<3 words> has a long history." (7 words: unsupported) — precision 0.5.
    for (const answer of evaluated.answers) expect(answer.reward).toBe(0.5);
    const claims = readFileSync(join(dir, "jsonl-http-judge", "eval", "claims.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(claims).toHaveLength(evaluated.answers.length);
    for (const line of claims) {
      expect(line).toMatchObject({
        prompt_source: "jsonl",
        model: `policy-under-test at ${url}`,
      });
      expect(line.all_claims).toHaveLength(2);
      expect(line.claim_list).toEqual(line.all_claims.map((claim: string) => [claim]));
      expect(line.claim_verification_result[0]).toEqual({
        claim: "It is a well studied subject.",
        verification_result: "supported",
      });
    }
    expect(result.stdout).toMatch(/every claim with its verdict \(VeriScore-style JSONL\): .*claims\.jsonl/);
  }, 120_000);

  it("refuses FactWorld's rewards for it, and a bad --policy openai: use, before anything starts", async () => {
    const [precision, noModel] = await Promise.all([
      runCli(["run", EXAMPLE, "--dry-run", "--set", "rewards.modules=[{name: precision, weight: 1}]"], REPO),
      runCli(["eval", EXAMPLE, "--policy", `openai:${url}`], REPO),
    ]);
    expect(precision.code).toBe(2);
    expect(precision.stderr).toMatch(
      /- rewards\.modules\[0\]: precision verifies claims against the environment's knowledge base .*env\.kind jsonl has none/,
    );
    expect(noModel.code).not.toBe(0);
    expect(noModel.stderr).toContain("--policy openai:URL needs --model NAME");
  }, 60_000);
});
