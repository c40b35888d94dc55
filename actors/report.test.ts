import { describe, expect, it } from "vitest";
import type { FactualityMetrics } from "../rewards/index.ts";
import type { EvaluationResult } from "./evaluation.ts";
import { learnerProgressText } from "./launcher.ts";
import {
  comparisonRows,
  renderBucketTable,
  renderOutcome,
  renderReport,
  renderStudyTable,
  verdict,
  verdictNoise,
} from "./report.ts";
import { NO_LEARNER_PROGRESS } from "./topology.ts";

const metrics = (m: Partial<FactualityMetrics>): FactualityMetrics => ({
  answers: 10,
  hallucinationRate: null,
  detail: null,
  relevanceWinRate: null,
  abstentionRate: null,
  malformedRate: 0,
  meanLength: null,
  ...m,
});

const result = (version: number, bySuite: Record<string, FactualityMetrics>, reward = 0.5): EvaluationResult => ({
  version,
  overall: { ...metrics({}), reward },
  bySuite,
  byBucket: {},
  answers: [],
});

const before = result(0, {
  bio: metrics({ hallucinationRate: 0.5, detail: 4, relevanceWinRate: 0.5, abstentionRate: 0, meanLength: 40 }),
  factory: metrics({ hallucinationRate: 0.3, detail: 2, relevanceWinRate: 0.5, abstentionRate: 0.1, meanLength: 30 }),
});
const after = result(7, {
  bio: metrics({ hallucinationRate: 0.3, detail: 4.2, relevanceWinRate: 0.6, abstentionRate: 0, meanLength: 38 }),
  factory: metrics({
    hallucinationRate: 0.2,
    detail: 1.9,
    relevanceWinRate: 0.5,
    abstentionRate: null,
    meanLength: 31,
  }),
});

describe("report", () => {
  it("averages every metric over suites, skipping suites where it is undefined", () => {
    const average = comparisonRows(before, after).at(-1)!;
    expect(average.suite).toBe("average");
    expect(average.before.hallucinationRate).toBeCloseTo(0.4, 10);
    expect(average.after.hallucinationRate).toBeCloseTo(0.25, 10);
    expect(average.after.detail).toBeCloseTo(3.05, 10);
    expect(average.after.abstentionRate).toBe(0); // factory's null is skipped
    expect(average.after.answers).toBe(20);
  });

  it("judges the quick start's goals on the average", () => {
    const v = verdict(comparisonRows(before, after));
    expect(v.hallucinationDropPoints).toBeCloseTo(15, 10);
    expect(v.detailChange).toBeCloseTo((3.05 - 3) / 3, 10);
    expect(v.relevanceWinRate).toBeCloseTo(0.55, 10);
    expect(v.meetsGoals).toBe(true);
    const lessDetail = result(7, {
      bio: metrics({ ...after.bySuite.bio, detail: 3 }),
      factory: after.bySuite.factory!,
    });
    expect(verdict(comparisonRows(before, lessDetail)).meetsGoals).toBe(false); // detail −18 %
  });

  it("renders a table row per suite plus the average, and the verdict", () => {
    const text = renderReport("exp", before, after, { steps: 12, wallSeconds: 100, backbone: "mot", temperature: 0.7 });
    expect(text).toContain(
      "(mot backbone) after 12 GRPO steps, 100 s of wall time; answers sampled at temperature 0.7.",
    );
    expect(text).toContain("| bio | 50.0% | 30.0% | 4.00 | 4.20 | 60.0% | 0.0% | 0.0% | 40.0 | 38.0 |");
    expect(text).toContain("| **average** | 40.0% | 25.0% |");
    expect(text).toContain("Hallucination rate −15.0 pp, detail +1.7 %, relevance win rate 55.0%.");
    expect(text).toContain("met.");
  });

  it("gives the verdict's standard errors from the answers, and says when a goal is missed within them", () => {
    const answer = (suite: string, supported: number, relevance: number) => ({
      promptId: `${suite}:${supported}`,
      suite,
      answer: "",
      reward: 0,
      malformed: false,
      claims: 4,
      supported,
      relevance,
      length: 10,
    });
    // Per suite: precisions {1, ½} before → se ¼ each, macro √(2 · ¼²) / 2; after {1, ¾} → se ⅛ each.
    const withAnswers = (r: EvaluationResult, supported: readonly number[], relevance: readonly number[]) => ({
      ...r,
      answers: ["bio", "factory"].flatMap((suite) => supported.map((s, i) => answer(suite, s, relevance[i]!))),
    });
    const b = withAnswers(before, [4, 2], [0.5, 0.5]);
    const a = withAnswers(after, [4, 3], [1, 0]);
    const noise = verdictNoise(b, a);
    const macro = (se: number) => Math.sqrt(2 * se ** 2) / 2;
    expect(noise.hallucinationDropPoints).toBeCloseTo(100 * Math.hypot(macro(0.25), macro(0.125)), 10);
    expect(noise.relevanceWinRate).toBeCloseTo(macro(0.5), 10); // {1, 0}: se ½ per suite
    // 15 pp ± 19.8: met, and the errors are shown.
    expect(renderReport("exp", b, a, { steps: 1, wallSeconds: 1, backbone: "dense", temperature: 1 })).toContain(
      "Hallucination rate −15.0 pp (± 19.8), detail +1.7 %, relevance win rate 55.0% (± 35.4) (± one standard error",
    );
    // 5 pp less hallucination: missed, but by less than its error.
    const lessDrop = {
      ...a,
      bySuite: {
        bio: metrics({ ...after.bySuite.bio, hallucinationRate: 0.35 }),
        factory: metrics({ ...after.bySuite.factory, hallucinationRate: 0.25 }),
      },
    };
    const text = renderReport("exp", b, lessDrop, { steps: 1, wallSeconds: 1, backbone: "dense", temperature: 1 });
    expect(text).toContain("Hallucination rate −10.0 pp");
    expect(text).toContain("win rate ≥ 50 %): met.");
    const missed = {
      ...a,
      bySuite: {
        bio: metrics({ ...after.bySuite.bio, hallucinationRate: 0.45 }),
        factory: metrics({ ...after.bySuite.factory, hallucinationRate: 0.25 }),
      },
    };
    const missedText = renderReport("exp", b, missed, { steps: 1, wallSeconds: 1, backbone: "dense", temperature: 1 });
    expect(missedText).toContain("Hallucination rate −5.0 pp (± 19.8)");
    expect(missedText).toContain("not met — missed by less than one standard error, so another run may meet them.");
    // Without answers (an old evaluation file) there is nothing to estimate the noise from.
    expect(verdictNoise(before, after)).toEqual({ hallucinationDropPoints: null, relevanceWinRate: null });
  });

  it("shows a vision run's pictures with both answers, as text (tags and web-title bars escaped)", () => {
    const context = { steps: 12, wallSeconds: 100, backbone: "dense", temperature: 0.7 };
    expect(renderReport("exp", before, after, context)).not.toContain("## Pictures");
    const text = renderReport("exp", before, after, {
      ...context,
      pictures: [
        {
          file: "report-pictures/picture-3-0.png",
          promptId: "picture:3:0",
          prompt: "alt-text : stock photo | a picture of Pega Lelofe .",
          before: "<think> the picture shows a person . </think> the person has red hair .",
          after: "<think> the picture shows a person . </think> Pega Lelofe has blond hair .",
        },
      ],
    });
    expect(text).toContain(
      "| ![picture:3:0](report-pictures/picture-3-0.png) | alt-text : stock photo \\| a picture of Pega Lelofe . | " +
        "&lt;think&gt; the picture shows a person . &lt;/think&gt; the person has red hair . | " +
        "&lt;think&gt; the picture shows a person . &lt;/think&gt; Pega Lelofe has blond hair . |",
    );
  });

  it("renders the study table: the shared initial policy, then one row per reward", () => {
    const table = renderStudyTable([
      { name: "precision", before, after },
      { name: "full", before, after: result(9, before.bySuite, 0.7) },
    ]).split("\n");
    expect(table).toHaveLength(5);
    expect(table[2]).toBe("| initial (SFT) | 40.0% | 3.00 | 50.0% | 5.0% | 35.0 | 0.500 |");
    expect(table[3]).toMatch(/^\| RL: precision \| 25\.0% \| 3\.05 \| 55\.0% \|/);
    expect(table[4]).toMatch(/^\| RL: full \| 40\.0% .* 0\.700 \|$/);
  });
});

describe("the study's popularity table", () => {
  /** Answers with these precisions (supported of 4 claims) in one bucket. */
  const answers = (bucket: string, supported: readonly number[]) =>
    supported.map((s, i) => ({
      malformed: false,
      claims: 4,
      supported: s,
      length: 10,
      promptId: `${bucket}:${i}`,
      suite: "bio",
      bucket,
      answer: "",
      reward: 0,
    }));
  const withAnswers = (base: EvaluationResult, list: EvaluationResult["answers"]): EvaluationResult => ({
    ...base,
    answers: list,
  });

  it("shows hallucination per bucket ± its standard error, then each run's changes and whether the tail fell as much", () => {
    // head: precisions 1, 1, .5, .5 → 25 % ± 14.4 (sd .289 / √4); tail: 0, .5 → 75 % ± 25
    const initial = withAnswers(before, [...answers("tail", [0, 2]), ...answers("head", [4, 4, 2, 2])]);
    const headOnly = withAnswers(after, [...answers("tail", [0, 2]), ...answers("head", [4, 4, 4, 4])]);
    const tailToo = withAnswers(after, [...answers("tail", [4, 2]), ...answers("head", [4, 4, 4, 2])]);
    const table = renderBucketTable([
      { name: "uniform", before: initial, after: headOnly },
      { name: "balanced", before: initial, after: tailToo },
    ]).split("\n");
    expect(table).toEqual([
      "| policy | hallucination head | hallucination tail |",
      "|---|---:|---:|",
      "| initial (SFT) | 25.0% ± 14.4 (4) | 75.0% ± 25.0 (2) |",
      "| RL: uniform | 0.0% ± 0.0 (4) | 75.0% ± 25.0 (2) |",
      "| RL: balanced | 12.5% ± 12.5 (4) | 25.0% ± 25.0 (2) |",
      "",
      "- RL: uniform: head −25.0 pp, tail ±0.0 pp; the tail's hallucination fell less than the head's; overall goals met.",
      "- RL: balanced: head −12.5 pp, tail −50.0 pp; the tail's hallucination fell at least as much as the head's; overall goals met.",
    ]);
  });

  it("is empty when no answer has a bucket", () => {
    expect(renderBucketTable([{ name: "x", before, after }])).toBe("");
  });
});

describe("outcome", () => {
  const run = { experiment: "exp", startedAt: Date.UTC(2030, 0, 1), endedAt: Date.UTC(2030, 0, 1, 0, 2) };

  it("says a run that did not complete is incomplete, at which step, and why", () => {
    const text = renderOutcome({
      ...run,
      outcome: "failed",
      reason: 'learner-1 stopped at step 166 of 20000 without completing: drain control request from "cli"',
      learner: { step: 166, totalSteps: 20_000, done: false },
    });
    expect(text.split("\n")).toEqual([
      "# exp: failed — did not complete",
      "",
      'Why: learner-1 stopped at step 166 of 20000 without completing: drain control request from "cli"',
      "",
      "Learner: incomplete at step 166 of 20000.",
      "",
      "Ran 120 s, from 2030-01-01T00:00:00.000Z to 2030-01-01T00:02:00.000Z.",
      "",
      "The run did not complete: any report.md beside this file is not this run's final evaluation.",
      "",
    ]);
  });

  it("says a completed run completed, and a stopped one can resume", () => {
    const learner = { step: 4, totalSteps: 4, done: true };
    const completed = renderOutcome({ ...run, outcome: "completed", reason: "learner-1 reached step 4 of 4", learner });
    expect(completed).toMatch(/^# exp: completed\n/);
    expect(completed).toContain("Learner: completed, step 4 of 4.");
    expect(completed).not.toContain("did not complete");
    const stopped = renderOutcome({ ...run, outcome: "stopped", reason: "stopped by SIGINT" });
    expect(stopped).toMatch(/^# exp: stopped before completing \(run it again to resume\)\n/);
    expect(stopped).not.toContain("Learner:");
  });
});

describe("the launcher's progress line", () => {
  it("shows the learner's step against its budget, and since when it stalled when it says so", () => {
    const progress = { ...NO_LEARNER_PROGRESS, step: 3, policyVersion: 3, consumed: 6 };
    expect(learnerProgressText(undefined, 10)).toBe("");
    expect(learnerProgressText(progress, 10)).toBe(" · learner step 3/10");
    const since = new Date(2030, 0, 1, 12, 34, 56).getTime();
    expect(learnerProgressText({ ...progress, stalledSince: since } as typeof progress, 10)).toBe(
      " · learner step 3/10 · learner stalled since 12:34:56",
    );
  });
});
