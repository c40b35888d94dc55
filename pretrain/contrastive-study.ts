/**
 * The curation experiment (`factrl clip-study CONFIG`): the same contrastive encoder, the same steps
 * and batch, trained on each data choice — the raw pool, a random subset the size of the
 * MetaCLIP-curated one, the MetaCLIP subset, CiT — each into `output/<data>`, and one table of
 * zero-shot accuracy by popularity bucket, steps and seconds to the target accuracy, and how much of
 * the pool each run drew from.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type ContrastiveData,
  type ContrastiveProgress,
  type ContrastiveReport,
  trainContrastive,
} from "./contrastive.ts";
import type { PretrainConfig } from "./pretrain-config.ts";

export const CONTRASTIVE_DATA: readonly ContrastiveData[] = ["raw", "random", "metaclip", "cit"];

const DATA_NAMES: Record<ContrastiveData, string> = {
  raw: "(a) raw pool",
  random: "(b) random subset",
  metaclip: "(c) MetaCLIP-curated",
  cit: "(d) CiT",
};

const percent = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "–" : `${(100 * x).toFixed(1)}`);

/** The study's table (Markdown): one row per run, in the order given. */
export function contrastiveStudyTable(reports: readonly ContrastiveReport[]): string {
  const target = reports.find((r) => r.target !== undefined)?.target?.accuracy;
  const header = [
    "data",
    "pairs drawn from",
    "head / torso / tail share of them %",
    "entity top-1 % (all / head / torso / tail)",
    "attribute top-1 % (all / tail)",
    ...(target !== undefined ? [`steps to entity ${percent(target)} %`, "train s to it"] : []),
    "train s",
  ];
  const rows = reports.map((r) => {
    const e = r.final.entity;
    const a = r.final.attribute;
    const drawn =
      r.pool.keptShare !== undefined
        ? `${r.pool.trainingPairs} (${percent(r.pool.keptShare)} % of the pool kept, ${percent(r.pool.scannedShare)} % scanned)`
        : `${r.pool.trainingPairs}`;
    return [
      DATA_NAMES[r.data],
      drawn,
      `${percent(r.pool.buckets.head)} / ${percent(r.pool.buckets.torso)} / ${percent(r.pool.buckets.tail)}`,
      `${percent(e.all)} / ${percent(e.head)} / ${percent(e.torso)} / ${percent(e.tail)}`,
      `${percent(a.all)} / ${percent(a.tail)}`,
      ...(target !== undefined
        ? [r.target?.step === undefined ? "not reached" : String(r.target.step), r.target?.seconds?.toFixed(1) ?? "–"]
        : []),
      r.trainSeconds.toFixed(1),
    ];
  });
  return [header, header.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

/** Runs every data choice in `data` with `config`'s settings, each into `output/<data>`; writes `output/study.md`. */
export async function contrastiveStudy(
  config: PretrainConfig,
  data: readonly ContrastiveData[],
  onProgress: (data: ContrastiveData, progress: ContrastiveProgress) => void = () => {},
): Promise<{ readonly reports: ContrastiveReport[]; readonly table: string }> {
  if (config.contrastive === undefined) throw new Error("clip-study: the config has no contrastive section");
  const reports: ContrastiveReport[] = [];
  for (const choice of data) {
    const run = {
      ...config,
      output: join(config.output, choice),
      contrastive: { ...config.contrastive, data: choice },
    };
    reports.push(await trainContrastive(run, (p) => onProgress(choice, p)));
  }
  const table = contrastiveStudyTable(reports);
  await mkdir(config.output, { recursive: true });
  await writeFile(join(config.output, "study.md"), `${table}\n`);
  return { reports, table };
}
