import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generatePrompts, generateWorld, referenceSentences, renderReference, valuesOf } from "../envs/index.ts";
import { explainRelevance, FactWorldAnalyzer } from "./builtins.ts";
import type { RewardItem } from "./module.ts";
import { appendRecords, factWorldRecord } from "./records.ts";
import { createRewardPipeline, type ModuleRef } from "./registry.ts";

const world = generateWorld({ size: "tiny" });
const prompts = generatePrompts(world);
const prompt = prompts.find((p) => p.suite === "bio" && p.focus.aspects.includes("birth_year"))!;
const reference = renderReference(world, prompt);
const S = referenceSentences(world, prompt.focus).length;
const other = world.entities.find((e) => e.type === "place" && e.id !== prompt.focus.entityId)!;
const otherFacts = referenceSentences(world, {
  entityId: other.id,
  entity: other.name,
  aspects: ["place_kind", "region"],
});
const [year] = valuesOf(world.entities[prompt.focus.entityId]!, "birth_year");

const ALL_THREE: ModuleRef[] = [
  { name: "format", weight: 1 },
  { name: "precision", weight: 1 },
  { name: "detail", weight: 0.1 },
  { name: "relevance", weight: 0.5 },
];
const config = (modules: ModuleRef[]) => ({ modules, timeoutMs: 5_000, retries: 0 });
const item = (answer: string): RewardItem => ({ prompt, answer });

describe("built-in reward modules through the pipeline", async () => {
  const pipeline = await createRewardPipeline(config(ALL_THREE), { world, prompts });

  it("worked example: the knowledge-base answer has P = 1, D = log(1 + S), ties the reference", async () => {
    const [score] = await pipeline.score([item(reference)]);
    expect(score!.components.precision).toBe(1);
    expect(score!.components.detail).toBeCloseTo(Math.log1p(S), 12);
    expect(score!.components.relevance).toBe(0.5);
    expect(score!.reward).toBeCloseTo(1 + 0.1 * Math.log1p(S) + 0.5 * 0.5, 12);
    expect(score!.failures).toEqual([]);
  });

  it("changing one attribute value makes exactly one claim contradicted", async () => {
    const changed = reference.replace(`was born in ${year} .`, `was born in ${Number(year) + 1} .`);
    const [score] = await pipeline.score([item(changed)]);
    expect(score!.components["precision.contradicted"]).toBe(1);
    expect(score!.components.precision).toBeCloseTo((S - 1) / S, 12);
  });

  it("adding true facts about an unrelated entity raises detail but loses in relevance", async () => {
    const [plain, padded] = await pipeline.score([item(reference), item(`${reference} ${otherFacts.join(" ")}`)]);
    expect(padded!.components.detail).toBeGreaterThan(plain!.components.detail!);
    expect(padded!.components.precision).toBe(1);
    expect(padded!.components.relevance).toBe(0);
    const reasons = explainRelevance(
      new FactWorldAnalyzer({ world }),
      item(`${reference} ${otherFacts.join(" ")}`),
    )!.reasons;
    expect(reasons.join("\n")).toMatch(/2 of \d+ claims are about other entities/);
  });

  it("an empty answer is an abstention (P = 0, no failure); a malformed answer gets −1", async () => {
    const [empty, malformed] = await pipeline.score([
      item("<think> I do not know . </think>"),
      item(`${reference} </think>`),
    ]);
    expect(empty!.components).toMatchObject({ precision: 0, "precision.abstained": 1, "precision.claims": 0 });
    expect(empty!.malformed).toBe(false);
    expect(empty!.reward).toBe(0);
    expect(malformed).toMatchObject({ reward: -1, malformed: true });
  });

  it("an answer cut off by the token budget is malformed (−1) even when its text parses", async () => {
    const [finished, cut] = await pipeline.score([
      { ...item(reference), truncated: false },
      { ...item(reference), truncated: true },
    ]);
    expect(finished!.malformed).toBe(false);
    expect(cut).toMatchObject({ reward: -1, malformed: true });
  });

  it("uses the given reference answer when there is one, and the prompt's id when it has no focus", async () => {
    const partial = `<think> </think> ${referenceSentences(world, prompt.focus)[0]}`;
    const withPartialRef = { prompt: { id: prompt.id, text: prompt.text }, answer: reference, reference: partial };
    const [score] = await pipeline.score([withPartialRef]);
    expect(score!.components.relevance).toBe(1);
  });

  it("reports a typed failure for a prompt it cannot judge, and scores the rest", async () => {
    const [unknown, fine] = await pipeline.score([
      { prompt: { id: "external:1", text: "Who?" }, answer: reference },
      item(reference),
    ]);
    expect(unknown!.failures).toEqual([
      { module: "relevance", kind: "rejected", message: expect.stringMatching(/no focus/) },
    ]);
    expect(unknown!.components.precision).toBe(1);
    expect(fine!.failures).toEqual([]);
  });

  it("ablations are config changes: precision only is hacked by a short answer, detail (linear) counts S", async () => {
    const precisionOnly = await createRewardPipeline(config([{ name: "precision", weight: 1 }]), { world });
    const short = `<think> </think> ${referenceSentences(world, prompt.focus)[0]}`;
    const [full, one] = await precisionOnly.score([item(reference), item(short)]);
    expect(one!.reward).toBe(full!.reward);
    const linear = await createRewardPipeline(config([{ name: "detail", weight: 1, options: { mode: "linear" } }]), {
      world,
    });
    expect((await linear.score([item(reference)]))[0]!.reward).toBe(S);
    await expect(
      createRewardPipeline(config([{ name: "detail", weight: 1, options: { mode: "cubic" } }]), { world }),
    ).rejects.toThrow(/mode must be/);
  });

  it("the module's fast relevance path agrees with the explained verdict", async () => {
    const analyzer = new FactWorldAnalyzer({ world });
    const sentences = referenceSentences(world, prompt.focus);
    const answers = [
      reference,
      `<think> </think> ${sentences.slice(1).join(" ")}`,
      `<think> </think> ${sentences.join(" ")} ${otherFacts[0]}`,
      `<think> </think> ${otherFacts.join(" ")}`,
      "<think> </think>",
    ];
    const scores = await pipeline.score(answers.map(item));
    expect(scores.map((s) => s.components.relevance)).toEqual(
      answers.map((a) => explainRelevance(analyzer, item(a))!.value),
    );
    expect(new Set(scores.map((s) => s.components.relevance)).size).toBe(2);
  });

  it("writes VeriScore-layout records", () => {
    const analyzer = new FactWorldAnalyzer({ world });
    const changed = reference.replace(`was born in ${year} .`, `was born in ${Number(year) + 1} .`);
    const record = factWorldRecord(
      { question: prompt.text, promptSource: "bio", model: "m" },
      changed,
      analyzer.analyze(changed),
    );
    expect(record.all_claims.length).toBe(S);
    expect(record.claim_list.length).toBe(S);
    expect(record.claim_verification_result.filter((r) => r.verification_result === "unsupported")).toEqual([
      { claim: `${prompt.focus.entity} was born in ${Number(year) + 1} .`, verification_result: "unsupported" },
    ]);
    expect(record.response.startsWith(prompt.focus.entity)).toBe(true);
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });

  it("appends records as JSONL, one object per line", async () => {
    const analyzer = new FactWorldAnalyzer({ world });
    const path = join(await mkdtemp(join(tmpdir(), "factrl-records-")), "sub", "records.jsonl");
    const record = factWorldRecord(
      { question: prompt.text, promptSource: "bio", model: "m" },
      reference,
      analyzer.analyze(reference),
    );
    await appendRecords(path, [record]);
    await appendRecords(path, [record, record]);
    const lines = (await readFile(path, "utf8")).trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l))).toEqual([record, record, record]);
  });
});

describe("the composed reward resists each hack alone (λ = 0.1, μ = 0.5)", async () => {
  const big = generateWorld({ size: "default" });
  const bigPrompts = generatePrompts(big);
  const bio = bigPrompts.find(
    (p) => p.suite === "bio" && p.focus.aspects.length === 4 && p.focus.aspects.includes("birth_year"),
  )!;
  const full = renderReference(big, bio);
  const sentences = referenceSentences(big, bio.focus);
  const places = big.entities.filter((e) => e.type === "place" && e.id !== bio.focus.entityId).slice(0, 20);
  const padding = places.flatMap((o) =>
    referenceSentences(big, { entityId: o.id, entity: o.name, aspects: ["place_kind"] }),
  );
  const [bornIn] = valuesOf(big.entities[bio.focus.entityId]!, "birth_year");
  const pipeline = await createRewardPipeline(
    config([
      { name: "format", weight: 1 },
      { name: "precision", weight: 1 },
      { name: "detail", weight: 0.1 },
      { name: "relevance", weight: 0.5 },
    ]),
    { world: big, prompts: bigPrompts },
  );
  const reward = async (answer: string) => (await pipeline.score([{ prompt: bio, answer }]))[0]!.reward;

  it("the full, true, on-topic answer beats short, padded, partly wrong, empty and malformed ones", async () => {
    const best = await reward(full);
    const hacks = {
      short: `<think> </think> ${sentences[0]}`,
      padded1: `${full} ${padding[0]}`,
      padded20: `${full} ${padding.join(" ")}`,
      wrongYear: full.replace(`born in ${bornIn} .`, `born in ${Number(bornIn) + 3} .`),
      empty: "<think> </think>",
      malformed: full.replace("</think>", ""),
    };
    for (const [name, answer] of Object.entries(hacks)) expect(await reward(answer), name).toBeLessThan(best);
    expect(await reward(hacks.malformed)).toBe(-1);
  });
});
