/** Picks the tfjs backend once per process, as the config asks, and logs the choice. */
import { Effect } from "effect";
import type { ExperimentConfig } from "../configs/index.ts";
import { type BackendInfo, initBackend } from "../models/index.ts";
import type { ActorContext } from "./runtime.ts";

let chosen: Promise<BackendInfo> | undefined;

export const useBackend = (config: ExperimentConfig, actor: Pick<ActorContext, "logger">) =>
  Effect.promise(() => {
    chosen ??= initBackend({ backend: config.model.backend, threads: config.model.threads, logger: actor.logger });
    return chosen;
  });
