/**
 * Hugging Face checkpoints in and out: a directory with `config.json`, `model.safetensors` (or shards
 * and `model.safetensors.index.json`), `tokenizer.json` and `tokenizer_config.json`, for the
 * `LlamaForCausalLM` and `Qwen2ForCausalLM` architectures (SmolLM and Mistral share Llama's).
 *
 * The model is the dense backbone with its Llama options (models/dense.ts): SwiGLU, grouped-query
 * attention, Qwen2's q/k/v biases, tied or separate output embeddings, the checkpoint's RoPE base
 * and RMSNorm epsilon. So sampling, `answerLogProbs`, GRPO, checkpoints and every actor work on it
 * unchanged. Hugging Face's linear layers store [out, in] and the dense backbone multiplies x·W with
 * W [in, out]: weights are transposed on the way in and back on the way out (exact).
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { type DenseConfig, DensePolicy } from "./dense.ts";
import {
  configTokenId,
  type HuggingFaceTokenizerRecord,
  huggingFaceTokenizer,
  isHuggingFaceTokenizerRecord,
  thinkTokenIds,
} from "./hf-text-format.ts";
import type { Policy } from "./policy.ts";
import {
  INDEX_FILE,
  type NamedFloatTensor,
  readSafetensorsDir,
  readSafetensorsDirHeaders,
  SINGLE_FILE,
  writeSafetensorsDir,
} from "./safetensors.ts";

export class HuggingFaceError extends Error {
  override readonly name = "HuggingFaceError";
}

/** Architectures this reads, and the `model_type` each writes back. */
const ARCHITECTURES = { LlamaForCausalLM: "llama", Qwen2ForCausalLM: "qwen2" } as const;
type Architecture = keyof typeof ARCHITECTURES;

export interface ImportedModel {
  readonly policy: DensePolicy;
  /** The tokenizer record a checkpoint of this policy stores (models/hf-text-format.ts). */
  readonly tokenizer: HuggingFaceTokenizerRecord;
  readonly architecture: Architecture;
}

/** The policy in a Hugging Face model directory. */
export async function loadHuggingFaceModel(dir: string): Promise<Policy> {
  return (await importHuggingFaceModel(dir)).policy;
}

/** The policy in a Hugging Face model directory, with the tokenizer record it is used through. */
export async function importHuggingFaceModel(dir: string): Promise<ImportedModel> {
  const { config, architecture, tokenizer, layout } = await checkHuggingFaceModel(dir);
  const stored = await readSafetensorsDir(dir);
  const policy = new DensePolicy(config, { randomWeights: false }); // every weight is assigned below
  try {
    const names = new Set(policy.variableNames);
    for (const { hf, variable, transpose, shape } of layout) {
      const tensor = stored.get(hf)!; // checkHuggingFaceModel found it, with this shape
      const target = policy.trainableVariables[policy.variableNames.indexOf(variable)]!;
      tf.tidy(() => {
        const values = tf.tensor(tensor.values, [...shape]);
        target.assign(transpose ? values.transpose() : values);
      });
      names.delete(variable);
    }
    if (names.size > 0) throw new Error(`no Hugging Face tensor for ${[...names].join(", ")}`); // a layout bug
  } catch (error) {
    policy.dispose();
    throw error;
  }
  return { policy, tokenizer, architecture };
}

/**
 * Everything about a Hugging Face model directory that can be wrong, found without reading a weight:
 * config.json (an architecture and options the dense backbone computes), tokenizer.json, and every
 * tensor the config implies present in the safetensors headers with the config's shape, inside a file
 * that is not cut short. Errors name the file, and the tensor where there is one. `factrl` runs it
 * before any actor starts (cli/preflight.ts); importing runs it first too.
 */
export async function checkHuggingFaceModel(dir: string) {
  const hfConfig = await readJson(join(dir, "config.json"));
  const files = {
    tokenizer: await readJson(join(dir, "tokenizer.json")),
    config: existsSync(join(dir, "tokenizer_config.json")) ? await readJson(join(dir, "tokenizer_config.json")) : {},
  };
  const { config, architecture } = denseConfigOf(hfConfig, files, join(dir, "config.json"));
  const tokenizer: HuggingFaceTokenizerRecord = { kind: "huggingface", eos: config.specialTokens.eos, ...files };
  const headers = await readSafetensorsDirHeaders(dir);
  const layout = tensorLayout(config);
  const weightsFile = existsSync(join(dir, SINGLE_FILE)) ? join(dir, SINGLE_FILE) : join(dir, INDEX_FILE);
  for (const { hf, shape } of layout) {
    const entry = headers.get(hf);
    if (!entry) throw new HuggingFaceError(`${weightsFile}: missing tensor ${hf}`);
    if (entry.shape.join(",") !== shape.join(","))
      throw new HuggingFaceError(
        `${entry.file}: tensor ${hf} has shape [${entry.shape}], config.json makes it [${shape}]`,
      );
  }
  return { config, architecture, tokenizer, layout };
}

/**
 * Writes `policy` (an imported one, or one trained from it) to `dir` in the Hugging Face layout:
 * config.json, model.safetensors (F32, exact), tokenizer.json and tokenizer_config.json.
 */
export async function exportHuggingFaceModel(policy: Policy, tokenizer: unknown, dir: string): Promise<void> {
  const config = policy.config as DenseConfig;
  if (config.backbone !== "dense" || config.mlp !== "swiglu" || config.positions !== "rope")
    throw new HuggingFaceError(
      `only a Llama-shaped dense policy (mlp: swiglu, positions: rope) has a Hugging Face layout; this one is ${config.backbone} with mlp ${config.mlp ?? "silu"}, positions ${config.positions}`,
    );
  if (!isHuggingFaceTokenizerRecord(tokenizer))
    throw new HuggingFaceError(
      `the policy's tokenizer is ${JSON.stringify((tokenizer as { kind?: unknown })?.kind)}, not a Hugging Face tokenizer: only a policy imported from Hugging Face (model.init: hf:DIR) can be exported`,
    );
  const architecture: Architecture = config.qkvBias ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
  const tensors: NamedFloatTensor[] = [];
  for (const { hf, variable, transpose } of tensorLayout(config)) {
    const v = policy.trainableVariables[policy.variableNames.indexOf(variable)]!;
    const out = transpose ? tf.tidy(() => v.transpose()) : v;
    tensors.push({ name: hf, shape: out.shape, values: (await out.data()) as Float32Array });
    if (out !== v) out.dispose();
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensorsDir(dir, tensors);
  const { specialTokens: special } = config;
  const hfConfig = {
    architectures: [architecture],
    model_type: ARCHITECTURES[architecture],
    vocab_size: config.vocabSize,
    hidden_size: config.dModel,
    intermediate_size: config.dFF,
    num_hidden_layers: config.nLayers,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads ?? config.nHeads,
    hidden_act: "silu",
    max_position_embeddings: config.maxSeqLen,
    rms_norm_eps: config.normEps ?? 1e-5,
    rope_theta: config.ropeBase ?? 10000,
    tie_word_embeddings: config.tieEmbeddings ?? false,
    bos_token_id: special.bos,
    eos_token_id: special.eos,
    ...(special.pad !== special.eos ? { pad_token_id: special.pad } : {}),
    torch_dtype: "float32",
  };
  await writeFile(join(dir, "config.json"), `${JSON.stringify(hfConfig, null, 2)}\n`);
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(tokenizer.tokenizer));
  await writeFile(join(dir, "tokenizer_config.json"), `${JSON.stringify(tokenizer.config, null, 2)}\n`);
}

/** Hugging Face tensor name ↔ dense variable name, and whether the matrix is stored transposed. */
interface TensorPlace {
  readonly hf: string;
  readonly variable: string;
  readonly transpose: boolean;
  /** Its shape as Hugging Face stores it (linear layers [out, in]). */
  readonly shape: readonly number[];
}

function tensorLayout(config: DenseConfig): TensorPlace[] {
  const { vocabSize: V, dModel: d, dFF } = config;
  const kv = (d / config.nHeads) * (config.nKvHeads ?? config.nHeads); // width of the key/value heads
  const layout: TensorPlace[] = [
    { hf: "model.embed_tokens.weight", variable: "token_embedding", transpose: false, shape: [V, d] },
  ];
  for (let i = 0; i < config.nLayers; i++) {
    const at = `model.layers.${i}`;
    const linear = (hf: string, variable: string, out: number, inp: number): TensorPlace => ({
      hf: `${at}.${hf}`,
      variable: `layer${i}/${variable}`,
      transpose: true,
      shape: [out, inp],
    });
    const vector = (hf: string, variable: string, width: number): TensorPlace => ({
      hf: `${at}.${hf}`,
      variable: `layer${i}/${variable}`,
      transpose: false,
      shape: [width],
    });
    layout.push(
      vector("input_layernorm.weight", "norm1", d),
      linear("self_attn.q_proj.weight", "wq", d, d),
      linear("self_attn.k_proj.weight", "wk", kv, d),
      linear("self_attn.v_proj.weight", "wv", kv, d),
      ...(config.qkvBias
        ? [
            vector("self_attn.q_proj.bias", "bq", d),
            vector("self_attn.k_proj.bias", "bk", kv),
            vector("self_attn.v_proj.bias", "bv", kv),
          ]
        : []),
      linear("self_attn.o_proj.weight", "wo", d, d),
      vector("post_attention_layernorm.weight", "norm2", d),
      linear("mlp.gate_proj.weight", "w1", dFF, d),
      linear("mlp.up_proj.weight", "w3", dFF, d),
      linear("mlp.down_proj.weight", "w2", d, dFF),
    );
  }
  layout.push({ hf: "model.norm.weight", variable: "final_norm", transpose: false, shape: [d] });
  if (!config.tieEmbeddings) layout.push({ hf: "lm_head.weight", variable: "output", transpose: true, shape: [V, d] });
  return layout;
}

/** The dense config of a config.json, refusing what the dense backbone does not compute (naming the field). */
function denseConfigOf(
  hf: Record<string, unknown>,
  tokenizerRecord: Pick<HuggingFaceTokenizerRecord, "tokenizer" | "config">,
  source: string,
): { config: DenseConfig; architecture: Architecture } {
  const problems: string[] = [];
  const architectures = hf.architectures;
  const architecture = Array.isArray(architectures) && architectures.length === 1 ? architectures[0] : undefined;
  if (typeof architecture !== "string" || !(architecture in ARCHITECTURES))
    problems.push(
      `architectures is ${JSON.stringify(architectures)}; supported: ${Object.keys(ARCHITECTURES)
        .map((a) => `["${a}"]`)
        .join(", ")}`,
    );
  const int = (field: string, fallback?: number): number => {
    const value = hf[field] ?? fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0)
      problems.push(`${field} must be a positive integer, got ${JSON.stringify(hf[field])}`);
    return value as number;
  };
  const num = (field: string, fallback: number): number => {
    const value = hf[field] ?? fallback;
    if (typeof value !== "number" || !(value > 0))
      problems.push(`${field} must be a number > 0, got ${JSON.stringify(hf[field])}`);
    return value as number;
  };
  const refuse = (field: string, allowed: (value: unknown) => boolean, why: string) => {
    if (!allowed(hf[field])) problems.push(`${field} = ${JSON.stringify(hf[field])} is not supported (${why})`);
  };
  const absentOr =
    (...values: unknown[]) =>
    (value: unknown) =>
      value === undefined || values.includes(value);
  refuse(
    "hidden_act",
    (v) => v === "silu" || (v === undefined && hf.hidden_activation === undefined),
    'only "silu" (SwiGLU)',
  );
  refuse(
    "rope_scaling",
    absentOr(null),
    "only plain RoPE; scaled RoPE (llama3, yarn, linear, dynamic) is not implemented",
  );
  refuse(
    "attention_bias",
    absentOr(false),
    "Llama's attention biases include o_proj's, which the dense backbone has not",
  );
  refuse("mlp_bias", absentOr(false), "the MLP has no biases");
  refuse("use_sliding_window", absentOr(false), "no sliding-window attention");
  const dModel = int("hidden_size");
  const nHeads = int("num_attention_heads");
  const nKvHeads = int("num_key_value_heads", nHeads);
  if (hf.head_dim !== undefined && hf.head_dim !== null && hf.head_dim !== dModel / nHeads)
    problems.push(
      `head_dim = ${JSON.stringify(hf.head_dim)} is not supported (it must be hidden_size / num_attention_heads = ${dModel / nHeads})`,
    );
  const vocabSize = int("vocab_size");
  const shape = {
    vocabSize,
    dModel,
    nHeads,
    nKvHeads,
    nLayers: int("num_hidden_layers"),
    dFF: int("intermediate_size"),
    maxSeqLen: int("max_position_embeddings", 2048),
    ropeBase: num("rope_theta", 10000),
    normEps: num("rms_norm_eps", 1e-6),
  };
  const tokenizer = huggingFaceTokenizer(tokenizerRecord, source.replace(/config\.json$/, "tokenizer.json"));
  const idOf = (field: string, tokenField: string): number | undefined => {
    const value = hf[field];
    const first = Array.isArray(value) ? value[0] : value;
    return typeof first === "number" ? first : configTokenId(tokenizer, tokenizerRecord.config, tokenField);
  };
  const eos = idOf("eos_token_id", "eos_token");
  if (eos === undefined) problems.push("eos_token_id is missing (and tokenizer_config.json names no eos_token)");
  if (problems.length > 0) throw new HuggingFaceError(`${source}: ${problems.join("; ")}`);
  const bos = idOf("bos_token_id", "bos_token") ?? eos!;
  const pad = idOf("pad_token_id", "pad_token") ?? eos!;
  // Plain-text markers unless the tokenizer has think tokens (hf-text-format.ts); only MoT reads these ids.
  const think = thinkTokenIds(tokenizer) ?? { open: eos!, close: eos! };
  const config: DenseConfig = {
    backbone: "dense",
    ...shape,
    positions: "rope",
    mlp: "swiglu",
    qkvBias: architecture === "Qwen2ForCausalLM",
    tieEmbeddings: hf.tie_word_embeddings === true,
    specialTokens: { pad, bos, eos: eos!, thinkOpen: think.open, thinkClose: think.close },
    initSeed: 0,
  };
  return { config, architecture: architecture as Architecture };
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new HuggingFaceError(`${path}: cannot read (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not a JSON object");
    return value as Record<string, unknown>;
  } catch (error) {
    throw new HuggingFaceError(`${path}: not a JSON object (${(error as Error).message})`);
  }
}
