/**
 * `factrl trace GROUP_ID [RUN_DIR]`: a group's whole path from the run's lineage
 * (`runs/<experiment>/lineage.jsonl`, learner/lineage.ts) — the prompt, who sampled it with which
 * policy version and how long that took, who scored it and the reward's latency, each answer's reward
 * and terms, and its fate: used in which step (trained on which version, at what lag), skipped, or
 * dropped and why. `--prompt` lists every traced group of one prompt instead.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { Console, Effect } from "effect";
import { readLineage } from "../../dashboard/index.ts";
import type { LineageRecord } from "../../learner/index.ts";
import { runMain, UsageError } from "../run-main.ts";

const FATES: Readonly<Record<string, string>> = {
  stale: "dropped: stale (sampled too many versions before the learner's newest; learner.maxPolicyLag)",
  zeroVariance: "dropped: zero variance (every answer got the same reward: no learning signal)",
  duplicates: "dropped: a redelivery of a group already used or dropped",
  invalid: "dead-lettered: invalid",
  offPolicy: "dropped: decoded by CFG or CD-K, not sampled from the policy (learner.offPolicy.mode drop)",
};

const terms = (t: Readonly<Record<string, number>>) =>
  Object.entries(t)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`)
    .join(", ");

/** One lineage record as text. */
export function formatLineage(r: LineageRecord): string {
  const fate =
    r.fate === "used"
      ? `used in learner step ${r.step} (trained on policy v${r.trainedOn}, lag ${r.policyLag})`
      : r.fate === "skipped"
        ? `in an update that was not applied (non-finite; trained on v${r.trainedOn}): counted as consumed`
        : `${FATES[r.fate] ?? r.fate}${r.reason ? `: ${r.reason}` : ""}`;
  return [
    `group ${r.groupId} · prompt ${r.promptId} (${r.suite}) · recorded ${new Date(r.time).toISOString()}`,
    `  prompt: ${r.prompt}`,
    `  sampled by policy v${r.sampledBy} on ${r.rolloutActor} in ${Math.round(r.sampleMs)} ms; ` +
      `scored by ${r.scorer} ${Math.round(r.rewardLatencyMs)} ms after sampling ended`,
    `  ${fate}`,
    ...r.answers.flatMap((a, i) => [
      `  answer ${i + 1} (${a.tokens} tokens, ${a.finishReason}): reward ${a.reward.toFixed(3)} — ${terms(a.terms)}` +
        (a.failures.length > 0 ? ` — failed: ${a.failures.join(", ")}` : ""),
      `    ${a.text}`,
    ]),
  ].join("\n");
}

export function registerTrace(program: Command): void {
  program
    .command("trace")
    .description("print a group's whole path from the run's lineage: sampled, scored, used or dropped")
    .argument("[groupId]", "the group id (as in the logs, or from lineage.jsonl)")
    .argument("[runDir]", "the run directory", "runs/quickstart")
    .option("--prompt <promptId>", "every traced group of this prompt instead")
    .action((groupId: string | undefined, runDir: string, options: { prompt?: string }) => {
      const program = Effect.gen(function* () {
        if (groupId === undefined && options.prompt === undefined)
          return yield* new UsageError({ reason: "trace: give a group id, or --prompt PROMPT_ID" });
        const file = join(runDir, "lineage.jsonl");
        if (!existsSync(file))
          return yield* new UsageError({
            reason: `${file} does not exist: is ${runDir} a run directory, and did its run record lineage (output.lineageShare > 0)?`,
          });
        const records = (yield* Effect.promise(() =>
          readLineage(runDir, (r) =>
            options.prompt !== undefined ? r.promptId === options.prompt : r.groupId === groupId,
          ),
        )) as unknown as LineageRecord[];
        if (records.length === 0)
          return yield* new UsageError({
            reason:
              `${options.prompt !== undefined ? `prompt ${options.prompt}` : `group ${groupId}`} is not in ${file}: ` +
              "never delivered to the learner, or not in the traced share (output.lineageShare)",
          });
        yield* Console.log(records.map(formatLineage).join("\n\n"));
      });
      runMain(program);
    });
}
