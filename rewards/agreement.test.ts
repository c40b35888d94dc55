import { describe, expect, it } from "vitest";
import type { Verdict } from "../envs/index.ts";
import { verdictAgreement } from "./agreement.ts";

const pairs = (oracle: Verdict, evidence: Verdict, n: number) =>
  Array.from({ length: n }, () => ({ oracle, evidence }));

describe("verdictAgreement (worked example)", () => {
  it("gives the confusion matrix, three-way and binary agreement, Cohen's κ, and supported recall/precision", () => {
    // 10 claims: oracle 6 supported, 2 contradicted, 2 unverifiable.
    const result = verdictAgreement([
      ...pairs("supported", "supported", 5),
      ...pairs("supported", "unverifiable", 1),
      ...pairs("contradicted", "contradicted", 1),
      ...pairs("contradicted", "supported", 1),
      ...pairs("unverifiable", "unverifiable", 1),
      ...pairs("unverifiable", "contradicted", 1),
    ]);
    expect(result.claims).toBe(10);
    expect(result.matrix.supported).toEqual({ supported: 5, contradicted: 0, unverifiable: 1 });
    expect(result.matrix.contradicted).toEqual({ supported: 1, contradicted: 1, unverifiable: 0 });
    expect(result.agreement).toBeCloseTo(0.7, 12); // 5 + 1 + 1 of 10
    // Binary: both supported 5, neither supported 3 (contradicted→contradicted, unverifiable→either non-supported).
    expect(result.binaryAgreement).toBeCloseTo(0.8, 12);
    // Chance: rows (0.6, 0.2, 0.2) × columns (0.6, 0.2, 0.2) → 0.36 + 0.04 + 0.04 = 0.44; κ = (0.7 − 0.44) / 0.56.
    expect(result.kappa).toBeCloseTo(0.26 / 0.56, 12);
    expect(result.supportedRecall).toBeCloseTo(5 / 6, 12);
    expect(result.supportedPrecision).toBeCloseTo(5 / 6, 12);
  });

  it("perfect agreement is κ = 1; no claims give zeros, not NaN", () => {
    const perfect = verdictAgreement([
      ...pairs("supported", "supported", 3),
      ...pairs("contradicted", "contradicted", 1),
    ]);
    expect(perfect.agreement).toBe(1);
    expect(perfect.kappa).toBeCloseTo(1, 12);
    const none = verdictAgreement([]);
    expect([none.agreement, none.binaryAgreement, none.supportedRecall, none.supportedPrecision]).toEqual([0, 0, 0, 0]);
  });
});
