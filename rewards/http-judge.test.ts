import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeJudge, startFakeJudge } from "../test/fake-judge.ts";
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
import { memoryVerdictCache } from "./verdict-cache.ts";

/** The fake judge (test/fake-judge.ts) over a real socket. */
let judge: FakeJudge;
let url: string;
let seen: FakeJudge["seen"];

beforeAll(async () => {
  judge = await startFakeJudge();
  ({ url, seen } = judge);
  process.env.FACTRL_TEST_JUDGE_KEY = "sekret";
});
afterAll(() => judge.close());

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

  it("with a verdict cache, verifies each claim once however many modules and batches ask", async () => {
    const cache = memoryVerdictCache();
    const pipelines = await Promise.all(
      [0, 1].map(() =>
        createRewardPipeline(
          { modules: [{ http: { url, model: "cached" }, weight: 1 }], timeoutMs: 5_000, retries: 0 },
          { verdictCache: cache },
        ),
      ),
    );
    const verifications = () => seen.filter((s) => s.model === "cached" && s.verifies !== undefined);
    const item = (id: string, answer: string) => ({ prompt: { id, text: "Tell me about cities." }, answer });
    const first = await pipelines[0]!.score([
      item("a", "<think> </think> Rome is in Italy and Oslo is on Mars."),
      item("b", "<think> </think> Rome is in Italy."),
    ]);
    // "Rome is in Italy." twice in one batch: verified once (the second asker waits for the first).
    expect(
      verifications()
        .map((s) => s.verifies)
        .sort(),
    ).toEqual(["Oslo is on Mars.", "Rome is in Italy."]);
    const second = await pipelines[1]!.score([item("c", "<think> </think> Oslo is on Mars and Rome is in Italy.")]);
    expect(verifications()).toHaveLength(2); // the other pipeline: every verdict from the cache
    expect(first.map((s) => s.components.judge)).toEqual([0.5, 1]);
    expect(second[0]!.components.judge).toBe(0.5);
    expect(cache.counts).toMatchObject({ misses: 2, hits: 3, rejected: 0 });
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
