/**
 * The caption task (Altogether) as an environment, `factworld-vision`: one prompt per picture of the
 * world, whose text is the picture's noisy alt-text and whose picture the policy reads as image tokens;
 * the answer is `<think> … </think> caption`, scored against what the picture shows and the entity's
 * facts (caption-rewards.ts). The reference caption is the alt-text re-aligned to the picture (its
 * final round). A share of prompts has its alt-text dropped (suite `caption-no-alt`), as Altogether
 * trains the captioner to work without it too. Train and eval are split by entity, as FactWorld's
 * text prompts are (the same entities with the same seed and share).
 */
import type { Environment, EnvPrompt } from "../environment.ts";
import { entitySplit, type Split } from "../factworld/prompts.ts";
import { createRng, hashString } from "../factworld/random.ts";
import { THINK_CLOSE, THINK_OPEN } from "../factworld/reference.ts";
import { worldVocabulary } from "../factworld/tokenizer.ts";
import { popularityBucket, type World } from "../factworld/world.ts";
import { type AltTextOptions, BOILERPLATE, generateAltText } from "./alt-text.ts";
import {
  ATTRIBUTES_OF_TYPE,
  DEFAULT_PICTURE_OPTIONS,
  type PictureRef,
  VISUAL_WORDS,
  worldPictures,
} from "./attributes.ts";
import { CAPTION_GRAMMAR_WORDS, CaptionVerifier, type PictureTruth, pictureTruth } from "./captions.ts";
import { DEFAULT_REALIGN_ROUNDS, realignAltText } from "./realign.ts";
import { type Picture, renderPicture } from "./render.ts";

export interface CaptionTaskOptions {
  /** Seeds the train/eval split (by entity) and which pictures lose their alt-text. */
  readonly promptSeed: number;
  /** Share of entities whose pictures are all held out for evaluation. */
  readonly evalFraction: number;
  /** Pictures of the most popular entity; rank r has round(max / r^s), at least one (attributes.ts). */
  readonly maxPicturesPerEntity: number;
  /** The alt-text generator's rates (alt-text.ts; absent ones keep their defaults). */
  readonly altText: Partial<AltTextOptions>;
  /** Share of pictures whose alt-text is dropped from the prompt (suite `caption-no-alt`). */
  readonly dropAltText: number;
}

export const DEFAULT_CAPTION_TASK: CaptionTaskOptions = {
  promptSeed: 1,
  evalFraction: 0.2,
  maxPicturesPerEntity: DEFAULT_PICTURE_OPTIONS.maxPicturesPerEntity,
  altText: {},
  dropAltText: 0.2,
};

/** `caption`: the prompt carries the alt-text; `caption-no-alt`: it was dropped. */
export const CAPTION_SUITES = ["caption", "caption-no-alt"] as const;

/** The prompt text: the alt-text after a marker, or `none` when there is none (empty or dropped). */
export const captionPromptText = (altText: string): string =>
  `alt-text : ${altText.trim() === "" ? "none" : altText.trim()}`;

/** The reasoning every caption answer opens with: what kind of thing the picture shows. */
export const captionReasoning = (truth: PictureTruth): string =>
  `${THINK_OPEN} the picture shows ${truth.entity.type === "organisation" ? "an" : "a"} ${truth.entity.type} . ${THINK_CLOSE}`;

/** A whole answer for a caption: the reasoning, then the caption. */
export const captionAnswer = (truth: PictureTruth, caption: string): string =>
  `${captionReasoning(truth)} ${caption}`.trimEnd();

/** Words of the caption task besides the world's: prompt marker, reasoning, captions, boilerplate. */
const TASK_WORDS = [
  "alt-text",
  ":",
  "none",
  "the",
  "picture",
  "shows",
  "a",
  "an",
  "person",
  "place",
  "organisation",
  "work",
];

/** Every word the task's prompts, captions and answers use, for a word tokenizer (boilerplate file numbers excepted). */
export function captionVocabulary(world: World): string[] {
  const boilerplate = BOILERPLATE.flatMap((b) => b.split(" ")).filter((w) => !w.includes("{"));
  return [
    ...new Set([...worldVocabulary(world), ...TASK_WORDS, ...VISUAL_WORDS, ...CAPTION_GRAMMAR_WORDS, ...boilerplate]),
  ];
}

/** One picture of the task, with everything the prompt, the rewards and SFT are made from. */
export interface CaptionExample {
  readonly prompt: EnvPrompt & { readonly picture: Picture };
  readonly ref: PictureRef;
  readonly truth: PictureTruth;
  /** The picture's alt-text as generated (also when the prompt drops it). */
  readonly altText: string;
  /** The alt-text re-aligned to the picture (the last round): the prompt's reference. */
  readonly caption: string;
  readonly dropped: boolean;
}

/** Every picture of the world as a caption prompt, in picture order. Deterministic in the world and options. */
export function captionExamples(world: World, options: CaptionTaskOptions = DEFAULT_CAPTION_TASK): CaptionExample[] {
  if (!(options.dropAltText >= 0 && options.dropAltText <= 1))
    throw new Error(`caption task: dropAltText must be in [0, 1], got ${options.dropAltText}`);
  const verifier = new CaptionVerifier(world);
  // A rate a config left unset keeps the generator's default.
  const rates = Object.fromEntries(Object.entries(options.altText).filter(([, v]) => v !== undefined));
  return worldPictures(world, { maxPicturesPerEntity: options.maxPicturesPerEntity }).map((ref) => {
    const truth = pictureTruth(world, ref);
    const altText = generateAltText(world, ref, rates);
    const caption = realignAltText(verifier, truth, altText, DEFAULT_REALIGN_ROUNDS);
    const dropped = createRng(hashString(`drop-alt-text:${options.promptSeed}:${ref.id}`)).chance(options.dropAltText);
    const split: Split = entitySplit(options.promptSeed, ref.entityId, options.evalFraction);
    const prompt = {
      id: ref.id,
      text: captionPromptText(dropped ? "" : altText),
      suite: dropped ? "caption-no-alt" : "caption",
      split,
      focus: { entity: truth.entity.name, aspects: ATTRIBUTES_OF_TYPE[truth.look.type] },
      bucket: popularityBucket(truth.entity),
      reference: caption,
      picture: renderPicture(ref.look, ref.seed),
    };
    return { prompt, ref, truth, altText, caption, dropped };
  });
}

/** What the environment's reward modules need: each prompt's picture truth and reference caption. */
export type CaptionTruths = ReadonlyMap<string, Pick<CaptionExample, "truth" | "caption">>;

export const captionTruths = (examples: readonly CaptionExample[]): CaptionTruths =>
  new Map(examples.map((e) => [e.prompt.id, { truth: e.truth, caption: e.caption }]));

/** The `factworld-vision` environment over a world (its reward modules come from caption-rewards.ts). */
export function captionEnvironment(
  world: World,
  examples: readonly CaptionExample[],
  rewardModules: Environment["rewardModules"],
  description: string,
): Environment {
  return {
    kind: "factworld-vision",
    description,
    modalities: ["text", "image"],
    train: examples.filter((e) => e.prompt.split === "train").map((e) => e.prompt),
    eval: examples.filter((e) => e.prompt.split === "eval").map((e) => e.prompt),
    suites: CAPTION_SUITES,
    vocabulary: captionVocabulary(world),
    knowledge: world,
    ...(rewardModules ? { rewardModules } : {}),
  };
}
