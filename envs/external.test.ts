import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadPromptFile, PromptFileError, parsePromptJsonl } from "./external.ts";

describe("external prompt loaders", () => {
  it("loads FACTORY (question) and LongFact (prompt) files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "factrl-prompts-"));
    const factory = join(dir, "factory.jsonl");
    await writeFile(
      factory,
      '{"question": "Who was Ada Lovelace?", "id": "f1"}\n\n{"question": "What is X?", "topic": "x"}\n',
    );
    const longfact = join(dir, "longfact.jsonl");
    await writeFile(longfact, '{"prompt": "Tell me about the Eiffel Tower."}\n');
    expect(await loadPromptFile(factory, "factory")).toEqual([
      { id: "f1", source: factory, text: "Who was Ada Lovelace?", meta: { id: "f1" } },
      { id: `${factory}:3`, source: factory, text: "What is X?", meta: { topic: "x" } },
    ]);
    expect((await loadPromptFile(longfact, "longfact"))[0]!.text).toBe("Tell me about the Eiffel Tower.");
  });

  it("refuses the whole file and names every bad line", () => {
    const text = '{"prompt": "ok"}\nnot json\n{"question": "wrong field"}\n[1]\n';
    let error: unknown;
    try {
      parsePromptJsonl(text, "prompt", "x.jsonl");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PromptFileError);
    const problems = (error as PromptFileError).problems;
    expect(problems.map((p) => p.split(":")[0])).toEqual(["line 2", "line 3", "line 4"]);
  });
});
