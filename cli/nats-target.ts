/**
 * Which NATS server a command talks to, and with which credentials: `--nats URL`, else
 * FACTRL_NATS_URL, else the URL the experiment's launcher recorded under the output directory
 * (so `factrl status --experiment X` works next to a `factrl run` with an embedded server).
 * `--config FILE` supplies credentials/TLS (and a URL) for secured servers.
 */
import { Effect, Layer } from "effect";
// The module itself, not actors/index.ts: the index also exports the roles (tfjs and all).
import { recordedNatsUrl } from "../actors/launcher.ts";
import { type ExperimentConfig, loadConfig, natsConnectionOptions } from "../configs/index.ts";
import {
  connectNats,
  Experiment,
  experimentSubjects,
  makeLogger,
  Nats,
  validateExperimentId,
} from "../messaging/index.ts";
import { UsageError } from "./run-main.ts";

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
    const url =
      options.nats ??
      (process.env.FACTRL_NATS_URL || undefined) ??
      config?.nats.url ??
      recordedNatsUrl(options.outputDir ?? config?.output.dir ?? "runs", experiment);
    if (url === undefined) {
      return yield* new UsageError({
        reason: `no NATS server for experiment ${experiment}: pass --nats URL (or set FACTRL_NATS_URL)`,
      });
    }
    return { experiment, url, config };
  });

/** The Nats and Experiment services for a command (sender `cli`). */
export const commandLayer = (
  target: { readonly experiment: string; readonly url: string; readonly config: ExperimentConfig | undefined },
  name: string,
) =>
  Layer.merge(
    Layer.scoped(
      Nats,
      Effect.flatMap(
        target.config !== undefined
          ? natsConnectionOptions(target.config.nats, target.url, name)
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
