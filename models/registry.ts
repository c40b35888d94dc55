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

/**
 * A `backbone` policy that starts where `base` is. The same backbone is `base` itself; MoT starts
 * from a dense policy of the same shape with its weights in every modality's copy, so it computes
 * exactly what the dense policy does until training lets the modalities drift apart (`extra` holds
 * MoT's `untie` and `modalities`). Other pairs have no such mapping and are refused, naming `source`.
 */
export async function policyStartingFrom(
  base: Policy,
  backbone: string,
  source: string,
  extra: Readonly<Record<string, unknown>> = {},
): Promise<Policy> {
  if (base.config.backbone === backbone) return base;
  if (backbone === "mot" && base instanceof DensePolicy && isLlamaShaped(base.config)) {
    throw new Error(
      `${source} is a Llama-shaped dense policy (SwiGLU, grouped-query attention, q/k/v biases or tied embeddings): MoT has none of these, so it cannot start from it; train it as backbone dense`,
    );
  }
  if (backbone === "mot" && base instanceof DensePolicy) {
    const mot = new MotPolicy({ ...base.config, ...extra, backbone: "mot" });
    await mot.importDenseWeights(await base.exportWeights(), source);
    return mot;
  }
  throw new Error(
    `${source} holds a ${base.config.backbone} policy; a ${backbone} policy cannot start from it` +
      " (MoT can start from a dense checkpoint; BLT needs a byte-level one, e.g. models/checkpoints/quickstart-blt)",
  );
}

/** A dense config using any of the Hugging Face (Llama / Qwen2) options. */
const isLlamaShaped = (config: DenseConfig): boolean =>
  config.mlp === "swiglu" ||
  (config.nKvHeads ?? config.nHeads) !== config.nHeads ||
  config.qkvBias === true ||
  config.tieEmbeddings === true;
