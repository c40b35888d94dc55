/**
 * An OpenAI-compatible HTTP judge (POST {url}/chat/completions) doing VeriScore-style claim
 * extraction (per sentence, in context, "No verifiable claim." when there is none) and claim
 * verification ("Supported" / "Unsupported"), for real models where FactWorld's exact verifier
 * does not apply. Its term value is the precision S / (S + U) over the judge's claims.
 */
import { parseAnswer } from "../envs/index.ts";
import { type ModuleOutcome, nameOption, positiveIntOption, type RewardItem, type RewardModule } from "./module.ts";
import { cachedVerdict, type RejectionLog, type VerdictCache, type VerifierIdentity } from "./verdict-cache.ts";

export interface HttpJudgeTarget {
  /** Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1. */
  readonly url: string;
  readonly model: string;
  /** Environment variable holding the API key (sent as a Bearer token). */
  readonly apiKeyEnv?: string;
}

export interface HttpJudgeOptions {
  /** Module name (default "judge"). */
  readonly name?: string;
  /** Chat completions in flight at once (default 8). */
  readonly concurrency?: number;
  readonly maxTokens?: number;
  /**
   * true (default): only the answer part after `</think>` is judged, and a malformed answer scores 0
   * (the format term penalises it). false: a model that writes no `<think>` block (a base or chat
   * model, an API) is judged on its whole answer, or on what follows `</think>` when there is one.
   */
  readonly requireThink?: boolean;
}

/** The http judge's module: also the judgement behind each recent score, for VeriScore-style reports. */
export interface HttpJudgeModule extends RewardModule {
  /** The judgement of `answer` to the prompt `promptId` if this module scored it recently (the last 4096 kept). */
  judgementOf(promptId: string, answer: string): Judgement | undefined;
}

const KEPT_JUDGEMENTS = 4096;

export const NO_VERIFIABLE_CLAIM = "No verifiable claim.";

/** VeriScore-style extraction prompt: the sentence to break down is marked <SOS> … <EOS> in its context. */
export function extractionPrompt(question: string, response: string, sentence: string): string {
  const marked = response.replace(sentence, `<SOS>${sentence}<EOS>`);
  return [
    "You are trying to verify how factual a response to a question is. To do so, break down the sentence",
    "between <SOS> and <EOS> into as many fine-grained facts as possible. Each fact must be verifiable against",
    "reliable external world knowledge (e.g. Wikipedia), self-contained (no pronouns: name the subject), and",
    "stated in the response. Do not extract opinions, advice, hedges or stories. Write one fact per line.",
    `If the sentence states no verifiable fact, write exactly: ${NO_VERIFIABLE_CLAIM}`,
    "",
    `Question: ${question}`,
    `Response: ${marked}`,
    "",
    "Facts:",
  ].join("\n");
}

/** VeriScore-style verification prompt (no search results: the judge uses its own knowledge). */
export function verificationPrompt(claim: string): string {
  return [
    `Claim: ${claim}`,
    "",
    "Task: decide whether the claim is supported or unsupported by reliable world knowledge. A claim that is",
    "partly wrong, or that cannot be confirmed, is unsupported. Answer with exactly one word: Supported or Unsupported.",
  ].join("\n");
}

/** Claims from an extraction reply: one per line, list markers stripped; the no-claim sentinel gives none. */
export function parseExtraction(content: string): string[] {
  return content
    .split("\n")
    .map((line) => line.replace(/^\s*(?:[-*•]|\d+[.)])\s*/, "").trim())
    .filter((line) => line !== "" && line.toLowerCase() !== NO_VERIFIABLE_CLAIM.toLowerCase());
}

export type JudgeLabel = "supported" | "unsupported";

/** The label of a verification reply; null when it says neither. */
export function parseVerification(content: string): JudgeLabel | null {
  const text = content.toLowerCase();
  if (/\bunsupported\b/.test(text)) return "unsupported";
  if (/\bsupported\b/.test(text)) return "supported";
  return null;
}

/** Sentences of free text (for real models' answers). */
export const splitSentences = (text: string): string[] =>
  text
    .split(/(?<=[.!?])\s+/)
    .map((s) => s.trim())
    .filter((s) => s !== "");

/** One answer's judgement, in VeriScore's terms: claims per sentence and a label per claim. */
export interface Judgement {
  readonly question: string;
  readonly response: string;
  readonly claimList: readonly (readonly string[])[];
  readonly verifications: readonly { readonly claim: string; readonly label: JudgeLabel }[];
}

export interface ChatCompletion {
  readonly content: string;
  /** `length` when max_tokens ran out before the model stopped. */
  readonly finishReason: string | undefined;
}

/**
 * One chat completion (POST {url}/chat/completions, one user message) from an OpenAI-compatible API:
 * the judge's calls, and `factrl eval --policy openai:URL`'s answers. Throws with the status and the
 * start of the body on an HTTP error, or when the reply has no message content.
 */
export async function chatCompletion(
  target: HttpJudgeTarget,
  content: string,
  sampling: {
    readonly temperature: number;
    readonly maxTokens: number;
    readonly topP?: number;
    readonly seed?: number;
  },
  signal?: AbortSignal,
): Promise<ChatCompletion> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const key = target.apiKeyEnv ? process.env[target.apiKeyEnv] : undefined;
  if (key) headers.authorization = `Bearer ${key}`;
  const url = `${target.url.replace(/\/$/, "")}/chat/completions`;
  const response = await fetch(url, {
    method: "POST",
    headers,
    signal,
    body: JSON.stringify({
      model: target.model,
      messages: [{ role: "user", content }],
      temperature: sampling.temperature,
      max_tokens: sampling.maxTokens,
      ...(sampling.topP === undefined ? {} : { top_p: sampling.topP }),
      ...(sampling.seed === undefined ? {} : { seed: sampling.seed }),
    }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}: ${text.slice(0, 200)}`);
  let body: { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[] };
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`${url}: reply is not JSON: ${text.slice(0, 200)}`);
  }
  const choice = body.choices?.[0];
  if (typeof choice?.message?.content !== "string")
    throw new Error(`${url}: reply has no choices[0].message.content: ${text.slice(0, 200)}`);
  return {
    content: choice.message.content,
    finishReason: typeof choice.finish_reason === "string" ? choice.finish_reason : undefined,
  };
}

/** Keeps at most `limit` calls in flight. */
function limiter(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/** Where the judge keeps its verdicts (docs/rewards.md, "The verification cache"). */
export interface JudgeCache {
  readonly cache: VerdictCache;
  readonly onRejected?: RejectionLog;
}

export class HttpJudge {
  private readonly limit: ReturnType<typeof limiter>;
  private readonly maxTokens: number;
  /** Its verdicts' identity in the cache: the model behind the URL, and the prompt's version. */
  readonly verifier: VerifierIdentity<JudgeLabel>;

  constructor(
    readonly target: HttpJudgeTarget,
    options: Readonly<Record<string, unknown>> & HttpJudgeOptions = {},
    private readonly cached?: JudgeCache,
  ) {
    if (!/^https?:\/\//.test(target.url))
      throw new Error(`http judge: url must start with http:// or https://, got "${target.url}"`);
    if (target.apiKeyEnv && !process.env[target.apiKeyEnv])
      throw new Error(`http judge: environment variable ${target.apiKeyEnv} (the API key) is not set`);
    this.limit = limiter(positiveIntOption(options, "concurrency", 8, "http judge"));
    this.maxTokens = positiveIntOption(options, "maxTokens", 512, "http judge");
    this.verifier = {
      version: `http-judge/1:${target.url}:${target.model}:${this.maxTokens}`,
      labels: ["supported", "unsupported"],
    };
  }

  /** One chat completion at temperature 0; throws with the status and the start of the body on an HTTP error. */
  async complete(content: string, signal?: AbortSignal): Promise<string> {
    return this.limit(
      async () =>
        (await chatCompletion(this.target, content, { temperature: 0, maxTokens: this.maxTokens }, signal)).content,
    );
  }

  /** One verification call: the judge's label for `claim`. */
  async verify(claim: string, signal?: AbortSignal): Promise<JudgeLabel> {
    const reply = await this.complete(verificationPrompt(claim), signal);
    const label = parseVerification(reply);
    if (!label)
      throw new Error(
        `http judge: verification reply says neither Supported nor Unsupported: "${reply.slice(0, 100)}"`,
      );
    return label;
  }

  async judge(question: string, response: string, signal?: AbortSignal): Promise<Judgement> {
    const sentences = splitSentences(response);
    const claimList = await Promise.all(
      sentences.map(async (s) => parseExtraction(await this.complete(extractionPrompt(question, response, s), signal))),
    );
    const claims = [...new Set(claimList.flat())];
    // The judge verifies from its own knowledge: the evidence set is empty.
    const verifications = await Promise.all(
      claims.map(async (claim) => ({
        claim,
        label: await cachedVerdict(
          this.cached?.cache,
          this.verifier,
          claim,
          [],
          () => this.verify(claim, signal),
          this.cached?.onRejected,
        ),
      })),
    );
    return { question, response, claimList, verifications };
  }
}

/** The judge's components for one judgement. */
export function judgementComponents(name: string, j: Judgement): Record<string, number> {
  const supported = j.verifications.filter((v) => v.label === "supported").length;
  const claims = j.verifications.length;
  return { [name]: claims === 0 ? 0 : supported / claims, supported, unsupported: claims - supported, claims };
}

export function httpJudgeModule(
  target: HttpJudgeTarget,
  options: Readonly<Record<string, unknown>> & HttpJudgeOptions = {},
  cached?: JudgeCache,
): HttpJudgeModule {
  const judge = new HttpJudge(target, options, cached);
  const name = nameOption(options, "judge", "http judge");
  if (options.requireThink !== undefined && typeof options.requireThink !== "boolean")
    throw new Error(
      `http judge: option requireThink must be true or false, got ${JSON.stringify(options.requireThink)}`,
    );
  const requireThink = options.requireThink ?? true;
  const judgements = new Map<string, Judgement>();
  const keyOf = (promptId: string, answer: string) => `${promptId}\u0000${answer}`;
  const scoreOne = async (item: RewardItem, signal: AbortSignal): Promise<ModuleOutcome> => {
    const format = parseAnswer(item.answer);
    // Only the answer part is judged; a malformed answer has none (the format term penalises it).
    if (!format.ok && requireThink)
      return { ok: true, components: { [name]: 0, supported: 0, unsupported: 0, claims: 0 } };
    try {
      const judgement = await judge.judge(item.prompt.text, (format.ok ? format.answer : item.answer).trim(), signal);
      if (judgements.size >= KEPT_JUDGEMENTS) judgements.clear();
      judgements.set(keyOf(item.prompt.id, item.answer), judgement);
      return { ok: true, components: judgementComponents(name, judgement) };
    } catch (error) {
      return { ok: false, error: { kind: "judge", message: (error as Error).message } };
    }
  };
  return {
    name,
    version: `http:${target.model}`,
    score: (batch, signal) => Promise.all(batch.map((item) => scoreOne(item, signal))),
    judgementOf: (promptId, answer) => judgements.get(keyOf(promptId, answer)),
  };
}

export const isHttpJudgeModule = (module: RewardModule): module is HttpJudgeModule =>
  typeof (module as Partial<HttpJudgeModule>).judgementOf === "function";
