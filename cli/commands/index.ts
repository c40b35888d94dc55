/**
 * The factrl commands. Adding one (`pretrain`, `eval`…) is a file in this folder exporting a
 * `register…(program)` function, plus one line here.
 */
import type { Command } from "commander";
import { registerActor } from "./actor.ts";
import { registerPretrain } from "./pretrain.ts";
import { registerRun } from "./run.ts";
import { registerScale } from "./scale.ts";
import { registerStatus } from "./status.ts";

export const COMMANDS: readonly ((program: Command) => void)[] = [
  registerRun,
  registerActor,
  registerScale,
  registerStatus,
  registerPretrain,
];
