/**
 * FACTORY's hard split for a policy (`factrl prompts hard`): the policy answers every evaluation prompt
 * `selectionSamples` times, the knowledge base verifies each answer's claims, and the `share` of
 * prompts with the least precise answers is the hard split (envs/curation hardSplit). Then the policy
 * answers every prompt again with another seed, and those answers — which the selection never saw, so
 * the gap is not the selection's own luck — measure its unsupported-claim rate on the hard split
 * against each suite's other prompts. FACTORY reports about 40 % unsupported on its hard split vs
 * about 10 % elsewhere for strong models.
 */
import { analyzeAnswer, ClaimVerifier, type EnvPrompt, hardSplit, type World } from "../envs/index.ts";
import type { Policy, TextFormat } from "../models/index.ts";
import { meanEstimate } from "../rewards/index.ts";
import { answerPrompts, type EvaluationSampling } from "./evaluation.ts";

export interface HardSplitOptions {
  /** Share of the prompts kept as hard. */
  readonly share: number;
  /** Answers per prompt that rank the prompts. */
  readonly selectionSamples: number;
  /** Sampling; `seed` seeds the selection, `seed + 1_000_003` the measurement. */
  readonly sampling: EvaluationSampling;
}

export interface HardSplitRow {
  /** `hard`, `rest (all suites)`, or `rest: <suite>`. */
  readonly split: string;
  readonly prompts: number;
  /** Well-formed, finished answers that made a claim. */
  readonly answers: number;
  /** 1 − mean claim precision over those answers (the hallucination rate), and its standard error. */
  readonly unsupported: number | null;
  readonly se: number | null;
}

export interface HardSplitResult {
  readonly hard: readonly EnvPrompt[];
  readonly rows: readonly HardSplitRow[];
}

/** Seeds of the measuring answers: far from the selection's, so no prompt's answers are shared. */
const MEASURE_SEED_OFFSET = 1_000_003;

/** Claim precision of each answer that is well-formed, finished and makes a claim (undefined otherwise). */
const precisionsOf = (verifier: ClaimVerifier, answers: readonly { text: string; truncated: boolean }[]) =>
  answers.map((a) => {
    if (a.truncated) return undefined;
    const { format, supported, contradicted, unverifiable } = analyzeAnswer(verifier, a.text);
    const claims = supported + contradicted + unverifiable;
    return format.ok && claims > 0 ? supported / claims : undefined;
  });

function row(split: string, prompts: number, precisions: readonly (number | undefined)[]): HardSplitRow {
  const estimate = meanEstimate(precisions.filter((p): p is number => p !== undefined));
  if (estimate === null) return { split, prompts, answers: 0, unsupported: null, se: null };
  return { split, prompts, answers: estimate.n, unsupported: 1 - estimate.mean, se: estimate.se };
}

export async function findHardSplit(
  policy: Policy,
  format: TextFormat,
  world: World,
  prompts: readonly EnvPrompt[],
  options: HardSplitOptions,
): Promise<HardSplitResult> {
  if (!Number.isInteger(options.selectionSamples) || options.selectionSamples < 1)
    throw new Error(`selectionSamples: ${options.selectionSamples}; expected an integer ≥ 1`);
  const verifier = new ClaimVerifier(world);
  const selection: (number | undefined)[][] = prompts.map(() => []);
  for (let k = 0; k < options.selectionSamples; k++) {
    const answers = await answerPrompts(policy, format, prompts, {
      ...options.sampling,
      seed: options.sampling.seed + k * prompts.length,
    });
    for (const [i, p] of precisionsOf(verifier, answers).entries()) selection[i]!.push(p);
  }
  const hardIds = new Set(
    hardSplit(
      prompts.map((p, i) => ({ id: p.id, precisions: selection[i]!.filter((x): x is number => x !== undefined) })),
      options.share,
    ),
  );
  const measured = precisionsOf(
    verifier,
    await answerPrompts(policy, format, prompts, {
      ...options.sampling,
      seed: options.sampling.seed + MEASURE_SEED_OFFSET,
    }),
  );
  const isHard = prompts.map((p) => hardIds.has(p.id));
  const where = (keep: (p: EnvPrompt, i: number) => boolean) => {
    const indices = prompts.flatMap((p, i) => (keep(p, i) ? [i] : []));
    return { count: indices.length, precisions: indices.map((i) => measured[i]) };
  };
  const hard = where((_, i) => isHard[i]!);
  const rest = where((_, i) => !isHard[i]!);
  const suites = [...new Set(prompts.map((p) => p.suite))];
  return {
    hard: prompts.filter((_, i) => isHard[i]),
    rows: [
      row("hard", hard.count, hard.precisions),
      row("rest (all suites)", rest.count, rest.precisions),
      ...suites.map((suite) => {
        const part = where((p, i) => p.suite === suite && !isHard[i]!);
        return row(`rest: ${suite}`, part.count, part.precisions);
      }),
    ],
  };
}
