/**
 * factrl's messaging layer: what other parts may use. See docs/messaging.md.
 */

export {
  BlobError,
  type BlobInfo,
  deleteBlob,
  getBlob,
  listBlobs,
  putBlob,
  weightsBlobName,
} from "./blobs.ts";
export {
  type AnyEnvelope,
  DecodeError,
  type DecodeFailureKind,
  decodeEnvelope,
  type Envelope,
  type EnvelopeMeta,
  encodeEnvelope,
  envelope,
  MAX_MESSAGE_BYTES,
  MessageTooLargeError,
} from "./codec.ts";
export {
  ConnectError,
  type ConnectFailureKind,
  type ConnectionOptions,
  connectNats,
  Nats,
  NatsLive,
  type NatsService,
} from "./connection.ts";
export { Experiment, ExperimentLive, type ExperimentService } from "./experiment.ts";
export {
  type LocalServer,
  LocalServerError,
  type LocalServerOptions,
  localServer,
  startLocalServer,
} from "./local-server.ts";
export {
  boundLogValue,
  createLogger,
  type FactrlLogger,
  LOG_BOUNDS,
  makeLogger,
  pinoEffectLogger,
  pinoLoggerLayer,
  rootLogger,
} from "./log.ts";
export {
  ActorState,
  Answer,
  AnswerScore,
  ControlReply,
  ControlRequest,
  Heartbeat,
  isMessageTypeName,
  MESSAGE_TYPES,
  type MessageBody,
  type MessageTypeName,
  MetricsEvent,
  PromptGroup,
  PromptPicture,
  RewardFailure,
  RolloutGroup,
  ScoredGroup,
} from "./messages.ts";
export {
  ControlRequestError,
  makePublisher,
  publishMessage,
  type ReceiveCounters,
  requestControl,
  type SubscribeOptions,
  serveControl,
  subscribe,
  type TypedSubscription,
} from "./pubsub.ts";
export {
  getState,
  listState,
  POLICY_KEY,
  PolicyPointer,
  publishPolicy,
  putState,
  RETAINED_POLICY_VERSIONS,
  type StateEntry,
  StateError,
  type StateKey,
  watchState,
} from "./state.ts";
export {
  type ExperimentSubjects,
  experimentSubjects,
  InvalidNameError,
  validateExperimentId,
  validateToken,
  WORK_QUEUES,
  type WorkQueueName,
} from "./subjects.ts";
export { packWire, unpackWire, WireFormatError } from "./wire.ts";
export {
  type ConsumeWorkOptions,
  consumeWork,
  type DeadLetteredGroups,
  type DeadLetterRecord,
  deadLetterCount,
  ensureWorkQueues,
  JetStreamError,
  newWorkCounters,
  openWorkFetcher,
  type PublishWorkOptions,
  pendingWork,
  publishWork,
  publishWorkAll,
  QUEUE_MESSAGE_TYPE,
  type QueueBody,
  readDeadLetteredGroups,
  readDeadLetters,
  type WorkCounters,
  type WorkFetcher,
  type WorkItem,
  WorkOutcome,
  type WorkQueueSettings,
  type WorkQueuesReport,
  type WorkToPublish,
} from "./work-queue.ts";
