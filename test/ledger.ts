/** Where every prompt group an experiment published ended up: what the pipeline tests check adds up. */
import { Effect } from "effect";
import { CURATOR_CURSOR_KEY, LEARNER_PROGRESS_KEY, PIPELINE_QUEUES } from "../actors/topology.ts";
import { deadLetterCount, getState, pendingWork } from "../messaging/index.ts";

/** The learner's progress, the curator's published count, and the dead-lettered and pending groups of every queue. */
export const readLedger = Effect.gen(function* () {
  const progress = (yield* getState(LEARNER_PROGRESS_KEY))?.value;
  const published = (yield* getState(CURATOR_CURSOR_KEY))?.value.published ?? 0;
  let deadLettered = 0;
  let pending = 0;
  for (const queue of PIPELINE_QUEUES) {
    deadLettered += yield* deadLetterCount(queue);
    pending += yield* pendingWork(queue);
  }
  return { progress, published, deadLettered, pending };
});
