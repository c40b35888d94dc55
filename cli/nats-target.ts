/**
 * Which NATS server a command talks to, and with which credentials: `--nats URL`, else
 * FACTRL_NATS_URL, else the URL the experiment's launcher recorded under the output directory
 * (so `factrl status --experiment X` works next to a `factrl run` with an embedded server).
 * `--config FILE` supplies credentials/TLS (and a URL) for secured servers. A URL that is not one
 * (`htp:/127.0.0.1`) is a usage error naming where it came from, not an unreachable server.
 */
import { InvalidArgumentError, Option } from "commander";
import { Effect, Layer } from "effect";
// The module itself, not actors/index.ts: the index also exports the roles (tfjs and all).
import { recordedNatsUrl } from "../actors/launcher.ts";
import {
  type ExperimentConfig,
  loadConfig,
  NATS_URL_FORM,
  type NatsUser,
  natsConnectionOptions,
  natsUrlProblem,
} from "../configs/index.ts";
import {
  connectNats,
  Experiment,
  experimentSubjects,
  makeLogger,
  Nats,
  validateExperimentId,
} from "../messaging/index.ts";
import { UsageError } from "./run-main.ts";

/**
 * The `--nats <url>` option. commander refuses a value that is not a NATS URL while it parses the
 * command line (exit 2, naming the value), before anything else is looked at.
 */
export const natsOption = (description: string): Option =>
  new Option("--nats <url>", description).argParser((url: string) => {
    const problem = natsUrlProblem(url);
    if (problem !== undefined) throw new InvalidArgumentError(`expected ${NATS_URL_FORM}, found ${problem}`);
    return url;
  });

export interface NatsTargetOptions {
  readonly experiment: string;
  readonly nats?: string;
  readonly config?: string;
  readonly outputDir?: string;
}

export const resolveTarget = (options: NatsTargetOptions) =>
  Effect.gen(function* () {
    const experiment = yield* Effect.try({
      try: () => validateExperimentId(options.experiment),
      catch: (error) => new UsageError({ reason: (error as Error).message }),
    });
    const config: ExperimentConfig | undefined =
      options.config !== undefined ? yield* loadConfig(options.config) : undefined;
    const outputDir = options.outputDir ?? config?.output.dir ?? "runs";
    // The first one given, with where it came from (for a usage error).
    const [url, from] = (
      [
        [options.nats, "--nats"],
        [process.env.FACTRL_NATS_URL || undefined, "FACTRL_NATS_URL"],
        [config?.nats.url, `nats.url of ${options.config}`],
        [recordedNatsUrl(outputDir, experiment), `the URL recorded under ${outputDir}/${experiment}`],
      ] as const
    ).find(([candidate]) => candidate !== undefined) ?? [undefined, ""];
    if (url === undefined) {
      return yield* new UsageError({
        reason: `no NATS server for experiment ${experiment}: pass --nats URL (or set FACTRL_NATS_URL)`,
      });
    }
    const problem = natsUrlProblem(url);
    if (problem !== undefined) {
      return yield* new UsageError({ reason: `${from}: expected ${NATS_URL_FORM}, found ${problem}` });
    }
    return { experiment, url, config };
  });

/**
 * The Nats and Experiment services for a command (sender `cli`), connecting as `kind` (whose
 * `nats.roleAuth` entry applies: `launcher` for commands that change a run, `dashboard` for those
 * that only look, a role's name for an actor).
 */
export const commandLayer = (
  target: { readonly experiment: string; readonly url: string; readonly config: ExperimentConfig | undefined },
  name: string,
  kind: NatsUser["kind"],
) =>
  Layer.merge(
    Layer.scoped(
      Nats,
      Effect.flatMap(
        target.config !== undefined
          ? natsConnectionOptions(target.config.nats, target.url, name, { kind, experiment: target.experiment })
          : Effect.succeed({ servers: target.url.split(","), name }),
        (options) =>
          connectNats({
            ...options,
            // A command's output is its answer: connection chatter only when asked for (FACTRL_LOG_LEVEL).
            logger: makeLogger({ component: name }).child({}, { level: process.env.FACTRL_LOG_LEVEL ?? "warn" }),
            connectAttempts: 2,
          }),
      ),
    ),
    Layer.succeed(Experiment, { subjects: experimentSubjects(target.experiment), sender: "cli" }),
  );
