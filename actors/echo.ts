/**
 * `echo`: a diagnostic stand-in for a rollout actor. It takes prompt groups from the prompts queue
 * and answers each with G copies of the prompt, on the rollouts queue (msgID = group id, so a group
 * handed back and redone is stored once). No model: it exercises NATS, the runtime, the launcher,
 * scaling and draining on any machine. A group's `meta` can ask for the faults an operator must see:
 * - `sleepMs`: the work takes that long (asynchronously);
 * - `busyMs`: the work blocks the event loop that long (a busy-wait, announced with `busy`, as a
 *   learner's update would be);
 * - `crash: true`: on its first delivery, the role crashes once the group is answered (the runtime
 *   restarts it in the process).
 */
import { Data, Deferred, Duration, Effect } from "effect";
import { publishWork, WorkOutcome } from "../messaging/index.ts";
import type { RoleDefinition } from "./runtime.ts";
import { type Answer, PROMPTS_QUEUE, ROLLOUTS_QUEUE } from "./topology.ts";

/** The crash a prompt group asked for (`meta.crash`). */
export class EchoCrash extends Data.TaggedError("EchoCrash")<{ readonly groupId: string }> {
  override get message(): string {
    return `echo crashed on purpose after group ${this.groupId} (meta.crash)`;
  }
}

const busyWait = (ms: number) =>
  Effect.sync(() => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      // blocking on purpose: nothing else in this process runs meanwhile
    }
  });

/** An echo role working `concurrency` prompt groups at once. */
export const makeEchoRole = (concurrency: number): RoleDefinition => ({
  name: "echo",
  description: "diagnostic worker: answers each prompt group with G copies of its prompt",
  takes: [PROMPTS_QUEUE],
  gives: [ROLLOUTS_QUEUE],
  start: (actor) =>
    Effect.gen(function* () {
      // Completed by a group asking for a crash: the work loop fails (a handler failure would only
      // fail that group).
      const crash = yield* Deferred.make<never, EchoCrash>();
      const work = actor.consume(
        PROMPTS_QUEUE,
        (item) =>
          Effect.gen(function* () {
            const group = item.body;
            const { sleepMs, busyMs } = group.meta;
            if (typeof sleepMs === "number" && sleepMs > 0) yield* Effect.sleep(Duration.millis(sleepMs));
            if (typeof busyMs === "number" && busyMs > 0)
              yield* actor.busy(`busy-wait of ${busyMs} ms (group ${group.groupId})`, busyWait(busyMs));
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
              ROLLOUTS_QUEUE,
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
            if (group.meta.crash === true && item.deliveryCount === 1)
              yield* Deferred.fail(crash, new EchoCrash({ groupId: group.groupId }));
            return WorkOutcome.done;
          }),
        { concurrency },
      );
      return Effect.raceFirst(work, Deferred.await(crash));
    }),
});

export const echoRole: RoleDefinition = makeEchoRole(1);
