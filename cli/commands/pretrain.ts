/**
 * `factrl pretrain CONFIG`: make the base policy (pretrain on FactWorld → SFT → factuality report),
 * or start from a Hugging Face model (`init: hf:DIR`): continued pretraining on the same corpus and SFT on the
 * world's answers, both in the model's own tokenizer.
 */
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { initBackend } from "../../models/index.ts";
import {
  CONTRASTIVE_DATA,
  type ContrastiveProgress,
  comparePretrainTable,
  contrastiveStudy,
  loadPretrainConfig,
  makeBasePolicy,
  type PipelineEvent,
  readPretrainReport,
  trainContrastive,
} from "../../pretrain/index.ts";
import { checkPaths } from "../preflight.ts";
import { runMain, UsageError } from "../run-main.ts";

const collect = (value: string, previous: string[]) => [...previous, value];

function describe(event: PipelineEvent): string | undefined {
  if (event.stage === "patching") {
    const { threshold, meanPatchLength, entropyModelBitsPerByte } = event.patching;
    return `patching: entropy threshold ${threshold.toFixed(3)} nats → mean patch ${meanPatchLength.toFixed(2)} bytes on held-out windows (entropy model ${entropyModelBitsPerByte.toFixed(3)} bits/byte)`;
  }
  if (event.stage === "evaluate") return `evaluate: answering ${event.prompts} eval-split prompts`;
  if (event.stage === "done") {
    const c = event.report.captions;
    const f = event.report.factuality;
    const rate = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "-" : `${(100 * x).toFixed(1)}%`);
    return [
      `done in ${event.report.seconds.toFixed(0)} s; policy: ${event.report.exported ?? event.report.checkpoint}`,
      ...(f
        ? [
            `hallucination rate ${rate(f.hallucinationRate)} (head ${rate(f.byBucket.head.hallucinationRate)}, torso ${rate(f.byBucket.torso.hallucinationRate)}, tail ${rate(f.byBucket.tail.hallucinationRate)}); well-formed ${rate(f.wellFormedRate)}; supported claims/answer ${f.meanSupported.toFixed(2)}; on-topic claims ${rate(f.onTopicClaimRate)}; reasoning names the entity ${rate(f.namesEntityRate)}`,
          ]
        : []),
      ...(c
        ? [
            `captions: hallucination rate ${rate(c.hallucinationRate)} (head ${rate(c.byBucket.head?.hallucinationRate)}, torso ${rate(c.byBucket.torso?.hallucinationRate)}, tail ${rate(c.byBucket.tail?.hallucinationRate)}); wrong entity ${rate(c.wrongEntityRate)}; well-formed ${rate(c.wellFormedRate)}; supported claims/caption ${c.meanSupported.toFixed(2)}`,
          ]
        : []),
    ].join("\n");
  }
  const p = event.progress;
  if (p.evalLoss === undefined && p.step % 10 !== 0) return undefined;
  const evalPart = p.evalLoss !== undefined ? ` eval ${p.evalLoss.toFixed(3)}` : "";
  const saved = p.checkpoint ? ` → ${p.checkpoint}` : "";
  return `${event.stage} ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(3)}${evalPart} lr ${p.learningRate.toExponential(2)} ${Math.round(p.tokensPerSecond)} tok/s${saved}`;
}

function describeContrastive(p: ContrastiveProgress): string | undefined {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const zeroShot = p.zeroShot
    ? ` zero-shot entity ${pct(p.zeroShot.entity.all)} (head ${pct(p.zeroShot.entity.head)}, torso ${pct(p.zeroShot.entity.torso)}, tail ${pct(p.zeroShot.entity.tail)}), attribute ${pct(p.zeroShot.attribute.all)} (tail ${pct(p.zeroShot.attribute.tail)})`
    : "";
  if (zeroShot === "" && p.step % 25 !== 0) return undefined;
  return `contrastive ${p.step} loss ${p.loss.toFixed(3)} τ ${p.temperature.toFixed(4)}${zeroShot}`;
}

export function registerPretrain(program: Command): void {
  program
    .command("pretrain")
    .description(
      "make the base policy: pretrain on the FactWorld corpus (resumable), SFT, factuality report; or start from a Hugging Face model (init: hf:DIR), in its own tokenizer",
    )
    .argument("<config>", "pretrain config (YAML), e.g. configs/pretrain.yaml")
    .option("--set <key=value>", "override a config value, e.g. --set pretrain.steps=100 (repeatable)", collect, [])
    .action((file: string, options: { set: string[] }) => {
      const program = Effect.gen(function* () {
        const config = yield* Effect.try({
          try: () => loadPretrainConfig(file, options.set),
          catch: (error) => new UsageError({ reason: (error as Error).message }),
        });
        // The directories it writes, and the model it starts from (`init: hf:DIR`, checked whole): a
        // pretraining that cannot start or save is found before its first step.
        const directory = { kind: "directory" } as const;
        yield* checkPaths(
          [
            ...(config.init !== undefined
              ? [{ field: "init", path: config.init, check: { kind: "checkpoint" } as const }]
              : []),
            { field: "output", path: config.output, check: directory },
            ...(config.export !== undefined
              ? [{ field: "export.dir", path: config.export.dir, check: directory }]
              : []),
          ],
          file,
        );
        yield* Effect.promise(() => initBackend({ backend: config.backend }));
        if (config.contrastive !== undefined) {
          yield* Effect.promise(() =>
            trainContrastive(config, (progress) => {
              const line = describeContrastive(progress);
              if (line) process.stderr.write(`${line}\n`);
            }),
          );
        } else {
          yield* Effect.promise(() =>
            makeBasePolicy(config, (event) => {
              const line = describe(event);
              if (line) process.stderr.write(`${line}\n`);
            }),
          );
        }
        yield* Console.log(`report: ${config.output}/report.json`);
      });
      runMain(program);
    });
}

export function registerClipStudy(program: Command): void {
  program
    .command("clip-study")
    .description(
      "the curation experiment: the contrastive encoder at equal steps on the raw pool, a random subset, the MetaCLIP subset and CiT; zero-shot accuracy by bucket",
    )
    .argument("<config>", "pretrain config with a contrastive section, e.g. configs/contrastive.yaml")
    .option("--set <key=value>", "override a config value (repeatable)", collect, [])
    .option("--data <list>", "data choices to run, comma-separated", CONTRASTIVE_DATA.join(","))
    .action((file: string, options: { set: string[]; data: string }) => {
      const program = Effect.gen(function* () {
        const config = yield* Effect.try({
          try: () => loadPretrainConfig(file, options.set),
          catch: (error) => new UsageError({ reason: (error as Error).message }),
        });
        const data = options.data.split(",").map((d) => d.trim());
        const unknown = data.filter((d) => !(CONTRASTIVE_DATA as readonly string[]).includes(d));
        if (config.contrastive === undefined || unknown.length > 0)
          return yield* new UsageError({
            reason:
              config.contrastive === undefined
                ? `${file}: has no contrastive section`
                : `--data: unknown ${unknown.join(", ")}; expected some of ${CONTRASTIVE_DATA.join(", ")}`,
          });
        yield* checkPaths([{ field: "output", path: config.output, check: { kind: "directory" } }], file);
        yield* Effect.promise(() => initBackend({ backend: config.backend }));
        const { table } = yield* Effect.promise(() =>
          contrastiveStudy(config, data as typeof CONTRASTIVE_DATA, (choice, progress) => {
            const line = describeContrastive(progress);
            if (line) process.stderr.write(`${choice}: ${line}\n`);
          }),
        );
        yield* Console.log(table);
      });
      runMain(program);
    });
}

export function registerComparePretrain(program: Command): void {
  program
    .command("compare-pretrain")
    .description(
      "base policies side by side: training tokens, held-out loss, steps to the first run's held-out loss, factuality by bucket",
    )
    .argument(
      "<run-dirs...>",
      "`factrl pretrain` output directories (each with report.json); the first is the reference",
    )
    .action((runDirs: string[]) => {
      const program = Effect.gen(function* () {
        const runs = yield* Effect.try({
          try: () => runDirs.map(readPretrainReport),
          catch: (error) => new UsageError({ reason: (error as Error).message }),
        });
        yield* Console.log(comparePretrainTable(runs));
      });
      runMain(program);
    });
}
