/**
 * The rollout work refuses a prompt group it cannot sample alone: one found by the fuzz suite that
 * filled the policy's whole context made the batch's sampling call throw, taking every other group
 * of the batch with it (handed back, retried, dead-lettered together).
 */
import { join } from "node:path";
import { Effect, Either } from "effect";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeConfig } from "../configs/index.ts";
import { initBackend, loadCheckpoint, textFormatOfRecord } from "../models/index.ts";
import { samplePromptGroup } from "../test/messaging/fixtures.ts";
import { MAX_GROUP_SIZE, makeRolloutWork } from "./rollout-work.ts";

const TINY_POLICY = join(import.meta.dirname, "..", "test", "fixtures", "tiny-policy");

beforeAll(async () => {
  await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
});

describe("rollout work", () => {
  it("refuses an overlong prompt and an absurd group size alone and samples the rest of the batch", async () => {
    const { policy, tokenizer } = await loadCheckpoint(TINY_POLICY);
    const config = Either.getOrThrow(
      decodeConfig({ experiment: "rw", rollout: { maxNewTokens: 4 }, rewards: { reference: "knowledge-base" } }),
    );
    const format = textFormatOfRecord(config.model.backbone, tokenizer, "tiny-policy");
    const work = makeRolloutWork(config, format, Effect.succeed(policy));
    const fine = { ...samplePromptGroup("g-fine", 2), prompt: "Tell me about Zorvath." };
    const overlong = { ...samplePromptGroup("g-long", 2), prompt: "Tell me about Zorvath. ".repeat(500) };
    const absurd = { ...samplePromptGroup("g-many", MAX_GROUP_SIZE + 1), prompt: "Tell me about Zorvath." };
    const batch = await Effect.runPromise(work.rollOut([overlong, fine, absurd], policy, 0, "rollout-test"));
    expect(batch.rollouts.map((r) => r.group.groupId)).toEqual(["g-fine"]);
    expect(batch.rollouts[0]!.answers).toHaveLength(2);
    expect(batch.unreadable.map((u) => u.group.groupId)).toEqual(["g-long", "g-many"]);
    expect(batch.unreadable[0]!.reason).toMatch(/g-long.*leave no room to answer in the policy's 128-token context/);
    expect(batch.unreadable[1]!.reason).toMatch(/asks for 1025 answers, over 1024/);
    policy.dispose();
  });

  it("cd-k with rollout.retrieval: the expert reads the prompt with its evidence, the group is marked and carries both log-probs; k above the vocabulary is refused by name", async () => {
    const { policy, tokenizer } = await loadCheckpoint(TINY_POLICY);
    const config = Either.getOrThrow(
      decodeConfig({
        experiment: "rw",
        rollout: { maxNewTokens: 6, decoding: { kind: "cd-k", alpha: 0.1, k: 2 }, retrieval: { k: 1 } },
        rewards: { reference: "knowledge-base" },
      }),
    );
    const format = textFormatOfRecord(config.model.backbone, tokenizer, "tiny-policy");
    const evidence = "Zorvath lives in Dareth.";
    const retrieved = (queries: readonly unknown[]) =>
      Effect.succeed(queries.map(() => ({ documents: [{ id: "doc-1", text: evidence, score: 1 }] })));
    const work = makeRolloutWork(config, format, Effect.succeed(policy), retrieved);
    const group = { ...samplePromptGroup("g-cdk", 3), prompt: "Tell me about Zorvath." };
    const [rollout] = (await Effect.runPromise(work.rollOut([group], policy, 0, "rollout-test"))).rollouts;
    expect(rollout!.decoding).toEqual({ kind: "cd-k", alpha: 0.1, k: 2 });
    expect(Array.from(rollout!.promptTokens)).toEqual(Array.from(format.promptTokens(`${evidence} ${group.prompt}`)));
    for (const answer of rollout!.answers) expect(answer.policyLogProbs).toHaveLength(answer.tokens.length);

    const tooLarge = Either.getOrThrow(
      decodeConfig({ experiment: "rw", rollout: { decoding: { kind: "cd-k", k: policy.config.vocabSize + 1 } } }),
    );
    const refused = makeRolloutWork(tooLarge, format, Effect.succeed(policy));
    await expect(Effect.runPromise(refused.rollOut([group], policy, 0, "rollout-test"))).rejects.toThrow(
      /rollout\.decoding\.k must be an integer from 1 to the policy's vocabulary size/,
    );
    policy.dispose();
  });
});
