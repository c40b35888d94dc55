/**
 * envs/: what other parts may use — the environment interface and its registry, FactWorld (world,
 * corpus, tokenizers, prompts, answers, judge), external prompt loaders, module-file loading.
 */

export {
  type BalancedPool,
  BalancedStream,
  type BalanceOptions,
  balancePool,
  balanceProbabilities,
  balanceThreshold,
  bigramModel,
  CHECK_REASONS,
  type CheckedPrompt,
  type CheckOptions,
  type CheckReason,
  CurationArgumentError,
  checkPrompt,
  checkPrompts,
  citSelect,
  documentScore,
  entryCounts,
  filterWeights,
  hardSplit,
  keepProbability,
  LINE_FILTERS,
  type LineFilter,
  limaSelect,
  lineScores,
  matchPool,
  type PromptCheck,
  type PromptCheckReport,
  type PromptPrecisions,
  perplexity,
  pruneLowest,
  type ReferenceModel,
  type SftCandidate,
  substringMatches,
  tailShare,
  thresholdForTailShare,
  wordJaccard,
  worldMetadata,
} from "./curation/index.ts";
export {
  allPrompts,
  checkEnvironment,
  type EnvDocument,
  type Environment,
  EnvironmentError,
  type EnvPrompt,
  type EnvRewardFactory,
  type Modality,
  type PromptFocus as EnvPromptFocus,
  pictureProblem,
  selectSuites,
} from "./environment.ts";
export {
  type ExternalFormat,
  type ExternalPrompt,
  loadPromptFile,
  PROMPT_FIELDS,
  PromptFileError,
  parsePromptJsonl,
} from "./external.ts";
export {
  type AnswerAnalysis,
  type AnswerFormat,
  analyzeAnswer,
  type Claim,
  ClaimVerifier,
  extractClaims,
  parseAnswer,
  type Verdict,
  type VerifiedClaim,
} from "./factworld/answers.ts";
export {
  BOILERPLATE_LINES,
  type CorpusDocument,
  type CorpusOptions,
  DEFAULT_CORPUS_OPTIONS,
  generateCorpus,
  LOW_QUALITY_KINDS,
  type LowQualityKind,
} from "./factworld/corpus.ts";
export { claimSentence, type ParsedClaim, parseSentence } from "./factworld/grammar.ts";
export {
  DEFAULT_JUDGE_MARGIN,
  type JudgeFocus,
  type JudgeOutcome,
  judgeOutcome,
  judgeRelevance,
  outcomeValue,
  type RelevanceProfile,
  type RelevanceVerdict,
  relevanceProfile,
  relevanceScore,
} from "./factworld/judge.ts";
export { type NameEchoDocument, nameEchoDocuments } from "./factworld/name-echo.ts";
export {
  aspectList,
  DEFAULT_PROMPT_OPTIONS,
  entitySplit,
  generatePrompts,
  isAnswerableAndUnambiguous,
  knownAspects,
  type Prompt,
  type PromptFocus,
  type PromptOptions,
  popularityLog,
  type Split,
  SUITES,
  type Suite,
} from "./factworld/prompts.ts";
export { createRng, hashString, type Rng } from "./factworld/random.ts";
export {
  referenceSentences,
  renderReasoning,
  renderReference,
  THINK_CLOSE,
  THINK_OPEN,
} from "./factworld/reference.ts";
export {
  ENTITY_TYPES,
  type EntityType,
  isRelation,
  RELATION_NAMES,
  RELATIONS_OF_TYPE,
  type Relation,
} from "./factworld/schema.ts";
export {
  bytesToText,
  byteTokenizer,
  createTokenizer,
  SPECIAL_WORDS,
  type TextCodec,
  textToBytes,
  tokenizerForVocabulary,
  tokenizerFromWords,
  type WordTokenizer,
  worldVocabulary,
} from "./factworld/tokenizer.ts";
export {
  type Entity,
  type Fact,
  generateWorld,
  madeUpName,
  type PopularityBucket,
  popularityBucket,
  valuesOf,
  WORLD_SIZES,
  type World,
  type WorldOptions,
  type WorldSize,
  type WorldSpec,
  worldFromSpec,
} from "./factworld/world.ts";
export { importDefaultExport, MODULE_FILE_EXTENSIONS, ModuleFileError, moduleFileProblem } from "./module-file.ts";
export {
  type EnvironmentFactory,
  type EnvSectionLike,
  environmentKinds,
  factWorld,
  factWorldVision,
  jsonlPrompts,
  makeEnvironment,
  moduleEnvironment,
  registerEnvironment,
} from "./registry.ts";

// Pictures in FactWorld (factworld-vision): looks, rendering, PNG, alt-text and captions. The attribute
// classifier (tfjs) is imported from ./vision/classifier.ts itself, so that importing envs/ loads no tfjs.
export { type AltTextOptions, BOILERPLATE, DEFAULT_ALT_TEXT_OPTIONS, generateAltText } from "./vision/alt-text.ts";
export {
  ACCESSORIES,
  ATTRIBUTES_OF_TYPE,
  BUILDINGS,
  CLOTHING_COLOURS,
  COVER_COLOURS,
  DEFAULT_PICTURE_OPTIONS,
  EYE_COLOURS,
  HAIR_COLOURS,
  isVisualAttribute,
  LOGO_COLOURS,
  LOGO_SHAPES,
  type Look,
  lookOf,
  lookValue,
  MOTIFS,
  type PictureOptions,
  type PictureRef,
  pictureCount,
  pictureRef,
  ROOF_COLOURS,
  VISUAL_ATTRIBUTE_NAMES,
  VISUAL_ATTRIBUTES,
  VISUAL_WORDS,
  type VisualAttribute,
  validateLook,
  WEATHERS,
  worldPictures,
} from "./vision/attributes.ts";
export { type CaptionRelevance, captionClaims, captionRelevance } from "./vision/caption-judge.ts";
export { CAPTION_REWARD_VERSION, captionRewardModules } from "./vision/caption-rewards.ts";
export {
  CAPTION_SUITES,
  type CaptionExample,
  type CaptionTaskOptions,
  type CaptionTruths,
  captionAnswer,
  captionEnvironment,
  captionExamples,
  captionPromptText,
  captionReasoning,
  captionTruths,
  captionVocabulary,
  DEFAULT_CAPTION_TASK,
} from "./vision/caption-task.ts";
export {
  CAPTION_GRAMMAR_WORDS,
  type CaptionAnalysis,
  type CaptionClaim,
  type CaptionSentence,
  CaptionVerifier,
  IDENTITY_SENTENCES,
  type PictureTruth,
  parseCaption,
  pictureTruth,
  sameCaptionClaim,
  trueCaption,
  type VerifiedCaptionClaim,
  VISUAL_SENTENCES,
  visualSentence,
} from "./vision/captions.ts";
export { type PictureDocument, pictureDocuments } from "./vision/picture-corpus.ts";
export {
  attributePrompts,
  entityPrompts,
  type MetadataEntry,
  type PoolPair,
  pictureMetadata,
  rawPicturePool,
  type ZeroShotPicture,
  zeroShotPictures,
} from "./vision/picture-pool.ts";
export { type ContactSheetOptions, contactSheet, decodePng, encodePng, enlarge } from "./vision/png.ts";
export { DEFAULT_REALIGN_ROUNDS, realignAltText } from "./vision/realign.ts";
export {
  DEFAULT_NUISANCE,
  type NuisanceOptions,
  PICTURE_SIZE,
  type Picture,
  renderPicture,
  validatePicture,
} from "./vision/render.ts";
