import { describe, expect, it } from "vitest";
import type { ModuleOutcome, RewardItem, RewardModule } from "./module.ts";
import { runModule } from "./runner.ts";

const items = (...answers: string[]): RewardItem[] =>
  answers.map((answer, i) => ({ prompt: { id: `p${i}`, text: "q" }, answer }));
const policy = { timeoutMs: 100, retries: 1, retryDelayMs: 1 };

/** A module whose behaviour depends on the answer text: "throw", "hang", "garbage", "nan", "reject", or a length score. */
function moody(calls: { count: number } = { count: 0 }): RewardModule {
  return {
    name: "moody",
    version: "1.0.0",
    async score(batch) {
      calls.count++;
      if (batch.some((i) => i.answer === "throw")) throw new Error("boom");
      if (batch.some((i) => i.answer === "hang")) await new Promise(() => {});
      return batch.map((i): ModuleOutcome => {
        if (i.answer === "garbage") return "garbage" as unknown as ModuleOutcome;
        if (i.answer === "nan") return { ok: true, components: { moody: Number.NaN } };
        if (i.answer === "reject") return { ok: false, error: { kind: "rejected", message: "cannot judge this" } };
        return { ok: true, components: { moody: i.answer.length } };
      });
    },
  };
}

describe("runModule", () => {
  it("scores a healthy batch in one call", async () => {
    const calls = { count: 0 };
    const results = await runModule(moody(calls), items("a", "bb"), policy);
    expect(results).toEqual([
      { ok: true, components: { moody: 1 } },
      { ok: true, components: { moody: 2 } },
    ]);
    expect(calls.count).toBe(1);
  });

  it("a module that throws on one answer: that answer fails, the rest are scored", async () => {
    const results = await runModule(moody(), items("a", "throw", "ccc"), policy);
    expect(results[0]).toEqual({ ok: true, components: { moody: 1 } });
    expect(results[1]).toEqual({ ok: false, failure: { module: "moody", kind: "threw", message: "boom" } });
    expect(results[2]).toEqual({ ok: true, components: { moody: 3 } });
  });

  it("a module that hangs past its timeout on one answer: that answer times out, the rest are scored", async () => {
    const started = Date.now();
    const results = await runModule(moody(), items("a", "hang"), policy);
    expect(results[0]).toEqual({ ok: true, components: { moody: 1 } });
    expect(results[1]).toEqual({
      ok: false,
      failure: { module: "moody", kind: "timeout", message: "no answer within 100 ms" },
    });
    // batch (2 tries) then the single answers (2 tries): 4 timeouts, not one per answer per try.
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("garbage, non-finite numbers and rejections fail only their answer, with what was wrong", async () => {
    const results = await runModule(moody(), items("garbage", "nan", "reject", "dd"), policy);
    expect(results.map((r) => (r.ok ? "ok" : r.failure.kind))).toEqual([
      "invalid-output",
      "invalid-output",
      "rejected",
      "ok",
    ]);
    expect(!results[1]!.ok && results[1]!.failure.message).toMatch(/"moody" is not a finite number/);
    expect(!results[2]!.ok && results[2]!.failure.message).toBe("cannot judge this");
  });

  it("a batch answer of the wrong length is garbage: isolation still scores each answer", async () => {
    const short: RewardModule = {
      name: "short",
      version: "1",
      score: async (batch) => (batch.length > 1 ? [] : [{ ok: true, components: { short: 1 } }]),
    };
    expect((await runModule(short, items("a", "b"), policy)).every((r) => r.ok)).toBe(true);
    const never: RewardModule = { name: "never", version: "1", score: async () => [] };
    const [result] = await runModule(never, items("a"), policy);
    expect(result).toMatchObject({
      ok: false,
      failure: { kind: "invalid-output", message: "expected an array of 1 outcomes, got 0 outcomes" },
    });
  });

  it("retries a transient failure", async () => {
    let failuresLeft = 2;
    const flaky: RewardModule = {
      name: "flaky",
      version: "1",
      score: async (batch) => {
        if (failuresLeft-- > 0) throw new Error("transient");
        return batch.map(() => ({ ok: true, components: { flaky: 1 } }));
      },
    };
    const results = await runModule(flaky, items("a"), { timeoutMs: 100, retries: 2, retryDelayMs: 1 });
    expect(results).toEqual([{ ok: true, components: { flaky: 1 } }]);
  });

  it("passes an abort signal that fires when the call times out", async () => {
    let aborted = false;
    const slow: RewardModule = {
      name: "slow",
      version: "1",
      score: (_batch, signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => {
            aborted = true;
            reject(new Error("aborted"));
          }),
        ),
    };
    const [result] = await runModule(slow, items("a"), { timeoutMs: 20, retries: 0 });
    expect(result).toMatchObject({ ok: false, failure: { kind: "timeout" } });
    expect(aborted).toBe(true);
  });
});
