/**
 * How well one claim verifier agrees with another, per claim — the way VeriScore and SAFE report
 * their agreement with human raters: here, the evidence-grounded verifier against FactWorld's oracle.
 */
import type { Verdict } from "../envs/index.ts";

export const VERDICTS: readonly Verdict[] = ["supported", "contradicted", "unverifiable"];

export interface VerdictAgreement {
  readonly claims: number;
  /** matrix[oracle][evidence]: claims with that pair of verdicts. */
  readonly matrix: Readonly<Record<Verdict, Readonly<Record<Verdict, number>>>>;
  /** Share of claims with the same verdict (three ways). */
  readonly agreement: number;
  /** Share with the same supported / unsupported call: what the reward's precision uses. */
  readonly binaryAgreement: number;
  /** Cohen's κ of the three-way verdicts: agreement beyond what the two marginals give by chance. */
  readonly kappa: number;
  /** Of the claims the oracle supports, the share the other verifier supports. */
  readonly supportedRecall: number;
  /** Of the claims the other verifier supports, the share the oracle supports. */
  readonly supportedPrecision: number;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

/** The confusion matrix and agreement figures of (oracle, other) verdict pairs, one per claim. */
export function verdictAgreement(
  pairs: Iterable<{ readonly oracle: Verdict; readonly evidence: Verdict }>,
): VerdictAgreement {
  const matrix = Object.fromEntries(
    VERDICTS.map((o) => [o, Object.fromEntries(VERDICTS.map((e) => [e, 0]))]),
  ) as Record<Verdict, Record<Verdict, number>>;
  let claims = 0;
  for (const { oracle, evidence } of pairs) {
    matrix[oracle][evidence]++;
    claims++;
  }
  const cell = (o: Verdict, e: Verdict) => matrix[o][e];
  const row = (o: Verdict) => VERDICTS.reduce((n, e) => n + cell(o, e), 0);
  const column = (e: Verdict) => VERDICTS.reduce((n, o) => n + cell(o, e), 0);
  const same = VERDICTS.reduce((n, v) => n + cell(v, v), 0);
  const bothSupported = cell("supported", "supported");
  const neitherSupported = claims - row("supported") - column("supported") + bothSupported;
  const chance = VERDICTS.reduce((p, v) => p + ratio(row(v), claims) * ratio(column(v), claims), 0);
  const observed = ratio(same, claims);
  return {
    claims,
    matrix,
    agreement: observed,
    binaryAgreement: ratio(bothSupported + neitherSupported, claims),
    kappa: chance === 1 ? 1 : (observed - chance) / (1 - chance),
    supportedRecall: ratio(bothSupported, row("supported")),
    supportedPrecision: ratio(bothSupported, column("supported")),
  };
}
