/** `factrl prompts check` and `factrl prompts hard`: what a person running them sees, and the exit codes scripts see. */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, workDir } from "../../test/cli-helpers.ts";

const REPO = resolve(import.meta.dirname, "../..");

describe("factrl prompts check", () => {
  it("lists every rejected prompt with its reason, counts them, and exits 1; a clean file exits 0", async () => {
    const dir = workDir({
      "mixed.jsonl": [
        '{"question": "Tell me about Jogu Bofolo ."}',
        '{"question": "Write a poem about Jogu Bofolo .", "id": "poem"}',
        '{"question": "Tell me a bio of Jogu Fefi ."}',
        "",
        '{"question": "What is the employer of Jogu Bofolo ?"}',
        '{"question": "Tell me about Zuzu Mimi ."}',
      ].join("\n"),
      "clean.jsonl": '{"prompt": "What are the occupation and the place of birth of Jogu Bofolo ?"}\n',
    });
    const [mixed, clean] = await Promise.all([
      runCli(["prompts", "check", "mixed.jsonl", "--world", "tiny", "--out", "rejected.jsonl"], dir),
      runCli(["prompts", "check", "clean.jsonl", "--world", "tiny"], dir),
    ]);
    expect(mixed.code).toBe(1);
    expect(mixed.stdout.split("\n")).toEqual([
      'poem: not-fact-seeking — asks for fiction or opinion ("write a poem")',
      "mixed.jsonl:3: ambiguous — Jogu Fefi has a look-alike (Jogu Feze) and the prompt says nothing that tells them apart",
      "mixed.jsonl:5: unanswerable — the knowledge base has no employer of Jogu Bofolo",
      "mixed.jsonl:6: unknown-entity — names no entity of the knowledge base",
      '5 prompts (field "question", 31-entity world, minFacts 2): 1 pass, 4 rejected (not-fact-seeking 1, unknown-entity 1, ambiguous 1, unanswerable 1)',
      "",
    ]);
    expect(mixed.stderr).toContain("4 of 5 prompts rejected");
    const rejected = readFileSync(join(dir, "rejected.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(rejected.map((r) => r.reason)).toEqual(["not-fact-seeking", "ambiguous", "unanswerable", "unknown-entity"]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('1 prompts (field "prompt", 31-entity world, minFacts 2): 1 pass, 0 rejected');
  }, 60_000);

  it("answers a bad option or file with a usage error naming it (exit 2)", async () => {
    const dir = workDir({ "p.jsonl": '{"q": "Tell me about Jogu Bofolo ."}\n' });
    const [world, field, minFacts, missing] = await Promise.all([
      runCli(["prompts", "check", "p.jsonl", "--field", "q", "--world", "huge"], dir),
      runCli(["prompts", "check", "p.jsonl", "--world", "tiny"], dir),
      runCli(["prompts", "check", "p.jsonl", "--world", "tiny", "--field", "q", "--min-facts", "0"], dir),
      runCli(["prompts", "check", "absent.jsonl"], dir),
    ]);
    expect([world.code, field.code, minFacts.code, missing.code]).toEqual([2, 2, 2, 2]);
    expect(world.stderr).toContain('--world must be one of tiny, default, got "huge"');
    expect(field.stderr).toContain(
      "the first prompt has none of the fields question, prompt, text; name one with --field",
    );
    expect(minFacts.stderr).toContain('--min-facts must be an integer ≥ 1, got "0"');
    expect(missing.stderr).toContain("cannot read absent.jsonl");
  }, 60_000);
});

describe("factrl prompts hard", () => {
  it("writes the hard split as FACTORY JSONL and a table of unsupported claims: hard vs the rest", async () => {
    const dir = workDir();
    const result = await runCli(
      [
        "prompts",
        "hard",
        join(REPO, "configs/tiny.yaml"),
        "--set",
        `model.init=${REPO}/test/fixtures/tiny-policy`,
        "--set",
        `output.dir=${dir}`,
        "--share",
        "0.25",
      ],
      dir,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/the 25\.0% with the least precise answers over 2 samples each/);
    expect(result.stdout).toMatch(/\| hard \| 7 \| \d+ \| /); // round(0.25 · 26 evaluation prompts)
    expect(result.stdout).toMatch(/\| rest: factbench-hard \| \d+ \| /);
    const hard = readFileSync(join(dir, "tiny", "hard-split.jsonl"), "utf8")
      .trim()
      .split("\n");
    expect(hard).toHaveLength(7);
    expect(JSON.parse(hard[0]!)).toMatchObject({ id: expect.any(String), question: expect.any(String) });
  }, 120_000);
});
