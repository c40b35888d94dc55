import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HttpJudge,
  httpJudgeModule,
  isHttpJudgeModule,
  NO_VERIFIABLE_CLAIM,
  parseExtraction,
  parseVerification,
} from "./http-judge.ts";
import { judgementRecord } from "./records.ts";
import { createRewardPipeline } from "./registry.ts";

/**
 * A local chat-completions server standing in for a judge model: it extracts one claim per clause of
 * the <SOS> sentence ("X and Y" → two), none for "well known", and calls claims about Mars unsupported.
 */
const seen: { auth?: string; model?: string; temperature?: number }[] = [];
let server: Server;
let url: string;

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => resolve(text));
  });

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req));
    seen.push({ auth: req.headers.authorization, model: body.model, temperature: body.temperature });
    const prompt: string = body.messages[0].content;
    if (req.url !== "/v1/chat/completions") return res.writeHead(404).end("no such route");
    if (prompt.includes("explode")) return res.writeHead(500).end("judge overloaded");
    let content: string;
    const marked = /Response: .*?<SOS>(.*?)<EOS>/s.exec(prompt)?.[1];
    if (marked !== undefined)
      content = marked.includes("well known")
        ? NO_VERIFIABLE_CLAIM
        : marked
            .replace(/\.$/, "")
            .split(" and ")
            .map((c) => `- ${c.trim()}.`)
            .join("\n");
    else content = /Claim: .*Mars/.test(prompt) ? "Unsupported" : "Supported.";
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: "x",
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content } }],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  process.env.FACTRL_TEST_JUDGE_KEY = "sekret";
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("HTTP judge over a real socket", () => {
  it("extracts per sentence, verifies each claim, and scores precision; the answer part only", async () => {
    const pipeline = await createRewardPipeline({
      modules: [{ http: { url, model: "judge-1", apiKeyEnv: "FACTRL_TEST_JUDGE_KEY" }, weight: 1 }],
      timeoutMs: 5_000,
      retries: 0,
    });
    const answer =
      "<think> Mars is red . </think> Paris is in France and Rome is in Italy. The Moon orbits Mars. Paris is well known.";
    const [score, malformed] = await pipeline.score([
      { prompt: { id: "q1", text: "Tell me about cities." }, answer },
      { prompt: { id: "q2", text: "?" }, answer: "no tags" },
    ]);
    expect(score!.components).toEqual({
      judge: 2 / 3,
      "judge.supported": 2,
      "judge.unsupported": 1,
      "judge.claims": 3,
    });
    expect(malformed!.components.judge).toBe(0);
    expect(seen.every((s) => s.auth === "Bearer sekret" && s.model === "judge-1" && s.temperature === 0)).toBe(true);
  });

  it("requireThink: false judges a model that writes no <think> block on its whole answer, and keeps each judgement", async () => {
    const [think, plain] = [true, false].map((requireThink) => httpJudgeModule({ url, model: "j" }, { requireThink }));
    const items = [
      { prompt: { id: "p", text: "Tell me about cities." }, answer: "Rome is in Italy and Oslo is on Mars." },
      { prompt: { id: "t", text: "Tell me about cities." }, answer: "<think> plan </think> Rome is in Italy." },
    ];
    const signal = new AbortController().signal;
    expect(await think!.score(items, signal)).toEqual([
      { ok: true, components: { judge: 0, supported: 0, unsupported: 0, claims: 0 } },
      { ok: true, components: { judge: 1, supported: 1, unsupported: 0, claims: 1 } },
    ]);
    expect(think!.judgementOf("p", items[0]!.answer)).toBeUndefined(); // not judged: malformed
    expect(await plain!.score(items, signal)).toEqual([
      { ok: true, components: { judge: 0.5, supported: 1, unsupported: 1, claims: 2 } },
      { ok: true, components: { judge: 1, supported: 1, unsupported: 0, claims: 1 } },
    ]);
    expect(plain!.judgementOf("t", items[1]!.answer)).toMatchObject({
      response: "Rome is in Italy.", // what follows </think> when there is one
      verifications: [{ claim: "Rome is in Italy.", label: "supported" }],
    });
    expect(isHttpJudgeModule(plain!)).toBe(true);
    expect(() => httpJudgeModule({ url, model: "j" }, { requireThink: "no" as unknown as boolean })).toThrow(
      /requireThink must be true or false/,
    );
  });

  it("an HTTP error fails only that answer, with the status in the message", async () => {
    const pipeline = await createRewardPipeline({
      modules: [{ http: { url, model: "j" }, weight: 1 }],
      timeoutMs: 5_000,
      retries: 0,
    });
    const [bad, good] = await pipeline.score([
      { prompt: { id: "a", text: "q" }, answer: "<think> </think> This will explode." },
      { prompt: { id: "b", text: "q" }, answer: "<think> </think> Rome is in Italy." },
    ]);
    expect(bad!.failures[0]).toMatchObject({
      module: "judge",
      kind: "rejected",
      message: expect.stringMatching(/HTTP 500: judge overloaded/),
    });
    expect(good!.components.judge).toBe(1);
  });

  it("gives VeriScore-layout records", async () => {
    const judgement = await new HttpJudge({ url, model: "j" }).judge(
      "Q?",
      "Rome is in Italy and Oslo is on Mars. It is well known.",
    );
    const record = judgementRecord({ question: "Q?", promptSource: "longfact", model: "policy" }, judgement);
    expect(record).toEqual({
      question: "Q?",
      prompt_source: "longfact",
      response: "Rome is in Italy and Oslo is on Mars. It is well known.",
      model: "policy",
      abstained: false,
      claim_list: [["Rome is in Italy.", "Oslo is on Mars."]],
      all_claims: ["Rome is in Italy.", "Oslo is on Mars."],
      claim_verification_result: [
        { claim: "Rome is in Italy.", verification_result: "supported" },
        { claim: "Oslo is on Mars.", verification_result: "unsupported" },
      ],
    });
  });

  it("refuses a bad URL or a missing API key variable at creation", () => {
    expect(() => new HttpJudge({ url: "ftp://x", model: "m" })).toThrow(/must start with http/);
    expect(() => new HttpJudge({ url, model: "m", apiKeyEnv: "FACTRL_NO_SUCH_VARIABLE" })).toThrow(
      /FACTRL_NO_SUCH_VARIABLE/,
    );
  });
});

describe("judge output parsing", () => {
  it("reads claim lists and labels", () => {
    expect(parseExtraction("- A is B.\n2. C is D.\n\n")).toEqual(["A is B.", "C is D."]);
    expect(parseExtraction(NO_VERIFIABLE_CLAIM)).toEqual([]);
    expect(parseVerification("Unsupported.")).toBe("unsupported");
    expect(parseVerification("### Supported")).toBe("supported");
    expect(parseVerification("maybe")).toBeNull();
  });
});
