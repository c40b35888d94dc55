/**
 * Reward modules over NATS request/reply with msgpack bodies (docs/reward-protocol.md):
 * `serveRewardModule` hosts any RewardModule as a NATS micro-service (discoverable with
 * $SRV.PING/INFO/STATS), and `natsRewardModule` is the client the pipeline uses for `service:` terms.
 */
import { type Service, Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";
import { packWire, unpackWire } from "../messaging/index.ts";
import { type ModuleOutcome, nameOption, positiveIntOption, type RewardItem, type RewardModule } from "./module.ts";

export const REWARD_PROTOCOL_VERSION = 1;
// factrl's plain msgpack (messaging/wire.ts): no extension types, no shared structures, 64-bit ints
// as numbers, so any language's msgpack library reads and writes these bodies.

const subjectsOf = (service: string) => ({
  score: `factrl.reward.${service}.score`,
  info: `factrl.reward.${service}.info`,
});

export const rewardSubjects = (service: string) => {
  if (!/^[-\w]+$/.test(service)) throw new Error(`reward service name "${service}" must match [A-Za-z0-9_-]+`);
  return subjectsOf(service);
};

/** The subjects of every reward service: what a reward actor may send requests to. */
export const ANY_REWARD_SERVICE: readonly string[] = Object.values(subjectsOf("*"));

export interface ScoreRequest {
  readonly protocol: number;
  readonly items: readonly RewardItem[];
}
export type ScoreReply =
  | { readonly protocol: number; readonly outcomes: readonly ModuleOutcome[] }
  | { readonly protocol: number; readonly error: { readonly message: string } };
export interface InfoReply {
  readonly protocol: number;
  readonly name: string;
  readonly version: string;
}

export interface ServeOptions {
  /** Service name (subjects factrl.reward.<name>.*); default: the module's name. */
  readonly service?: string;
  /** Queue group: instances with the same one share requests. */
  readonly queue?: string;
}

/** Hosts a module; returns the micro-service (stop() to end it). Bad requests get an error reply. */
export async function serveRewardModule(
  nc: NatsConnection,
  module: RewardModule,
  options: ServeOptions = {},
): Promise<Service> {
  const service = options.service ?? module.name;
  const subjects = rewardSubjects(service);
  if (!/^\d+\.\d+\.\d+/.test(module.version))
    throw new Error(`reward service "${service}": version "${module.version}" must be semver (x.y.z) for NATS micro`);
  // @nats-io/services 3.0.0-25 bundles its own nats-core types; the connection is the same object.
  const svc = await new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({
    name: service,
    version: module.version,
    description: `factrl reward module ${module.name}`,
    metadata: { protocol: `factrl-reward/${REWARD_PROTOCOL_VERSION}` },
    queue: options.queue ?? "factrl-reward",
  });
  const info: InfoReply = { protocol: REWARD_PROTOCOL_VERSION, name: module.name, version: module.version };
  svc.addEndpoint("info", { subject: subjects.info, handler: (_err, msg) => msg.respond(packWire(info)) });
  svc.addEndpoint("score", {
    subject: subjects.score,
    handler: (_err, msg) => {
      const reply = (body: ScoreReply) => msg.respond(packWire(body));
      const fail = (message: string) => reply({ protocol: REWARD_PROTOCOL_VERSION, error: { message } });
      let request: ScoreRequest;
      try {
        request = unpackWire(msg.data) as ScoreRequest;
      } catch (error) {
        return fail(`request is not msgpack: ${(error as Error).message}`);
      }
      if (request?.protocol !== REWARD_PROTOCOL_VERSION)
        return fail(`unsupported protocol ${String(request?.protocol)}`);
      if (!Array.isArray(request.items)) return fail("request.items must be an array");
      const controller = new AbortController();
      Promise.resolve()
        .then(() => module.score(request.items, controller.signal))
        .then(
          (outcomes) => reply({ protocol: REWARD_PROTOCOL_VERSION, outcomes }),
          (error: unknown) => fail(error instanceof Error ? error.message : String(error)),
        );
    },
  });
  await nc.flush();
  return svc;
}

export interface NatsModuleOptions {
  /** Module name in the pipeline (default: the served module's name, from its info reply). */
  readonly name?: string;
  /** Longest wait for one reply; the pipeline's own timeout usually fires first. */
  readonly requestTimeoutMs?: number;
  /** Items per request (keeps messages well under NATS' 1 MiB limit). */
  readonly maxBatch?: number;
}

/** A client module for a reward service; asks its info first, so a missing service fails early and clearly. */
export async function natsRewardModule(
  nc: NatsConnection,
  service: string,
  options: Readonly<Record<string, unknown>> & NatsModuleOptions = {},
): Promise<RewardModule> {
  const subjects = rewardSubjects(service);
  const where = `reward service "${service}"`;
  const requestTimeoutMs = positiveIntOption(options, "requestTimeoutMs", 60_000, where);
  const maxBatch = positiveIntOption(options, "maxBatch", 64, where);
  const name = options.name === undefined ? undefined : nameOption(options, service, where);
  let info: InfoReply;
  try {
    const reply = await nc.request(subjects.info, packWire({ protocol: REWARD_PROTOCOL_VERSION }), {
      timeout: 5_000,
    });
    info = unpackWire(reply.data) as InfoReply;
  } catch (error) {
    throw new Error(`reward service "${service}": no answer on ${subjects.info} (${(error as Error).message})`);
  }
  if (info?.protocol !== REWARD_PROTOCOL_VERSION || typeof info.version !== "string" || typeof info.name !== "string")
    throw new Error(`reward service "${service}": unsupported info reply ${JSON.stringify(info)}`);

  const scoreChunk = async (items: readonly RewardItem[]): Promise<readonly ModuleOutcome[]> => {
    const request: ScoreRequest = { protocol: REWARD_PROTOCOL_VERSION, items };
    const msg = await nc.request(subjects.score, packWire(request), { timeout: requestTimeoutMs });
    const reply = unpackWire(msg.data) as ScoreReply;
    if ("error" in reply) throw new Error(`reward service "${service}": ${reply.error.message}`);
    return reply.outcomes;
  };
  return {
    name: name ?? info.name,
    version: info.version,
    async score(batch) {
      const chunks: RewardItem[][] = [];
      for (let i = 0; i < batch.length; i += maxBatch) chunks.push(batch.slice(i, i + maxBatch));
      return (await Promise.all(chunks.map(scoreChunk))).flat();
    },
  };
}
