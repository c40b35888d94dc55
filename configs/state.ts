/**
 * The resolved config in the experiment's KV bucket: the launcher writes it at start, so an actor
 * joining from another host needs only the NATS URL and the experiment id.
 */
import type { StateKey } from "../messaging/index.ts";
import { ExperimentConfig, type ExperimentConfigEncoded } from "./schema.ts";

export const CONFIG_KEY: StateKey<ExperimentConfig, ExperimentConfigEncoded> = {
  key: "config",
  schema: ExperimentConfig,
};
