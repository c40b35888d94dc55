/**
 * `echo`: a diagnostic stand-in for a rollout actor. It takes prompt groups from the prompts queue
 * and answers each with G copies of the prompt, on the rollouts queue (msgID = group id, so a group
 * handed back and redone is stored once). `meta.sleepMs` on a group makes the work take that long.
 * No model: it exercises NATS, the runtime, the launcher, scaling and draining on any machine.
 */
import { Duration, Effect } from "effect";
import { type Answer, publishWork, WorkOutcome } from "../messaging/index.ts";
import type { RoleDefinition } from "./runtime.ts";

/** An echo role working `concurrency` prompt groups at once. */
export const makeEchoRole = (concurrency: number): RoleDefinition => ({
  name: "echo",
  description: "diagnostic worker: answers each prompt group with G copies of its prompt",
  start: (actor) =>
    Effect.succeed(
      actor.consume(
        "prompts",
        (item) =>
          Effect.gen(function* () {
            const group = item.body;
            const sleepMs = group.meta.sleepMs;
            if (typeof sleepMs === "number" && sleepMs > 0) yield* Effect.sleep(Duration.millis(sleepMs));
            const startedAt = Date.now();
            // No policy here: the prompt's UTF-8 bytes stand in for tokens.
            const tokens = Int32Array.from(new TextEncoder().encode(group.prompt));
            const answer: Answer = {
              tokens,
              logProbs: new Float32Array(tokens.length),
              text: group.prompt,
              finishReason: "stop",
            };
            yield* publishWork(
              "rollouts",
              {
                group,
                promptTokens: tokens,
                answers: Array.from({ length: group.groupSize }, () => answer),
                policyVersion: 0,
                timings: { startedAt, finishedAt: Date.now() },
                actor: actor.id,
              },
              { msgId: group.groupId },
            );
            return WorkOutcome.done;
          }),
        { concurrency },
      ),
    ),
});

export const echoRole: RoleDefinition = makeEchoRole(1);
