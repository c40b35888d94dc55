/**
 * The base captioner's pieces (`factrl pretrain` with a `vision` section): the caption task's word
 * tokenizer, the VQ image tokenizer learned from the pretraining pictures and saved with the policy,
 * the picture–caption documents mixed into the pretraining stream, the SFT examples of the caption
 * task (Altogether: re-aligned captions, or the raw alt-text as the baseline), and the caption report.
 *
 * A picture–caption document is `<bos> image tokens caption words <eos>` in the stream; a caption
 * prompt is `<bos> image tokens alt-text … <sep>` (models/prompt-format.ts), answered with
 * `<think> the picture shows a person . </think> caption <eos>`.
 */
import {
  type CaptionExample,
  type CaptionTaskOptions,
  CaptionVerifier,
  captionAnswer,
  captionVocabulary,
  DEFAULT_CAPTION_TASK,
  parseAnswer,
  pictureDocuments,
  renderPicture,
  tokenizerForVocabulary,
  type WordTokenizer,
  type World,
} from "../envs/index.ts";
import { encodePicture, type ImageTokenizer, mulberry32, type Policy, type TextFormat } from "../models/index.ts";

/** What makes a base policy a captioner (the pretrain config's `vision` section). */
export interface VisionPretraining {
  /** The caption task the policy is made for: the same options as the experiment's `factworld-vision` env. */
  readonly task: CaptionTaskOptions;
  /** Codes of the VQ image tokenizer (image token ids follow the words). */
  readonly codebookSize: number;
  /** Picture–caption documents mixed into the pretraining stream with the text corpus. */
  readonly pictureDocuments: number;
  /** SFT targets: the alt-text re-aligned to the picture (Altogether), or the raw alt-text (the baseline). */
  readonly captions: "realigned" | "alt-text";
}

export const DEFAULT_VISION_PRETRAINING: VisionPretraining = {
  task: DEFAULT_CAPTION_TASK,
  codebookSize: 512,
  pictureDocuments: 8000,
  captions: "realigned",
};

/** The caption task's word tokenizer: the world's words, the captions' and the prompts'. */
export const captionTokenizer = (world: World): WordTokenizer => tokenizerForVocabulary(captionVocabulary(world));

/** The picture–caption documents of a pretraining stream and the pictures they show (rendered once). */
export function picturePretrainingSet(world: World, count: number, seed: number) {
  const documents = pictureDocuments(world, count, seed);
  return { documents, pictures: documents.map((d) => renderPicture(d.look, d.seed)) };
}

/** Each document as tokens: its picture's image tokens, then its caption's words. */
export function pictureDocumentTokens(
  set: ReturnType<typeof picturePretrainingSet>,
  image: ImageTokenizer,
  tokenizer: WordTokenizer,
): Int32Array[] {
  return set.documents.map((document, i) => {
    const codes = encodePicture(image.codebook, set.pictures[i]!);
    return Int32Array.from([...Array.from(codes, (c) => c + image.offset), ...tokenizer.encode(document.caption)]);
  });
}

/** What SFT trains the captioner on: the prompt as the policy reads it, the answer it should write. */
export interface CaptionSftExample {
  readonly example: CaptionExample;
  readonly answerText: string;
  readonly promptTokens: Int32Array;
  readonly answerTokens: Int32Array;
}

/**
 * The caption task's SFT set: every training picture, its prompt (alt-text or none, as the task
 * drops it) and its target — the re-aligned caption, or the raw alt-text for the baseline. A target
 * with a word the tokenizer cannot write (a file name's number in boilerplate) or that does not fit
 * `maxSeqLen` is left out, counted by reason.
 */
export function captionSftExamples(
  examples: readonly CaptionExample[],
  format: TextFormat,
  tokenizer: WordTokenizer,
  options: { readonly captions: VisionPretraining["captions"]; readonly maxSeqLen: number },
): { examples: CaptionSftExample[]; rejected: Record<string, number> } {
  const rejected: Record<string, number> = {};
  const kept: CaptionSftExample[] = [];
  for (const example of examples) {
    if (example.prompt.split !== "train") continue;
    const target = options.captions === "realigned" ? example.caption : example.altText;
    const answerText = captionAnswer(example.truth, target);
    if (tokenizer.encode(answerText).includes(tokenizer.specialTokens.unk)) {
      rejected["unknown word"] = (rejected["unknown word"] ?? 0) + 1;
      continue;
    }
    const promptTokens = format.promptTokens(example.prompt.text, example.prompt.picture);
    const answerTokens = format.answerTokens(answerText);
    if (promptTokens.length + answerTokens.length > options.maxSeqLen) {
      rejected["longer than maxSeqLen"] = (rejected["longer than maxSeqLen"] ?? 0) + 1;
      continue;
    }
    kept.push({ example, answerText, promptTokens, answerTokens });
  }
  return { examples: kept, rejected };
}

export interface CaptionStats {
  readonly answers: number;
  readonly wellFormedRate: number;
  /** Share of well-formed answers that make no claim. */
  readonly abstentionRate: number;
  /** 1 − mean precision over well-formed captions that make claims. */
  readonly hallucinationRate: number;
  /** Share of well-formed captions that name someone the picture does not show. */
  readonly wrongEntityRate: number;
  /** Mean supported claims per well-formed caption (detail). */
  readonly meanSupported: number;
}

export interface CaptionReport extends CaptionStats {
  readonly byBucket: Readonly<Record<string, CaptionStats>>;
  readonly bySuite: Readonly<Record<string, CaptionStats>>;
  /** A few captions, for reading. */
  readonly samples: readonly { readonly prompt: string; readonly bucket: string; readonly answer: string }[];
}

interface ScoredCaption {
  readonly bucket: string;
  readonly suite: string;
  readonly wellFormed: boolean;
  readonly claims: number;
  readonly supported: number;
  readonly wrongEntity: boolean;
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

function captionStats(scored: readonly ScoredCaption[]): CaptionStats {
  const formed = scored.filter((s) => s.wellFormed);
  const claiming = formed.filter((s) => s.claims > 0);
  return {
    answers: scored.length,
    wellFormedRate: mean(scored.map((s) => (s.wellFormed ? 1 : 0))),
    abstentionRate: mean(formed.map((s) => (s.claims === 0 ? 1 : 0))),
    hallucinationRate: 1 - mean(claiming.map((s) => s.supported / s.claims)),
    wrongEntityRate: mean(formed.map((s) => (s.wrongEntity ? 1 : 0))),
    meanSupported: mean(formed.map((s) => s.supported)),
  };
}

const statsBy = (scored: readonly ScoredCaption[], key: (s: ScoredCaption) => string) =>
  Object.fromEntries([...new Set(scored.map(key))].map((k) => [k, captionStats(scored.filter((s) => key(s) === k))]));

/** Captions `examples`' pictures (batched, seeded) and checks every claim against the picture and the world. */
export async function evaluateCaptions(
  policy: Policy,
  format: TextFormat,
  world: World,
  examples: readonly CaptionExample[],
  sampling: {
    readonly temperature: number;
    readonly maxNewTokens: number;
    readonly seed: number;
    readonly batchSize: number;
  },
): Promise<CaptionReport> {
  const verifier = new CaptionVerifier(world);
  const scored: ScoredCaption[] = [];
  const samples: { prompt: string; bucket: string; answer: string }[] = [];
  for (let at = 0; at < examples.length; at += sampling.batchSize) {
    const batch = examples.slice(at, at + sampling.batchSize);
    const result = await policy.sample(
      batch.map((e) => format.promptTokens(e.prompt.text, e.prompt.picture)),
      {
        temperature: sampling.temperature,
        maxNewTokens: sampling.maxNewTokens,
        seed: sampling.seed + at,
        stopTokens: format.stopTokens,
      },
    );
    batch.forEach((example, i) => {
      const sequence = result.sequences[i]!;
      const answer = format.answerText(sequence.tokens);
      const parsed = parseAnswer(answer);
      const wellFormed = parsed.ok && sequence.finishReason === "stop";
      const analysis = verifier.analyze(example.truth, parsed.ok ? parsed.answer : "");
      const bucket = example.prompt.bucket ?? "all";
      scored.push({
        bucket,
        suite: example.prompt.suite,
        wellFormed,
        claims: analysis.supported + analysis.contradicted + analysis.unverifiable,
        supported: analysis.supported,
        wrongEntity: analysis.wrongEntity,
      });
      if (samples.length < 12) samples.push({ prompt: example.prompt.text, bucket, answer });
    });
  }
  return {
    ...captionStats(scored),
    byBucket: statsBy(scored, (s) => s.bucket),
    bySuite: statsBy(scored, (s) => s.suite),
    samples,
  };
}

/** `count` items in a seeded random order (all of them if there are fewer). */
export function seededSample<T>(items: readonly T[], count: number, seed: number): T[] {
  const random = mulberry32(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out.slice(0, count);
}
