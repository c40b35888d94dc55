/**
 * Base policies side by side: `factrl compare-pretrain RUN_DIR…` reads each run's report.json (what
 * `factrl pretrain` writes) and prints one table — the data each trained on, its held-out loss, how
 * many steps it took to reach the first run's final held-out loss (Sharma et al.'s "train faster"),
 * the SFT set, and the factuality report by popularity bucket.
 */
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { BasePolicyReport } from "./pretrain-pipeline.ts";

/** A report with a corpus stage to compare (one from `init: hf:DIR` with `pretrain.steps: 0` has none). */
export interface NamedReport {
  readonly name: string;
  readonly report: BasePolicyReport & { readonly pretrain: NonNullable<BasePolicyReport["pretrain"]> };
}

/** A run directory's report.json; one from before the held-out curve was recorded reads as having none. */
export function readPretrainReport(runDir: string): NamedReport {
  const file = join(runDir, "report.json");
  let report: Partial<BasePolicyReport>;
  try {
    report = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`compare-pretrain: cannot read ${file}: ${(error as Error).message}`);
  }
  const pretrain = report.pretrain;
  if (typeof pretrain?.finalEvalLoss !== "number") {
    throw new Error(
      `compare-pretrain: ${file} is not a factrl pretrain report (no pretrain.finalEvalLoss; a run from init: hf:DIR with pretrain.steps: 0 has no corpus stage)`,
    );
  }
  return {
    name: basename(runDir),
    report: { ...report, pretrain: { ...pretrain, evalLosses: pretrain.evalLosses ?? [] } } as NamedReport["report"],
  };
}

/** The first step at which the held-out loss is at or below `target`; undefined when it never gets there. */
export function stepsToLoss(
  evalLosses: readonly { readonly step: number; readonly loss: number }[],
  target: number,
): number | undefined {
  return evalLosses.find((e) => e.loss <= target)?.step;
}

const percent = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "–" : `${(100 * x).toFixed(1)} %`);

/**
 * A markdown table of the reports; the first is the reference whose final held-out loss the others
 * race to. Losses and tokens are per token of the tokenizer that read the corpus — FactWorld's words,
 * or an imported model's own (`init`) — so runs read by different tokenizers are refused, not compared.
 */
export function comparePretrainTable(runs: readonly NamedReport[]): string {
  const [reference] = runs;
  if (!reference) throw new Error("compare-pretrain: no run to compare");
  const reader = (run: NamedReport) => run.report.init ?? "FactWorld's word tokenizer";
  const other = runs.find((run) => reader(run) !== reader(reference));
  if (other) {
    throw new Error(
      `compare-pretrain: ${other.name} read the corpus with ${reader(other)}, ${reference.name} with ${reader(reference)}: held-out losses in different tokens are not comparable`,
    );
  }
  const target = reference.report.pretrain.finalEvalLoss;
  const header = [
    "run",
    "training tokens",
    "held-out loss",
    `steps to ${target.toFixed(3)}`,
    "SFT examples",
    "well-formed",
    "hallucination",
    "head",
    "torso",
    "tail",
    "supported / answer",
  ];
  const rows = runs.map(({ name, report }) => {
    const p = report.pretrain;
    const f = report.factuality;
    const reached = stepsToLoss(p.evalLosses, target);
    return [
      name,
      p.trainTokens === undefined ? "–" : p.trainTokens.toLocaleString("en-US"),
      p.finalEvalLoss.toFixed(3),
      reached === undefined ? `not in ${p.steps}` : String(reached),
      String(report.sft?.curation.selected ?? "–"),
      percent(f?.wellFormedRate),
      percent(f?.hallucinationRate),
      percent(f?.byBucket.head.hallucinationRate),
      percent(f?.byBucket.torso.hallucinationRate),
      percent(f?.byBucket.tail.hallucinationRate),
      f ? f.meanSupported.toFixed(2) : "–",
    ];
  });
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map((_, i) => (i === 0 ? "---" : "---:"))), ...rows.map(line)].join("\n");
}
