/**
 * `factrl nats auth` against a real nats-server started with the config it writes (two experiments,
 * one reward service): each role connects with its own NKey from `nats.roleAuth` and can do what its
 * role declares — a real echo actor works a prompt through the runtime — while the forbidden actions
 * are refused by the server, and factrl's error (or log line) names the subject it was refused.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connect, nkeyAuthenticator, nkeys, PermissionViolationError } from "@nats-io/transport-node";
import { Deferred, Effect, Either, Fiber, Layer } from "effect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsVerification } from "../actors/index.ts";
import { ensureExperimentQueues } from "../actors/launcher.ts";
import { runActor } from "../actors/runtime.ts";
import { listActors } from "../actors/runtime-status.ts";
import {
  CURATOR_CURSOR_KEY,
  EVALUATION_DONE_KEY,
  LEARNER_PROGRESS_KEY,
  NO_LEARNER_PROGRESS,
  PROMPTS_QUEUE,
  ROLLOUTS_QUEUE,
  type RolloutGroup,
  SCORED_QUEUE,
} from "../actors/topology.ts";
import { type NatsAuthFiles, writeNatsAuth } from "../cli/nats-auth.ts";
import { roles } from "../cli/roles.ts";
import { decodeConfig, type ExperimentConfig, natsConnectionOptions } from "../configs/index.ts";
import {
  ConnectError,
  connectNats,
  consumeWork,
  Experiment,
  ExperimentLive,
  encodeEnvelope,
  ensureBlobStream,
  envelope,
  getBlob,
  getState,
  type LocalServer,
  Nats,
  NatsLive,
  POLICY_KEY,
  publishPolicy,
  publishWork,
  putState,
  RETRIEVE_REPLIES,
  RetrieveReplyMessage,
  RetrieveRequestMessage,
  requestMessage,
  retrieveSubject,
  serveControl,
  startLocalServer,
  subscribe,
  WorkOutcome,
  weightsBlobName,
} from "../messaging/index.ts";
import { HeartbeatMessage } from "../messaging/messages.ts";
import { startCli, waitFor } from "./cli-helpers.ts";
import { readLedger } from "./ledger.ts";
import { freshExperiment, samplePromptGroup, sampleRolloutGroup, sampleScoredGroup } from "./messaging/fixtures.ts";

let dir: string;
let server: LocalServer;
let files: NatsAuthFiles;
const A = freshExperiment("authA");
const B = freshExperiment("authB");
/** The experiment of the full pipeline run (its own state, untouched by the other tests). */
const C = freshExperiment("authC");
const REPO = resolve(import.meta.dirname, "..");

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "factrl-auth-test-"));
  const definitions = await Promise.all(roles.names.map(roles.load));
  files = writeNatsAuth({
    experiments: [A, B, C],
    outDir: join(dir, "auth"),
    roles: definitions.flatMap((role) => (role === undefined ? [] : [role])),
    rewardServices: ["judge"],
  });
  // The generated file carries users and permissions only: a server config includes it (nats-server
  // reads an include's path relative to the including file).
  const config = join(dir, "server.conf");
  await writeFile(
    config,
    `jetstream { store_dir: ${JSON.stringify(join(dir, "store"))} }\ninclude "auth/nats-server.conf"\n`,
  );
  server = await startLocalServer({ configFile: config, storeDir: join(dir, "store") });
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The experiment's config with its generated credentials (`nats.roleAuth`), as a user would write it. */
const configOf = (experiment: string): ExperimentConfig => {
  const seeds = files.experiments[experiment]!.seeds;
  return Either.getOrThrow(
    decodeConfig({
      experiment,
      nats: {
        url: server.url,
        roleAuth: Object.fromEntries(Object.entries(seeds).map(([k, seed]) => [k, { nkey: seed }])),
      },
      runtime: { heartbeatMs: 200, drainTimeoutMs: 5_000, restart: { baseDelayMs: 10, maxDelayMs: 50 } },
    }),
  );
};

/** A pino logger whose lines land in `lines`. */
const capturingLogger = () => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
};

/**
 * Runs `program` in experiment `on` connected as `kind` of experiment `as` (its roleAuth entry and
 * inbox), the way factrl's processes connect; returns its Either so refusals can be looked at.
 */
const runAs = <A, E>(
  as: { readonly experiment: string; readonly kind: string },
  on: string,
  program: Effect.Effect<A, E, Nats | Experiment>,
  logger = capturingLogger().logger,
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const options = yield* natsConnectionOptions(configOf(as.experiment).nats, server.url, `test-${as.kind}`, as);
      return yield* Effect.either(
        program.pipe(
          Effect.provide(
            Layer.merge(NatsLive({ ...options, logger, connectAttempts: 1 }), ExperimentLive(on, as.kind)),
          ),
        ),
      );
    }),
  );

const messageOf = (result: Either.Either<unknown, unknown>): string =>
  Either.isLeft(result) ? String((result.left as Error).message ?? result.left) : "(it succeeded)";

const weights = Uint8Array.from({ length: 2_000 }, (_, i) => i % 251);

describe("per-role permissions from factrl nats auth", () => {
  it("lets each role do what it declares: launcher, curator, learner, an echo actor, reward, evaluator, dashboard", async () => {
    const config = configOf(A);
    // The launcher creates the queues, the blob stream and the KV bucket.
    const setUp = await runAs(
      { experiment: A, kind: "launcher" },
      A,
      Effect.gen(function* () {
        yield* ensureExperimentQueues(config, roles);
        yield* ensureBlobStream;
        yield* putState(LEARNER_PROGRESS_KEY, NO_LEARNER_PROGRESS);
      }),
    );
    expect(setUp).toEqual(Either.right(undefined));

    // The learner publishes the policy (weights blob + pointer) and its progress.
    const learner = await runAs(
      { experiment: A, kind: "learner" },
      A,
      Effect.gen(function* () {
        yield* publishPolicy(1, weights);
        yield* putState(LEARNER_PROGRESS_KEY, { ...NO_LEARNER_PROGRESS, policyVersion: 1 });
      }),
    );
    expect(learner).toEqual(Either.right(undefined));

    // The curator queues a prompt group and moves its cursor.
    const curator = await runAs(
      { experiment: A, kind: "curator" },
      A,
      Effect.gen(function* () {
        yield* publishWork(PROMPTS_QUEUE, samplePromptGroup("g-auth", 2), { msgId: "g-auth" });
        yield* putState(CURATOR_CURSOR_KEY, { published: 1 });
        return (yield* getState(LEARNER_PROGRESS_KEY))?.value.policyVersion;
      }),
    );
    expect(curator).toEqual(Either.right(1));

    // A real echo actor (the actor runtime: heartbeats, status record, services protocol, control,
    // a work queue) connected with the echo key takes the group and gives a rollout group.
    const echoRole = (await roles.load("echo"))!;
    const drain = Effect.runSync(Deferred.make<string>());
    const echo = Effect.runFork(runActor({ role: echoRole, config, id: "echo-1", drain }));
    const rollout = await runAs(
      { experiment: A, kind: "reward" },
      A,
      Effect.gen(function* () {
        const taken = yield* Deferred.make<RolloutGroup>();
        const worker = yield* Effect.fork(
          consumeWork(ROLLOUTS_QUEUE, (item) => Effect.as(Deferred.succeed(taken, item.body), WorkOutcome.done)),
        );
        const group = yield* Deferred.await(taken).pipe(Effect.timeout("30 seconds"));
        yield* Fiber.interrupt(worker);
        // The reward actor gives the scored group on.
        yield* publishWork(SCORED_QUEUE, sampleScoredGroup("g-auth", 2), { msgId: "g-auth" });
        return group.group.groupId;
      }),
    );
    Effect.runSync(Deferred.succeed(drain, "test over"));
    const echoExit = await Effect.runPromise(Fiber.await(echo));
    expect(rollout).toEqual(Either.right("g-auth"));
    expect(echoExit._tag).toBe("Success");

    // The learner takes the scored group; the evaluator reads the weights and writes its end.
    const scored = await runAs(
      { experiment: A, kind: "learner" },
      A,
      Effect.gen(function* () {
        const taken = yield* Deferred.make<string>();
        const worker = yield* Effect.fork(
          consumeWork(SCORED_QUEUE, (item) =>
            Effect.as(Deferred.succeed(taken, item.body.rollout.group.groupId), WorkOutcome.done),
          ),
        );
        const id = yield* Deferred.await(taken).pipe(Effect.timeout("30 seconds"));
        yield* Fiber.interrupt(worker);
        return id;
      }),
    );
    expect(scored).toEqual(Either.right("g-auth"));
    const evaluator = await runAs(
      { experiment: A, kind: "evaluator" },
      A,
      Effect.gen(function* () {
        const pointer = (yield* getState(POLICY_KEY))?.value;
        const bytes = yield* getBlob(pointer!.weights);
        yield* putState(EVALUATION_DONE_KEY, { finalVersion: pointer!.version, report: "report.json" });
        return bytes.length;
      }),
    );
    expect(evaluator).toEqual(Either.right(weights.length));

    // The dashboard reads the pointer and hears heartbeats.
    const dashboard = await runAs(
      { experiment: A, kind: "dashboard" },
      A,
      Effect.scoped(
        Effect.gen(function* () {
          const { subjects } = yield* Experiment;
          yield* subscribe(subjects.allHeartbeats, [HeartbeatMessage]);
          return (yield* getState(POLICY_KEY))?.value.weights;
        }),
      ),
    );
    expect(dashboard).toEqual(Either.right(weightsBlobName(1)));

    // Nothing in the permitted path was refused: the server logged no violation at all so far.
    expect(
      server
        .log()
        .split("\n")
        .filter((line) => /Violation/.test(line)),
    ).toEqual([]);
  }, 90_000);

  it("runs the tiny pipeline with every role on its own key: it completes and the server refuses nothing", async () => {
    const config = join(dir, "tiny-secured.yaml");
    const roleAuth = Object.entries(files.experiments[C]!.seeds)
      .map(([kind, seed]) => `    ${kind}: { nkey: ${JSON.stringify(seed)} }`)
      .join("\n");
    await writeFile(
      config,
      `extends: ${JSON.stringify(join(REPO, "configs", "tiny.yaml"))}\nexperiment: ${C}\n` +
        `output: { dir: ${JSON.stringify(join(dir, "runs"))} }\nnats:\n  url: ${server.url}\n  roleAuth:\n${roleAuth}\n`,
    );
    const violationsBefore = server
      .log()
      .split("\n")
      .filter((line) => /Violation/.test(line)).length;
    const run = startCli(["run", config], REPO);
    // While it runs, the dashboard key finds the actors live, asking only this experiment's services.
    const live = await waitFor(
      "actors answering the dashboard",
      async () => {
        const actors = await runAs({ experiment: C, kind: "dashboard" }, C, listActors(C, 1_000, roles.names));
        const answered = Either.isRight(actors) ? actors.right.filter((actor) => actor.answered) : [];
        return answered.length >= 3 && answered;
      },
      120_000,
      500,
    ).catch((error: unknown) => {
      console.error(
        run.output().slice(-6000),
        server
          .log()
          .split("\n")
          .filter((l) => /Violation/.test(l))
          .slice(-10),
      );
      throw error;
    });
    expect(new Set(live.map((actor) => actor.role)).size).toBeGreaterThanOrEqual(2);
    const { code } = await run.exited;
    expect(code, run.output().slice(-3000)).toBe(0);
    const ledger = await runAs({ experiment: C, kind: "dashboard" }, C, readLedger);
    expect(Either.isRight(ledger) && ledger.right.progress).toMatchObject({ step: 4, done: true });
    const violations = server
      .log()
      .split("\n")
      .filter((line) => /Violation/.test(line))
      .slice(violationsBefore);
    expect(violations).toEqual([]);
  }, 300_000);

  it("lets a reward actor ask the retriever and share verdicts in the cache; a curator may do neither", async () => {
    const modules = [{ name: "evidence", weight: 1, options: {} }];
    // The launcher makes the experiment's KV bucket (as `factrl run` does before any actor starts).
    const made = await runAs({ experiment: A, kind: "launcher" }, A, putState(CURATOR_CURSOR_KEY, { published: 0 }));
    expect(Either.isRight(made)).toBe(true);
    const asReward = await runAs(
      { experiment: A, kind: "reward" },
      A,
      Effect.scoped(
        Effect.gen(function* () {
          const verification = yield* natsVerification(modules);
          yield* Effect.promise(() => verification.verdictCache.write("k1", '{"v":1,"label":"supported"}'));
          const read = yield* Effect.promise(() => verification.verdictCache.read("k1"));
          // Nobody serves retrieval in this experiment: the request is allowed, and finds no responders.
          const passages = yield* Effect.promise(() => verification.evidence!({ query: "q", k: 1, timeoutMs: 2_000 }));
          return { read, passages, timeouts: verification.counts.retrievalTimeouts };
        }),
      ),
    );
    expect(asReward).toEqual(Either.right({ read: '{"v":1,"label":"supported"}', passages: null, timeouts: 1 }));

    const asCurator = await runAs(
      { experiment: A, kind: "curator" },
      A,
      Effect.scoped(
        Effect.gen(function* () {
          const verification = yield* natsVerification(modules);
          const write = yield* Effect.either(
            Effect.tryPromise({
              try: () => verification.verdictCache.write("k2", '{"v":1,"label":"supported"}'),
              catch: (error) => error,
            }),
          );
          const ask = yield* Effect.either(
            Effect.tryPromise({
              try: () => verification.evidence!({ query: "q", k: 1, timeoutMs: 2_000 }),
              catch: (error) => error,
            }),
          );
          return { write: messageOf(write), ask: messageOf(ask) };
        }),
      ),
    );
    expect(Either.getOrThrow(asCurator).write).toContain(
      `Permissions Violation for Publish to "$KV.factrl_${A}_state.verdict.k2"`,
    );
    expect(Either.getOrThrow(asCurator).ask).toContain(`Permissions Violation for Publish to "factrl.${A}.retrieve"`);
  }, 30_000);

  it("refuses a rollout actor that writes the weights or moves the policy pointer, naming the subject", async () => {
    const rollout = { experiment: A, kind: "rollout" };
    const weightsWrite = await runAs(rollout, A, publishPolicy(7, weights));
    expect(messageOf(weightsWrite)).toMatch(
      /Permissions Violation for Publish to "factrl\.authA\S*\.blobs\.data\.policy-v7"/,
    );
    const pointer = await runAs(rollout, A, putState(POLICY_KEY, { version: 7, weights: "policy-v7", publishedAt: 1 }));
    expect(messageOf(pointer)).toContain(`Permissions Violation for Publish to "$KV.factrl_${A}_state.policy"`);
    // A rollout actor may not pose as the reward either.
    const scored = await runAs(rollout, A, publishWork(SCORED_QUEUE, sampleScoredGroup("forged", 2)));
    expect(messageOf(scored)).toContain(`Permissions Violation for Publish to "factrl.${A}.scored"`);
  }, 30_000);

  it("lets rollout actors ask their own experiment's retriever; not a role that does not ask, nor another experiment", async () => {
    const ask = Effect.gen(function* () {
      const { subjects } = yield* Experiment;
      return yield* requestMessage(
        retrieveSubject(subjects),
        RetrieveRequestMessage,
        { query: "Tell me a bio of Kofa .", k: 1 },
        RETRIEVE_REPLIES,
        3_000,
      );
    });
    const results = await runAs(
      { experiment: A, kind: "retriever" },
      A,
      Effect.gen(function* () {
        const { connection } = yield* Nats;
        const { subjects, sender } = yield* Experiment;
        // A retriever of A answering every request with one document.
        const reply = envelope(
          RetrieveReplyMessage,
          { documents: [{ id: "doc-1", text: "Kofa is a town .", score: 1 }], retriever: "bm25", index: "test" },
          { experiment: A, sender },
        );
        const served = connection.subscribe(retrieveSubject(subjects), {
          callback: (_error, msg) => void msg.respond(encodeEnvelope(reply)),
        });
        yield* Effect.promise(() => connection.flush());
        const run = (as: { experiment: string; kind: string }) => Effect.promise(() => runAs(as, A, ask));
        const rollout = yield* run({ experiment: A, kind: "rollout" });
        const evaluator = yield* run({ experiment: A, kind: "evaluator" });
        const curator = yield* run({ experiment: A, kind: "curator" });
        const outsider = yield* run({ experiment: B, kind: "rollout" });
        served.unsubscribe();
        return { rollout, evaluator, curator, outsider };
      }),
    );
    const answered = Either.getOrThrow(Either.getOrThrow(results).rollout);
    expect(answered.type).toBe("RetrieveReply");
    expect(Either.isRight(Either.getOrThrow(results).evaluator)).toBe(true);
    const { curator, outsider } = Either.getOrThrow(results);
    expect(messageOf(curator)).toContain(`Permissions Violation for Publish to "factrl.${A}.retrieve"`);
    expect(messageOf(outsider)).toContain(`Permissions Violation for Publish to "factrl.${A}.retrieve"`);
  }, 30_000);

  it("refuses scored groups from outside the experiment, and reading another experiment's subjects", async () => {
    const outsider = { experiment: B, kind: "reward" };
    const scored = await runAs(outsider, A, publishWork(SCORED_QUEUE, sampleScoredGroup("forged", 2)));
    expect(messageOf(scored)).toContain(`Permissions Violation for Publish to "factrl.${A}.scored"`);
    const rollouts = await runAs(outsider, A, publishWork(ROLLOUTS_QUEUE, sampleRolloutGroup("forged", 2)));
    expect(messageOf(rollouts)).toContain(`Permissions Violation for Publish to "factrl.${A}.rollouts"`);

    // B's dashboard reads nothing of A: not its state, not its work, not its heartbeats.
    const dashboardB = { experiment: B, kind: "dashboard" };
    const state = await runAs(dashboardB, A, getState(POLICY_KEY));
    expect(messageOf(state)).toContain(
      `Permissions Violation for Publish to "$JS.API.STREAM.INFO.KV_factrl_${A}_state"`,
    );
    const work = await runAs(
      { experiment: B, kind: "rollout" },
      A,
      consumeWork(PROMPTS_QUEUE, () => Effect.succeed(WorkOutcome.done)).pipe(Effect.timeout("3 seconds")),
    );
    expect(messageOf(work)).toContain(
      `Permissions Violation for Publish to "$JS.API.CONSUMER.INFO.factrl_${A}_prompts.prompts_workers"`,
    );
    const { logger, lines } = capturingLogger();
    await runAs(
      dashboardB,
      A,
      Effect.scoped(
        Effect.gen(function* () {
          const { subjects } = yield* Experiment;
          yield* subscribe(subjects.allHeartbeats, [HeartbeatMessage]);
          yield* Effect.sleep("200 millis");
        }),
      ),
      logger,
    );
    expect(lines.map((line) => line.msg)).toContain(
      `NATS refused permission: this user may not subscribe to "factrl.${A}.heartbeat.>" (its permissions come from \`factrl nats auth\`: docs/security.md)`,
    );
  }, 30_000);

  it("counts and logs, with its subject, a control endpoint's subscription the server refuses", async () => {
    // A rollout actor may not serve the launcher's control subject: the server refuses the subscription.
    const { logger, lines } = capturingLogger();
    const result = await runAs(
      { experiment: A, kind: "rollout" },
      A,
      Effect.scoped(
        Effect.gen(function* () {
          const { subjects } = yield* Experiment;
          const counters = yield* serveControl(subjects.control("launcher"), () =>
            Effect.succeed({ ok: true, message: "served" }),
          );
          for (let i = 0; i < 50 && counters.subscriptionErrors === 0; i++) yield* Effect.sleep("100 millis");
          return counters.subscriptionErrors;
        }),
      ),
      logger,
    );
    expect(result).toEqual(Either.right(1));
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "subscription error", subject: `factrl.${A}.control.launcher`, count: 1 }),
    );
  }, 30_000);

  it("gives a reward service its own subjects only", async () => {
    const seed = (await readFile(files.rewardServices.judge!, "utf8")).trim();
    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          // A reward service needs no JetStream: a plain connection, as serveRewardModule takes.
          const connection = yield* Effect.acquireRelease(
            Effect.promise(() =>
              connect({ servers: server.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)) }),
            ),
            (nc) => Effect.promise(() => nc.close()),
          );
          const refused: string[] = [];
          void (async () => {
            for await (const status of connection.status()) {
              if (status.type === "error" && status.error instanceof PermissionViolationError)
                refused.push(status.error.subject);
            }
          })();
          connection.subscribe("factrl.reward.judge.score", { callback: () => undefined });
          connection.subscribe("factrl.reward.other.score", { callback: () => undefined });
          connection.publish(`factrl.${A}.scored`, new Uint8Array(1));
          yield* Effect.promise(() => connection.flush());
          yield* Effect.sleep("200 millis");
          return refused;
        }),
      ).pipe(Effect.either),
    );
    // Its own score subject is allowed; another service's and the experiment's are not.
    expect(result).toEqual(Either.right(["factrl.reward.other.score", `factrl.${A}.scored`]));
  }, 30_000);

  it("refuses a key the server does not know, at connect, as a credentials error", async () => {
    const stranger = nkeys.createUser();
    const result = await Effect.runPromise(
      Effect.scoped(
        connectNats({
          servers: server.url,
          nkeySeed: new TextDecoder().decode(stranger.getSeed()),
          connectAttempts: 1,
          logger: capturingLogger().logger,
        }),
      ).pipe(Effect.either),
    );
    expect(Either.isLeft(result) && result.left).toBeInstanceOf(ConnectError);
    expect(messageOf(result)).toMatch(/^NATS server refused the credentials .*Authorization Violation/);
  }, 30_000);
});

describe("the generated config with TLS", () => {
  it("serves TLS with client verification: a role connects with its key and a client certificate, not without one", async () => {
    const tlsFile = (name: string) => join(import.meta.dirname, "messaging", "tls", name);
    const tlsDir = await mkdtemp(join(tmpdir(), "factrl-auth-tls-"));
    const experiment = freshExperiment("authT");
    const definitions = await Promise.all(roles.names.map(roles.load));
    const generated = writeNatsAuth({
      experiments: [experiment],
      outDir: join(tlsDir, "auth"),
      roles: definitions.flatMap((role) => (role === undefined ? [] : [role])),
      tls: { cert: tlsFile("server.pem"), key: tlsFile("server.key"), ca: tlsFile("ca.pem") },
    });
    const serverConfig = join(tlsDir, "server.conf");
    await writeFile(
      serverConfig,
      `jetstream { store_dir: ${JSON.stringify(join(tlsDir, "store"))} }\ninclude "auth/nats-server.conf"\n`,
    );
    const tlsServer = await startLocalServer({ configFile: serverConfig, storeDir: join(tlsDir, "store") });
    try {
      const seed = generated.experiments[experiment]!.seeds.rollout!;
      const connectAs = (tls: Record<string, string>) =>
        Effect.runPromise(
          Effect.gen(function* () {
            const config = Either.getOrThrow(
              decodeConfig({ experiment, nats: { roleAuth: { rollout: { nkey: seed } }, tls } }),
            );
            const url = `tls://127.0.0.1:${tlsServer.port}`;
            const options = yield* natsConnectionOptions(config.nats, url, "tls-test", { kind: "rollout", experiment });
            return yield* connectNats({ ...options, connectAttempts: 1, logger: capturingLogger().logger }).pipe(
              Effect.map(({ connection }) => connection.getServer()),
              Effect.scoped,
            );
          }).pipe(Effect.either),
        );
      const withCertificate = await connectAs({
        ca: tlsFile("ca.pem"),
        cert: tlsFile("client.pem"),
        key: tlsFile("client.key"),
      });
      expect(withCertificate).toEqual(Either.right(`127.0.0.1:${tlsServer.port}`));
      const withoutCertificate = await connectAs({ ca: tlsFile("ca.pem") });
      expect(Either.isLeft(withoutCertificate)).toBe(true);
    } finally {
      await tlsServer.stop();
      await rm(tlsDir, { recursive: true, force: true });
    }
  }, 60_000);
});
