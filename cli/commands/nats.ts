/**
 * `factrl nats auth`: per-role NKeys and permissions for a secured server (docs/security.md).
 * `factrl nats cluster`: a local 3-node JetStream cluster, for tests and trials (docs/operations.md).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { Console, Effect } from "effect";
import { LocalServerError, type ServerTls, startLocalCluster } from "../../messaging/index.ts";
import { writeNatsAuth } from "../nats-auth.ts";
import { roles } from "../roles.ts";
import { runMain, UsageError } from "../run-main.ts";

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

const positiveInt = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError(`expected a whole number ≥ 1, found ${value}`);
  return Number(value);
};

interface AuthOptions {
  experiment: string[];
  out: string;
  rewardService?: string[];
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

interface ClusterOptions {
  nodes: number;
  dir: string;
  syncInterval?: string;
  include?: string[];
}

export function registerNats(program: Command): void {
  const nats = program.command("nats").description("set up NATS for factrl: per-role credentials, a local cluster");
  // Usage mistakes in a subcommand reach main.ts as CommanderErrors (exit 2), like the top-level ones.
  nats
    .command("auth")
    .exitOverride()
    .description("write an NKey per role and the nats-server config giving each only what its role declares")
    .requiredOption("--experiment <id>", "experiment id (repeat for several on one server)", collect)
    .option("--out <dir>", "where to write the server config, the keys and the config snippets", "nats-auth")
    .option("--reward-service <name>", "a reward service to make a user for (repeatable)", collect)
    .option("--tls-cert <file>", "the server's TLS certificate (PEM)")
    .option("--tls-key <file>", "the server's TLS key (PEM)")
    .option(
      "--tls-ca <file>",
      "CA certificate: clients verify the server with it, the server verifies client certificates",
    )
    .action((options: AuthOptions) => {
      const run = Effect.gen(function* () {
        if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
          return yield* new UsageError({ reason: "--tls-cert and --tls-key go together" });
        }
        // The server and the clients read these from elsewhere: absolute paths, checked now.
        const tlsFile = (option: string, path: string | undefined) =>
          path === undefined
            ? Effect.succeed(undefined)
            : existsSync(path)
              ? Effect.succeed(resolve(path))
              : new UsageError({ reason: `${option}: no such file ${resolve(path)}` });
        const cert = yield* tlsFile("--tls-cert", options.tlsCert);
        const key = yield* tlsFile("--tls-key", options.tlsKey);
        const ca = yield* tlsFile("--tls-ca", options.tlsCa);
        const tls: ServerTls | undefined =
          cert !== undefined && key !== undefined ? { cert, key, ...(ca !== undefined ? { ca } : {}) } : undefined;
        const definitions = yield* Effect.promise(() => Promise.all(roles.names.map(roles.load)));
        const files = yield* Effect.try({
          try: () =>
            writeNatsAuth({
              experiments: options.experiment,
              outDir: options.out,
              roles: definitions.flatMap((role) => (role === undefined ? [] : [role])),
              rewardServices: options.rewardService ?? [],
              ...(tls !== undefined ? { tls } : {}),
            }),
          catch: (error) => new UsageError({ reason: error instanceof Error ? error.message : String(error) }),
        });
        yield* Console.log(
          `server config: ${files.serverConfig}  (nats-server -c ${files.serverConfig} -js -sd STORE)`,
        );
        for (const [experiment, { snippet }] of Object.entries(files.experiments)) {
          yield* Console.log(`experiment ${experiment}: merge ${snippet} into its config's nats: section`);
        }
        for (const [service, seed] of Object.entries(files.rewardServices)) {
          yield* Console.log(`reward service ${service}: connect with the nkey in ${seed}`);
        }
      });
      runMain(run);
    });
  nats
    .command("cluster")
    .exitOverride()
    .description("write the configs of a local JetStream cluster under DIR and run it until Ctrl-C")
    .requiredOption("--dir <dir>", "where each node's config and store go")
    .option("--nodes <n>", "how many nodes", positiveInt, 3)
    .option(
      "--sync-interval <interval>",
      "JetStream fsync interval: always, or a duration like 1s (nats-server ≥ 2.10)",
    )
    .option(
      "--include <file>",
      "a nats-server config every node includes, e.g. factrl nats auth's (repeatable)",
      collect,
    )
    .action((options: ClusterOptions) => {
      const run = Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            startLocalCluster({
              nodes: options.nodes,
              dir: options.dir,
              ...(options.syncInterval !== undefined ? { syncInterval: options.syncInterval } : {}),
              include: options.include ?? [],
            }),
          catch: (error) =>
            error instanceof LocalServerError ? error : new LocalServerError({ reason: String(error) }),
        }),
        (cluster) => Effect.promise(() => cluster.stop()),
      ).pipe(
        Effect.tap((cluster) =>
          Console.log(
            [
              `${cluster.nodes.length} nodes up (sync_interval: ${cluster.syncInterval ?? "the server's default, 2 min"})`,
              ...cluster.nodes.map((node) => `  ${node.name}  ${node.url}  ${node.configFile}`),
              `config:  nats: { url: "${cluster.url}", replicas: ${cluster.nodes.length >= 3 ? 3 : 1} }`,
              "Ctrl-C stops the nodes (their stores stay).",
            ].join("\n"),
          ),
        ),
        Effect.zipRight(Effect.never),
        Effect.scoped,
      );
      runMain(run);
    });
}
