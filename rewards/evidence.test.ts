/**
 * The evidence-grounded verifier against worked examples (envs evidenceVerdict), and the `evidence`
 * module over a fake retriever: claims extracted as the oracle extracts them, verdicts from passages
 * only, a timed-out retrieval leaving its claim unverifiable (counted), and the verdict cache (hits,
 * and a malformed entry rejected, reported and recomputed).
 */
import { describe, expect, it } from "vitest";
import { evidenceVerdict, type ParsedClaim } from "../envs/index.ts";
import { EVIDENCE_VERIFIER, type EvidenceSource, evidenceModule } from "./evidence.ts";
import { createRewardPipeline } from "./registry.ts";
import { memoryVerdictCache, verdictKey } from "./verdict-cache.ts";

const born: ParsedClaim = { subject: "Talu Venor", relation: "birthplace", object: "Kessa" };
const wrote: ParsedClaim = { subject: "Talu Venor", relation: "created", object: "Sela Dorn" };

describe("evidenceVerdict (worked examples)", () => {
  it("a passage stating the claim supports it; one stating another value of a one-valued relation contradicts it", () => {
    expect(evidenceVerdict(born, ["Talu Venor was born in Kessa . Talu Venor was a poet ."])).toEqual({
      verdict: "supported",
      supporting: 1,
      contradicting: 0,
    });
    expect(evidenceVerdict(born, ["Talu Venor was born in Miro in 1850 ."])).toEqual({
      verdict: "contradicted",
      supporting: 0,
      contradicting: 1,
    });
  });

  it("a passage that says nothing about the claim's subject and relation leaves it unverifiable", () => {
    expect(evidenceVerdict(born, ["Kessa is a town in the north .", "Talu Venor was a poet ."]).verdict).toBe(
      "unverifiable",
    );
    expect(evidenceVerdict(born, []).verdict).toBe("unverifiable");
    // Garbled text states no claim the grammar can read.
    expect(evidenceVerdict(born, ["born Kessa was Talu in Venor ."]).verdict).toBe("unverifiable");
  });

  it("reads set-valued relations both ways: another creator contradicts, another work does not", () => {
    expect(evidenceVerdict(wrote, ["Sela Dorn was created by Talu Venor ."]).verdict).toBe("supported");
    expect(evidenceVerdict(wrote, ["Sela Dorn is a poem by Mira Kett ."]).verdict).toBe("contradicted");
    expect(evidenceVerdict(wrote, ["Talu Venor created Pel Orra ."]).verdict).toBe("unverifiable");
  });

  it("the passages vote: more support than contradiction supports, a tie is unverifiable", () => {
    const right = "Talu Venor was born in Kessa .";
    const wrong = "Talu Venor is a native of Miro .";
    expect(evidenceVerdict(born, [right, right, wrong])).toEqual({
      verdict: "supported",
      supporting: 2,
      contradicting: 1,
    });
    expect(evidenceVerdict(born, [wrong, wrong, right]).verdict).toBe("contradicted");
    expect(evidenceVerdict(born, [right, wrong]).verdict).toBe("unverifiable");
  });
});

/** A retriever over a fixed table: the passages for each claim sentence; "Oslo" queries time out. */
const PASSAGES: Record<string, { id: string; text: string }[]> = {
  "Talu Venor was born in Kessa .": [{ id: "d1", text: "Talu Venor was born in Kessa ." }],
  "Talu Venor was a poet .": [{ id: "d2", text: "Talu Venor worked as a painter ." }],
};
const makeSource =
  (asked: string[]): EvidenceSource =>
  async ({ query, k }) => {
    asked.push(query);
    if (query.startsWith("Oslo")) return null;
    return (PASSAGES[query] ?? []).slice(0, k);
  };
const item = (answer: string) => ({ prompt: { id: "p", text: "Tell me about Talu Venor." }, answer });
const signal = new AbortController().signal;

describe("evidence module", () => {
  it("scores S / (S + U) over the answer's distinct claims, from retrieved passages only", async () => {
    const asked: string[] = [];
    const module = evidenceModule(makeSource(asked), { k: 3 });
    const [scored, malformed, empty, timedOut] = await module.score(
      [
        item(
          "<think> plan </think> Talu Venor was born in Kessa . Talu Venor was a poet . Talu Venor was born in 1850 . Talu Venor was born in Kessa .",
        ),
        item("no think block"),
        item("<think> </think> I am not sure about Talu Venor ."),
        item("<think> </think> Oslo Bay is a port . Talu Venor was born in Kessa ."),
      ],
      signal,
    );
    expect(scored).toEqual({
      ok: true,
      components: {
        evidence: 1 / 3,
        supported: 1,
        contradicted: 1,
        unverifiable: 1,
        claims: 3,
        abstained: 0,
        timeouts: 0,
      },
    });
    expect(malformed).toMatchObject({ ok: true, components: { evidence: 0, claims: 0, abstained: 0 } });
    expect(empty).toMatchObject({ ok: true, components: { evidence: 0, claims: 0, abstained: 1 } });
    expect(timedOut).toMatchObject({ ok: true, components: { evidence: 0.5, unverifiable: 1, timeouts: 1 } });
    // One retrieval per distinct claim, queried as the claim's own sentence (the repeat is not asked again).
    expect(asked.filter((q) => q === "Talu Venor was born in Kessa .")).toHaveLength(2); // items 1 and 4
    expect(asked).toContain("Talu Venor was born in 1850 .");
  });

  it("keeps verdicts in the cache by (verifier, claim, evidence); a malformed entry is rejected, reported and recomputed", async () => {
    const cache = memoryVerdictCache();
    const rejected: { key: string; reason: string }[] = [];
    const module = evidenceModule(makeSource([]), {}, cache, (entry) => rejected.push(entry));
    const answer = item("<think> </think> Talu Venor was born in Kessa . Talu Venor was a poet .");
    const key = verdictKey(EVIDENCE_VERIFIER.version, "Talu Venor was born in Kessa .", ["d1"]);
    await cache.write(key, '{"v":1,"label":"maybe"}');
    const [first] = await module.score([answer], signal);
    expect(first).toMatchObject({ ok: true, components: { evidence: 0.5, supported: 1, contradicted: 1 } });
    expect(rejected).toEqual([{ key, reason: expect.stringMatching(/label "maybe" is not one of/) }]);
    expect(await cache.read(key)).toBe('{"v":1,"label":"supported"}'); // overwritten with the fresh verdict
    expect(cache.counts).toMatchObject({ hits: 0, misses: 2, rejected: 1 });
    const [second] = await module.score([answer], signal);
    expect(second).toEqual(first);
    expect(cache.counts).toMatchObject({ hits: 2, misses: 2, rejected: 1 });
    // Another evidence set is another key: the same claim against other passages is verified anew.
    expect(verdictKey(EVIDENCE_VERIFIER.version, "Talu Venor was born in Kessa .", ["d9"])).not.toBe(key);
    expect(verdictKey(EVIDENCE_VERIFIER.version, "x", ["a", "b"])).toBe(
      verdictKey(EVIDENCE_VERIFIER.version, "x", ["b", "a"]),
    );
  });

  it("is a config error without a retriever, and checks its options", async () => {
    await expect(
      createRewardPipeline({ modules: [{ name: "evidence", weight: 1 }], timeoutMs: 1_000, retries: 0 }),
    ).rejects.toThrow(/no retriever was given/);
    expect(() => evidenceModule(makeSource([]), { k: 0 })).toThrow(/options.k must be a positive integer/);
    expect(() => evidenceModule(makeSource([]), { term: "recall" })).toThrow(/options.term must be/);
    const detail = evidenceModule(makeSource([]), { name: "evidence-detail", term: "detail" });
    const [d] = await detail.score(
      [item("<think> </think> Talu Venor was born in Kessa . Talu Venor was a poet .")],
      signal,
    );
    expect(d).toMatchObject({ ok: true, components: { "evidence-detail": Math.log(2), supported: 1, claims: 2 } });
    const pipeline = await createRewardPipeline(
      { modules: [{ name: "evidence", weight: 1, options: { k: 2 } }], timeoutMs: 1_000, retries: 0 },
      { evidence: makeSource([]) },
    );
    const [score] = await pipeline.score([item("<think> </think> Talu Venor was born in Kessa .")]);
    expect(score!.reward).toBe(1);
  });
});
