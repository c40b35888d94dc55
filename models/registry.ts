/** Backbones by name: adding one is one file plus one line here. */
import { type BltConfig, BltPolicy } from "./blt/index.ts";
import { type DenseConfig, DensePolicy } from "./dense.ts";
import { type MotConfig, MotPolicy } from "./mot/index.ts";
import type { Policy, PolicyConfigBase } from "./policy.ts";

const BACKBONES: Record<string, (config: PolicyConfigBase) => Policy> = {
  dense: (config) => new DensePolicy(config as DenseConfig),
  blt: (config) => new BltPolicy(config as BltConfig),
  mot: (config) => new MotPolicy(config as MotConfig),
};

/** Builds the policy a config names (`config.backbone`), with fresh weights from `config.initSeed`. */
export function buildPolicy(config: PolicyConfigBase): Policy {
  const build = BACKBONES[config.backbone];
  if (!build) {
    throw new Error(`unknown backbone "${config.backbone}"; known: ${Object.keys(BACKBONES).join(", ")}`);
  }
  return build(config);
}
