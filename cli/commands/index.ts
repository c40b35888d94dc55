/**
 * The factrl commands. Adding one is a file in this folder exporting a
 * `register…(program)` function, plus one line here. Loading is lazy: `factrl actor …` loads only
 * the actor command's code (no tfjs for an echo actor, no learner for `status`).
 */
import type { Command } from "commander";

type Register = (program: Command) => void;

export const COMMANDS: Readonly<Record<string, () => Promise<Register>>> = {
  run: () => import("./run.ts").then((module) => module.registerRun),
  actor: () => import("./actor.ts").then((module) => module.registerActor),
  scale: () => import("./scale.ts").then((module) => module.registerScale),
  status: () => import("./status.ts").then((module) => module.registerStatus),
  pretrain: () => import("./pretrain.ts").then((module) => module.registerPretrain),
  "compare-pretrain": () => import("./pretrain.ts").then((module) => module.registerComparePretrain),
  "clip-study": () => import("./pretrain.ts").then((module) => module.registerClipStudy),
  study: () => import("./study.ts").then((module) => module.registerStudy),
  prompts: () => import("./prompts.ts").then((module) => module.registerPrompts),
  world: () => import("./world.ts").then((module) => module.registerWorld),
  eval: () => import("./eval.ts").then((module) => module.registerEval),
  "export-hf": () => import("./export-hf.ts").then((module) => module.registerExportHf),
  dashboard: () => import("./dashboard.ts").then((module) => module.registerDashboard),
  trace: () => import("./trace.ts").then((module) => module.registerTrace),
  nats: () => import("./nats.ts").then((module) => module.registerNats),
  retriever: () => import("./retriever.ts").then((module) => module.registerRetriever),
};
