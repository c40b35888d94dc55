/** Experiment configs: the schema (one exported schema per section) and the loader. */
export {
  ConfigError,
  decodeConfig,
  decodeConfigText,
  formatPath,
  type LoadOptions,
  loadConfig,
  renderConfig,
  runDirectory,
  writeResolvedConfig,
} from "./loader.ts";
export { embeddedServerAuthArgs, natsConnectionOptions } from "./nats.ts";
export {
  ActorCounts,
  CurationSection,
  EnvSection,
  EvaluationSection,
  ExperimentConfig,
  type ExperimentConfigEncoded,
  ExperimentId,
  FactWorldEnv,
  JsonlEnv,
  LearnerSection,
  LossAggregation,
  ModelSection,
  NatsAuth,
  NatsSection,
  NatsTls,
  OutputSection,
  RestartPolicy,
  RewardModuleRef,
  RewardsSection,
  ROLE_NAMES,
  type RoleName,
  RolloutSection,
  RuntimeSection,
} from "./schema.ts";
export { CONFIG_KEY } from "./state.ts";
