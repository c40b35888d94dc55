/**
 * Retrieval over an environment's documents (docs/retrieval.md): building an index (BM25, or a
 * bi-encoder trained here) into a directory, opening one — refused when it was built for another
 * world or tokenizer — and retrieving by CM3Leon's rules; recall@k of the supporting documents.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { EnvDocument, Environment } from "../../envs/index.ts";
import { buildBm25, loadBm25 } from "./bm25.ts";
import {
  type BiEncoderSettings,
  DEFAULT_BI_ENCODER,
  denseIndex,
  makeFeaturizer,
  type TrainingPair,
  trainBiEncoder,
} from "./dense.ts";
import { recallAtK, type Scored, selectDiverse } from "./select.ts";
import { dropQueryWords, RETRIEVAL_TOKENIZER, retrievalWords } from "./words.ts";

export { type BiEncoderSettings, DEFAULT_BI_ENCODER } from "./dense.ts";
export { type EvidencePrompt, evidencePromptTokens, promptWithEvidence } from "./evidence.ts";
export { dropQueryWords, RETRIEVAL_TOKENIZER, retrievalWords } from "./words.ts";

export const RETRIEVER_KINDS = ["bm25", "dense"] as const;
export type RetrieverKind = (typeof RETRIEVER_KINDS)[number];

const FORMAT = "factrl-retrieval-index";
const FORMAT_VERSION = 1;

/** An index that cannot be built, read, or used with this environment: says which and why. */
export class RetrievalIndexError extends Error {
  override readonly name = "RetrievalIndexError";
}

export interface RetrievalIndexManifest {
  readonly format: typeof FORMAT;
  readonly version: number;
  readonly kind: RetrieverKind;
  /** The corpus it indexes: a digest of every document's id and text, their count, the environment. */
  readonly world: { readonly fingerprint: string; readonly documents: number; readonly description: string };
  /** The word rule, and for `dense` a digest of the encoder's vocabulary. */
  readonly tokenizer: string;
  readonly createdAt: string;
  /** `dense`: the bi-encoder's settings and its training losses (first, last). */
  readonly biEncoder?: BiEncoderSettings & {
    readonly firstLoss: number;
    readonly lastLoss: number;
    readonly pairs: number;
  };
}

const digest = (parts: Iterable<string>): string => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part).update("\u0000");
  return hash.digest("hex").slice(0, 32);
};

/** The environment's documents; an environment without any has nothing to retrieve. */
export function documentsOf(env: Environment): readonly EnvDocument[] {
  const documents = env.documents?.() ?? [];
  if (documents.length === 0)
    throw new RetrievalIndexError(`environment ${env.kind} has no documents to retrieve from (Environment.documents)`);
  return documents;
}

const worldOf = (env: Environment, documents: readonly EnvDocument[]) => ({
  fingerprint: digest(documents.flatMap((d) => [d.id, d.text])),
  documents: documents.length,
  description: env.description,
});

/** The dense encoder's words: the environment's vocabulary (else its documents'), lower-cased, once each. */
const denseVocabulary = (env: Environment, documents: readonly EnvDocument[]): string[] => [
  ...new Set((env.vocabulary ?? documents.map((d) => d.text)).flatMap((text) => retrievalWords(text))),
];

const tokenizerOf = (kind: RetrieverKind, vocabulary: readonly string[]) =>
  kind === "bm25" ? RETRIEVAL_TOKENIZER : `${RETRIEVAL_TOKENIZER}+vocab:${digest(vocabulary)}`;

/**
 * (question, supporting document) pairs of the train split: each prompt with a focus, paired with
 * every document about its focus entity (docs/retrieval.md, "Supporting documents").
 */
export function trainingPairs(env: Environment, documents: readonly EnvDocument[]): TrainingPair[] {
  const byAbout = documentsByAbout(documents);
  return env.train.flatMap((prompt) =>
    prompt.focus === undefined
      ? []
      : (byAbout.get(prompt.focus.entity) ?? []).map((document) => ({
          query: prompt.text,
          document,
          group: prompt.focus!.entity,
        })),
  );
}

function documentsByAbout(documents: readonly EnvDocument[]): Map<string, number[]> {
  const byAbout = new Map<string, number[]>();
  documents.forEach((document, index) => {
    if (document.about === undefined) return;
    const list = byAbout.get(document.about);
    if (list) list.push(index);
    else byAbout.set(document.about, [index]);
  });
  return byAbout;
}

const float32Bytes = (values: Float32Array) => new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
const float32Of = (bytes: Buffer) => {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
};

/** Builds a `kind` index of the environment's documents into `dir` (replaced whole); returns its manifest. */
export async function buildRetrievalIndex(
  env: Environment,
  kind: RetrieverKind,
  dir: string,
  biEncoder: BiEncoderSettings = DEFAULT_BI_ENCODER,
): Promise<RetrievalIndexManifest> {
  const documents = documentsOf(env);
  const texts = documents.map((d) => d.text);
  const files: Record<string, Uint8Array | string> = {};
  let manifest: RetrievalIndexManifest;
  const base = { format: FORMAT, version: FORMAT_VERSION, kind, world: worldOf(env, documents) } as const;
  if (kind === "bm25") {
    files["bm25.json"] = buildBm25(texts).toJson();
    manifest = { ...base, tokenizer: RETRIEVAL_TOKENIZER, createdAt: new Date().toISOString() };
  } else {
    const vocabulary = denseVocabulary(env, documents);
    const pairs = trainingPairs(env, documents);
    const featurizer = makeFeaturizer(vocabulary, texts);
    const { encoder, losses } = await trainBiEncoder(featurizer, texts, pairs, biEncoder);
    const index = denseIndex(featurizer, encoder, biEncoder.dim, texts);
    files["vocabulary.json"] = JSON.stringify(vocabulary);
    files["encoder.f32"] = float32Bytes(encoder);
    files["embeddings.f32"] = float32Bytes(index.embeddings);
    manifest = {
      ...base,
      tokenizer: tokenizerOf(kind, vocabulary),
      createdAt: new Date().toISOString(),
      biEncoder: {
        ...biEncoder,
        firstLoss: losses[0] ?? Number.NaN,
        lastLoss: losses.at(-1) ?? Number.NaN,
        pairs: pairs.length,
      },
    };
  }
  // Written beside, then swapped in: a crash leaves the old index or none, never half of one.
  const temp = `${dir}.partial-${process.pid}`;
  await rm(temp, { recursive: true, force: true });
  await mkdir(temp, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(temp, name), content);
  await writeFile(join(temp, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
  return manifest;
}

export interface RetrievalRules {
  /** Candidates looked at per document returned (relevance order), for the diversity rule to skip some. */
  readonly candidatesPerResult: number;
  /** Diversity: skip a candidate more similar than this to one already chosen (CM3Leon: 0.9). */
  readonly maxSimilarity: number;
  /** Query dropout when retrieving for training: the share of query words dropped (CM3Leon: 0.2). */
  readonly queryDropout: number;
}

export const DEFAULT_RETRIEVAL_RULES: RetrievalRules = {
  candidatesPerResult: 4,
  maxSimilarity: 0.9,
  queryDropout: 0.2,
};

export interface RetrievedDocument {
  readonly id: string;
  readonly text: string;
  readonly score: number;
}

export interface RetrieveOptions {
  readonly k: number;
  /** Retrieving for training: apply query dropout (seeded by `seed`). */
  readonly forTraining?: boolean;
  readonly seed?: number;
}

export interface Retriever {
  readonly kind: RetrieverKind;
  readonly manifest: RetrievalIndexManifest;
  readonly documents: readonly EnvDocument[];
  /** The k most relevant documents, near-duplicates skipped; fewer when the query matches fewer. */
  readonly retrieve: (query: string, options: RetrieveOptions) => RetrievedDocument[];
  /** The same, as corpus indexes with scores. */
  readonly retrieveIndexes: (query: string, options: RetrieveOptions) => Scored[];
}

const readManifest = async (dir: string): Promise<RetrievalIndexManifest> => {
  let text: string;
  try {
    text = await readFile(join(dir, "manifest.json"), "utf8");
  } catch (error) {
    throw new RetrievalIndexError(
      `no retrieval index at ${dir} (${(error as Error).message}); build one with \`factrl retriever build CONFIG\``,
    );
  }
  const manifest = JSON.parse(text) as RetrievalIndexManifest;
  if (manifest?.format !== FORMAT)
    throw new RetrievalIndexError(`${dir} is not a retrieval index (manifest format ${String(manifest?.format)})`);
  if (manifest.version !== FORMAT_VERSION)
    throw new RetrievalIndexError(
      `${dir}: index format version ${manifest.version}, this build reads ${FORMAT_VERSION}`,
    );
  if (!(RETRIEVER_KINDS as readonly string[]).includes(manifest.kind))
    throw new RetrievalIndexError(`${dir}: unknown retriever kind ${JSON.stringify(manifest.kind)}`);
  return manifest;
};

/**
 * Opens the index in `dir` for the environment's documents. Refused, saying what differs, when it
 * was built for another world (other documents) or another tokenizer, or is not of `expectKind`.
 */
export async function openRetriever(
  dir: string,
  env: Environment,
  rules: RetrievalRules = DEFAULT_RETRIEVAL_RULES,
  expectKind?: RetrieverKind,
): Promise<Retriever> {
  const manifest = await readManifest(dir);
  if (expectKind !== undefined && manifest.kind !== expectKind)
    throw new RetrievalIndexError(`${dir} is a ${manifest.kind} index; the config asks for ${expectKind}`);
  const documents = documentsOf(env);
  const world = worldOf(env, documents);
  if (manifest.world.fingerprint !== world.fingerprint)
    throw new RetrievalIndexError(
      `${dir} was built for another world: ${manifest.world.documents} documents of "${manifest.world.description}" ` +
        `(fingerprint ${manifest.world.fingerprint}), this environment has ${world.documents} of "${world.description}" ` +
        `(fingerprint ${world.fingerprint}); rebuild it with \`factrl retriever build CONFIG\``,
    );
  const texts = documents.map((d) => d.text);
  let index: {
    candidates: (words: readonly string[], n: number) => Scored[];
    similarity: (a: number, b: number) => number;
  };
  if (manifest.kind === "bm25") {
    if (manifest.tokenizer !== RETRIEVAL_TOKENIZER)
      throw new RetrievalIndexError(
        `${dir} was built with tokenizer ${manifest.tokenizer}; this build uses ${RETRIEVAL_TOKENIZER}`,
      );
    index = loadBm25(await readFile(join(dir, "bm25.json"), "utf8"), texts);
  } else {
    const vocabulary = denseVocabulary(env, documents);
    const tokenizer = tokenizerOf("dense", vocabulary);
    if (manifest.tokenizer !== tokenizer)
      throw new RetrievalIndexError(
        `${dir} was built with tokenizer ${manifest.tokenizer}; this environment's is ${tokenizer} (another vocabulary or word rule)`,
      );
    const dim = manifest.biEncoder?.dim;
    if (dim === undefined) throw new RetrievalIndexError(`${dir}: a dense index without biEncoder settings`);
    const featurizer = makeFeaturizer(vocabulary, texts);
    const encoder = float32Of(await readFile(join(dir, "encoder.f32")));
    if (encoder.length !== vocabulary.length * dim)
      throw new RetrievalIndexError(
        `${dir}: encoder has ${encoder.length} values, expected ${vocabulary.length}×${dim}`,
      );
    index = denseIndex(featurizer, encoder, dim, texts, float32Of(await readFile(join(dir, "embeddings.f32"))));
  }
  const retrieveIndexes = (query: string, options: RetrieveOptions): Scored[] => {
    if (!Number.isInteger(options.k) || options.k < 1)
      throw new RetrievalIndexError(`k must be a positive integer, got ${options.k}`);
    const words = retrievalWords(query);
    const used = options.forTraining ? dropQueryWords(words, rules.queryDropout, options.seed ?? 0) : words;
    const candidates = index.candidates(used, options.k * rules.candidatesPerResult);
    return selectDiverse(candidates, options.k, index.similarity, rules.maxSimilarity);
  };
  return {
    kind: manifest.kind,
    manifest,
    documents,
    retrieveIndexes,
    retrieve: (query, options) =>
      retrieveIndexes(query, options).map(({ index: i, score }) => ({
        id: documents[i]!.id,
        text: documents[i]!.text,
        score,
      })),
  };
}

export interface RecallReport {
  readonly kind: RetrieverKind;
  /** Eval prompts measured (with a focus and at least one document about it), and those skipped. */
  readonly prompts: number;
  readonly skipped: number;
  /** Per k: mean recall@k of the supporting documents, and the share of prompts with at least one in the top k. */
  readonly atK: readonly { readonly k: number; readonly recall: number; readonly hit: number }[];
}

/** Recall@k on the eval split: each prompt's supporting documents are those about its focus entity. */
export function evaluateRecall(retriever: Retriever, env: Environment, ks: readonly number[]): RecallReport {
  const byAbout = documentsByAbout(retriever.documents);
  const maxK = Math.max(...ks);
  let skipped = 0;
  const sums = ks.map(() => ({ recall: 0, hit: 0 }));
  let prompts = 0;
  for (const prompt of env.eval) {
    const supporting = prompt.focus ? byAbout.get(prompt.focus.entity) : undefined;
    if (!supporting?.length) {
      skipped++;
      continue;
    }
    prompts++;
    const found = retriever.retrieveIndexes(prompt.text, { k: maxK }).map((s) => s.index);
    const set = new Set(supporting);
    ks.forEach((k, i) => {
      const { recall, hit } = recallAtK(found, set, k);
      sums[i]!.recall += recall;
      sums[i]!.hit += hit ? 1 : 0;
    });
  }
  return {
    kind: retriever.kind,
    prompts,
    skipped,
    atK: ks.map((k, i) => ({
      k,
      recall: sums[i]!.recall / Math.max(1, prompts),
      hit: sums[i]!.hit / Math.max(1, prompts),
    })),
  };
}
