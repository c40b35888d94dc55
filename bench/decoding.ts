/**
 * Guided decoding at the shipped SFT policy (models/checkpoints/quickstart): hallucination rate and
 * detail of plain sampling, CFG and CD-K (a few α, k, scale) on the evaluation sample, the expert
 * reading the top `--docs` documents the retriever returns for the prompt before the prompt, the
 * amateur the prompt alone; and the decoding cost (answer tokens per second; guided decoding steps
 * 2·B rows per forward pass). One seed, one answer per prompt.
 * Run: node bin/run-ts.mjs bench/decoding.ts [--prompts 16] [--docs 1] [--index runs/retrieval/dense] [--set key=value]…
 * Figures: docs/results.md, "Guided decoding (issue 17, part 4)".
 */
import { parseArgs } from "node:util";
import { Effect } from "effect";
import {
  type Answerer,
  createExperimentRewards,
  evaluationModules,
  experimentEnvironment,
  makeEvaluation,
} from "../actors/index.ts";
import { loadConfig } from "../configs/index.ts";
import { initialPolicy } from "../learner/index.ts";
import { type Decoding, initBackend, openRetriever, textFormatOfRecord } from "../models/index.ts";

const { values } = parseArgs({
  options: {
    prompts: { type: "string", default: "16" },
    docs: { type: "string", default: "1" },
    index: { type: "string", default: "runs/retrieval/dense" },
    // Any config override, e.g. `--set model.init=runs/ra-sft-policy` for a policy trained with evidence.
    set: { type: "string", multiple: true, default: [] },
  },
});
const promptsPerSuite = Number(values.prompts);
const docs = Number(values.docs);

/** Plain without evidence first (the SFT baseline), then every decoding with the expert reading evidence. */
const modes: (Decoding | "plain, no evidence")[] = [
  "plain, no evidence",
  { kind: "plain" },
  { kind: "cfg", scale: 1.5 },
  { kind: "cfg", scale: 3 },
  { kind: "cd-k", alpha: 0.1, k: 1 },
  { kind: "cd-k", alpha: 0.1, k: 5 },
  { kind: "cd-k", alpha: 0.5, k: 5 },
];

const main = Effect.gen(function* () {
  const config = yield* loadConfig("configs/quickstart.yaml", {
    set: [
      "experiment=decoding-bench",
      `evaluation.promptsPerSuite=${promptsPerSuite}`,
      "output.dir=/tmp/factrl-decoding-bench",
      ...values.set,
    ],
  });
  yield* Effect.promise(() => initBackend({ backend: config.model.backend, threads: config.model.threads }));
  const env = yield* experimentEnvironment(config);
  const { policy, tokenizer } = yield* Effect.promise(() => initialPolicy(config, env));
  const format = textFormatOfRecord(config.model.backbone, tokenizer, config.model.init ?? "fresh");
  const retriever = yield* Effect.promise(() => openRetriever(values.index, env));
  const rewards = yield* Effect.promise(() =>
    createExperimentRewards(config, env, undefined, evaluationModules(config.rewards.modules, env)),
  );
  const evidence = (text: string) =>
    retriever
      .retrieve(text, { k: docs })
      .map((d) => d.text)
      .join(" ");
  console.log(
    `SFT policy ${config.model.init}, ${promptsPerSuite} prompts per suite, evidence: top ${docs} of ${retriever.kind}`,
  );
  console.log("| decoding | answers | hallucination | detail | abstained | malformed | tokens/s | answer tokens |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const mode of modes) {
    const decoding: Decoding = mode === "plain, no evidence" ? { kind: "plain" } : mode;
    let tokens = 0;
    let ms = 0;
    const answerer: Answerer = async (prompts, sampling) => {
      const out = [];
      for (let at = 0; at < prompts.length; at += sampling.batch) {
        const batch = prompts.slice(at, at + sampling.batch);
        const amateur = batch.map((p) => format.promptTokens(p.text, p.picture));
        const expert =
          mode === "plain, no evidence"
            ? amateur
            : batch.map((p) => format.promptTokens(`${evidence(p.text)} ${p.text}`, p.picture));
        const result = await policy.sample(expert, {
          ...sampling,
          seed: sampling.seed + at,
          stopTokens: format.stopTokens,
          ...(decoding.kind === "plain" ? {} : { guidance: { decoding, unconditioned: amateur } }),
        });
        tokens += result.timings.generatedTokens;
        ms += result.timings.totalMs;
        for (const s of result.sequences)
          out.push({ text: format.answerText(s.tokens), truncated: s.finishReason === "length" });
      }
      return out;
    };
    const evaluation = makeEvaluation(config, env, format, rewards);
    const result = yield* Effect.promise(() => evaluation.baseline(answerer));
    const o = result.overall;
    const name = typeof mode === "string" ? mode : JSON.stringify(mode).replaceAll('"', "");
    const percent = (x: number | null) => (x === null ? "–" : `${(x * 100).toFixed(1)} %`);
    console.log(
      `| ${name} | ${o.answers} | ${percent(o.hallucinationRate)} | ${o.detail === null ? "–" : o.detail.toFixed(2)} | ` +
        `${percent(o.abstentionRate)} | ${percent(o.malformedRate)} | ${((1000 * tokens) / ms).toFixed(0)} | ${tokens} |`,
    );
  }
  // Cost at a fixed length: 16 expert prompts, 64 tokens each, no stop token, so every mode does the same steps.
  const prompts = env.eval.slice(0, 16);
  const amateur = prompts.map((p) => format.promptTokens(p.text, p.picture));
  const expert = prompts.map((p) => format.promptTokens(`${evidence(p.text)} ${p.text}`, p.picture));
  const fixed = { temperature: config.rollout.temperature, maxNewTokens: 64, seed: 1, stopTokens: [] };
  const cost: [string, number][] = [];
  for (const mode of modes.slice(1)) {
    const decoding = mode as Decoding;
    const guidance = decoding.kind === "plain" ? {} : { guidance: { decoding, unconditioned: amateur } };
    const result = yield* Effect.promise(() => policy.sample(expert, { ...fixed, ...guidance }));
    cost.push([
      JSON.stringify(mode).replaceAll('"', ""),
      (1000 * result.timings.generatedTokens) / result.timings.totalMs,
    ]);
  }
  console.log("\n| decoding (16 rows × 64 tokens) | tokens/s | vs plain |\n|---|---:|---:|");
  for (const [name, rate] of cost)
    console.log(`| ${name} | ${rate.toFixed(0)} | ${(rate / cost[0]![1]).toFixed(2)}× |`);
  yield* Effect.promise(() => rewards.close());
  policy.dispose();
});

Effect.runPromise(Effect.scoped(main)).catch((error) => {
  console.error(error);
  process.exit(1);
});
