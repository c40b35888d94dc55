/**
 * Loaders for external prompt sets in JSONL, so real benchmarks can be evaluated with a remote judge:
 * FACTORY (`question`), LongFact (`prompt`), or any field named by the caller. A bad line is reported
 * with its line number and the whole file is refused: nothing is silently skipped.
 */
import { readFile } from "node:fs/promises";

export interface ExternalPrompt {
  /** `source:lineNumber` unless the line has an `id` string. */
  readonly id: string;
  readonly source: string;
  readonly text: string;
  /** The other fields of the line, kept for reports. */
  readonly meta: Readonly<Record<string, unknown>>;
}

export const PROMPT_FIELDS = { factory: "question", longfact: "prompt" } as const;
export type ExternalFormat = keyof typeof PROMPT_FIELDS;

export class PromptFileError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: ${problems.length} bad line(s); nothing loaded:\n  ${problems.slice(0, 10).join("\n  ")}`);
    this.name = "PromptFileError";
  }
}

/** Parses JSONL text; `field` is the prompt text's field name. Blank lines are allowed. */
export function parsePromptJsonl(text: string, field: string, source = "prompts"): ExternalPrompt[] {
  const prompts: ExternalPrompt[] = [];
  const problems: string[] = [];
  text.split("\n").forEach((line, index) => {
    const lineNumber = index + 1;
    if (line.trim() === "") return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      problems.push(`line ${lineNumber}: not JSON (${(error as Error).message})`);
      return;
    }
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      problems.push(`line ${lineNumber}: not a JSON object`);
      return;
    }
    const { [field]: value, ...meta } = record as Record<string, unknown>;
    if (typeof value !== "string" || value.trim() === "") {
      problems.push(`line ${lineNumber}: field "${field}" missing or not a non-empty string`);
      return;
    }
    const id = typeof meta.id === "string" ? meta.id : `${source}:${lineNumber}`;
    prompts.push({ id, source, text: value, meta });
  });
  if (problems.length > 0) throw new PromptFileError(source, problems);
  return prompts;
}

/** Loads a FACTORY or LongFact JSONL file (or another format given by its field name). */
export async function loadPromptFile(
  path: string,
  format: ExternalFormat | { field: string },
): Promise<ExternalPrompt[]> {
  const field = typeof format === "string" ? PROMPT_FIELDS[format] : format.field;
  return parsePromptJsonl(await readFile(path, "utf8"), field, path);
}
