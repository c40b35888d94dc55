/**
 * factrl's messaging layer: what other parts may use. See docs/messaging.md.
 */

export {
  BlobError,
  type BlobInfo,
  deleteBlob,
  ensureBlobStream,
  getBlob,
  listBlobs,
  putBlob,
  weightsBlobName,
} from "./blobs.ts";
export {
  DecodeError,
  type DecodeFailureKind,
  decodeEnvelope,
  defineMessage,
  type Envelope,
  type EnvelopeMeta,
  encodeEnvelope,
  envelope,
  headerBytes,
  MAX_MESSAGE_BYTES,
  type MessageBody,
  MessageTooLargeError,
  type MessageType,
  payloadRoom,
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
  type ClusterNode,
  clusterNodeConfig,
  type LocalCluster,
  type LocalClusterOptions,
  startLocalCluster,
} from "./local-cluster.ts";
export {
  type LocalServer,
  LocalServerError,
  type LocalServerOptions,
  localServer,
  serverVersion,
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
  ControlReply,
  ControlReplyMessage,
  ControlRequest,
  ControlRequestMessage,
  Heartbeat,
  HeartbeatMessage,
  MetricsEvent,
  MetricsEventMessage,
  RUNTIME_MESSAGES,
} from "./messages.ts";
export {
  dashboardPermissions,
  type ExperimentLayout,
  launcherPermissions,
  type Permissions,
  type RoleAccess,
  rewardServicePermissions,
  rolePermissions,
  type ServerTls,
  type ServerUser,
  serverAuthConfig,
} from "./permissions.ts";
export {
  ControlRequestError,
  makePublisher,
  newReceiveCounters,
  publishMessage,
  type ReceiveCounters,
  recordRejection,
  requestControl,
  requestMessage,
  type SubscribeOptions,
  serveControl,
  subscribe,
  type TypedSubscription,
} from "./pubsub.ts";
export {
  MAX_RETRIEVE_K,
  RETRIEVE_ENDPOINT,
  RETRIEVE_REPLIES,
  RetrievedPassage,
  RetrieveFailure,
  RetrieveFailureMessage,
  RetrieveReply,
  RetrieveReplyMessage,
  RetrieveRequest,
  RetrieveRequestMessage,
  retrieveSubject,
} from "./retrieval.ts";
export {
  ACTOR_STATUS_PREFIX,
  ActorStatusRecord,
  actorStatusKey,
  EXPERIMENT_OUTCOME_KEY,
  ExperimentOutcome,
} from "./runtime-state.ts";
export {
  defineStateKey,
  getState,
  listState,
  openStateBucket,
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
  RESERVED_QUEUE_NAMES,
  validateExperimentId,
  validateToken,
} from "./subjects.ts";
export { packWire, unpackWire, WireFormatError } from "./wire.ts";
export {
  type ConsumeWorkOptions,
  consumeWork,
  type DeadLetteredGroups,
  type DeadLetterRecord,
  deadLetterCount,
  defineWorkQueue,
  ensureWorkQueues,
  JetStreamError,
  newWorkCounters,
  openWorkFetcher,
  type PublishWorkOptions,
  pendingWork,
  publishWork,
  publishWorkAll,
  readDeadLetteredGroups,
  readDeadLetters,
  type WorkCounters,
  type WorkFetcher,
  type WorkItem,
  WorkOutcome,
  type WorkQueue,
  type WorkQueueSettings,
  type WorkQueuesReport,
  type WorkToPublish,
} from "./work-queue.ts";
