/**
 * The reward-module interface: what a built-in, a module file, a NATS service or an HTTP judge
 * all look like to the reward pipeline, and the checks every module's output goes through.
 */

/** What the reward sees of a prompt. FactWorld prompts carry their focus; external ones may not. */
export interface RewardPrompt {
  readonly id: string;
  readonly text: string;
  readonly focus?: { readonly entity: string; readonly aspects: readonly string[] };
}

export interface RewardItem {
  readonly prompt: RewardPrompt;
  /** The full policy output, `<think> … </think> answer`. */
  readonly answer: string;
  /** The reference answer for the prompt (by default the initial policy's); modules may ignore it. */
  readonly reference?: string;
  /** True when the policy hit its token budget before it stopped: the answer is unfinished. */
  readonly truncated?: boolean;
}

/** Per-answer output of a module: its components (one named like the module is its reward term). */
export type ModuleOutcome =
  | { readonly ok: true; readonly components: Readonly<Record<string, number>> }
  | { readonly ok: false; readonly error: { readonly kind: string; readonly message: string } };

export interface RewardModule {
  /** Unique within a pipeline; `components[name]` of each outcome is the term's value. */
  readonly name: string;
  readonly version: string;
  /** One outcome per item, in order. A module may fail single items without failing the batch. */
  score(batch: readonly RewardItem[], signal: AbortSignal): Promise<readonly ModuleOutcome[]>;
  /** Releases what the module holds (connections); called when the pipeline closes. */
  close?(): Promise<void>;
}

/** Why a module gave no score for one answer (same shape as messaging's RewardFailure). */
export type FailureKind = "threw" | "timeout" | "invalid-output" | "rejected";
export interface RewardFailure {
  readonly module: string;
  readonly kind: FailureKind;
  readonly message: string;
}

const describeValue = (value: unknown): string => {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 120 ? `${text.slice(0, 117)}...` : text;
  } catch {
    return String(value);
  }
};

/** A module's checked result for one answer: its components, or why there are none. */
export type ItemResult =
  | { readonly ok: true; readonly components: Readonly<Record<string, number>> }
  | { readonly ok: false; readonly failure: RewardFailure };

/** Checks one outcome as a module returned it; a failure says what was wrong. */
export function checkOutcome(moduleName: string, value: unknown): ItemResult {
  const invalid = (why: string): ItemResult => ({
    ok: false,
    failure: { module: moduleName, kind: "invalid-output", message: `${why}, got ${describeValue(value)}` },
  });
  if (typeof value !== "object" || value === null) return invalid("expected {ok, components} or {ok: false, error}");
  const record = value as Record<string, unknown>;
  if (record.ok === false) {
    const error = record.error as Record<string, unknown> | undefined;
    const message = typeof error?.message === "string" ? error.message : describeValue(record.error);
    return { ok: false, failure: { module: moduleName, kind: "rejected", message } };
  }
  if (record.ok !== true) return invalid("expected ok: true or ok: false");
  const components = record.components;
  if (typeof components !== "object" || components === null || Array.isArray(components))
    return invalid("expected components to be a map of numbers");
  for (const key in components) {
    const v = (components as Record<string, unknown>)[key];
    if (typeof v !== "number" || !Number.isFinite(v)) return invalid(`component "${key}" is not a finite number`);
  }
  if (!(moduleName in components)) return invalid(`components lack "${moduleName}" (the term's value)`);
  // Already the right shape: hand it on without copying (this runs for every answer of every term).
  return value as ItemResult;
}

/** Checks that a value is a usable module (for plug-ins loaded from files). */
export function checkModule(value: unknown, where: string): RewardModule {
  const m = value as Partial<RewardModule> | null;
  const problems: string[] = [];
  if (typeof m !== "object" || m === null)
    throw new Error(`${where}: expected a reward module object, got ${describeValue(value)}`);
  if (typeof m.name !== "string" || !/^[\w-]+$/.test(m.name))
    problems.push("name must be a non-empty word ([A-Za-z0-9_-])");
  if (typeof m.version !== "string" || m.version === "") problems.push("version must be a non-empty string");
  if (typeof m.score !== "function") problems.push("score must be a function (batch, signal) => Promise<outcomes>");
  if (problems.length > 0) throw new Error(`${where}: not a reward module: ${problems.join("; ")}`);
  return m as RewardModule;
}

/** A positive-integer module option (options come from YAML): the default when absent, a clear error when wrong. */
export function positiveIntOption(
  options: Readonly<Record<string, unknown>>,
  key: string,
  fallback: number,
  where: string,
): number {
  const value = options[key];
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0)
    throw new Error(`${where}: options.${key} must be a positive integer, got ${describeValue(value)}`);
  return value;
}

/** A name option: the default when absent, else a word ([A-Za-z0-9_-]). */
export function nameOption(options: Readonly<Record<string, unknown>>, fallback: string, where: string): string {
  const value = options.name;
  if (value === undefined) return fallback;
  if (typeof value !== "string" || !/^[\w-]+$/.test(value))
    throw new Error(`${where}: options.name must be a word ([A-Za-z0-9_-]), got ${describeValue(value)}`);
  return value;
}
