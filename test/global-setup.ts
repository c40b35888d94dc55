/**
 * Starts one real nats-server (JetStream on, temporary store, free port) for the whole test run and
 * hands its URL to the tests as FACTRL_TEST_NATS_URL. Tests that need their own server (restarts,
 * auth) start one with `startLocalServer`.
 */
import type { TestProject } from "vitest/node";
import { startLocalServer } from "../messaging/local-server.ts";

export default async function setup(project: TestProject) {
  const server = await startLocalServer();
  project.provide("natsUrl", server.url);
  process.env.FACTRL_TEST_NATS_URL = server.url;
  return async () => {
    await server.stop();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    natsUrl: string;
  }
}
