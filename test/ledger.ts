/** Where every prompt group an experiment published ended up: what the pipeline tests check adds up. */
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { Effect } from "effect";
import { CURATOR_CURSOR_KEY, LEARNER_PROGRESS_KEY, PIPELINE_QUEUES } from "../actors/topology.ts";
import { deadLetterCount, Experiment, getBlob, getState, Nats, POLICY_KEY, pendingWork } from "../messaging/index.ts";
import { readCheckpointManifest } from "../models/index.ts";

/**
 * The learner's progress, the curator's published count, and the dead-lettered and pending groups of
 * every queue; `accounted` is used + stale + zero-variance + off-policy + dead-lettered + pending, which must equal
 * `published`.
 */
export const readLedger = Effect.gen(function* () {
  const progress = (yield* getState(LEARNER_PROGRESS_KEY))?.value;
  const published = (yield* getState(CURATOR_CURSOR_KEY))?.value.published ?? 0;
  let deadLettered = 0;
  let pending = 0;
  for (const queue of PIPELINE_QUEUES) {
    deadLettered += yield* deadLetterCount(queue);
    pending += yield* pendingWork(queue);
  }
  const accounted =
    (progress?.consumed ?? 0) +
    (progress?.stale ?? 0) +
    (progress?.zeroVariance ?? 0) +
    (progress?.offPolicy ?? 0) +
    deadLettered +
    pending;
  return { progress, published, deadLettered, pending, accounted };
});

/**
 * The policy pointer now, the size of the weights it points at (read and digest-checked), and the
 * versions it moved through in order, as far back as the state bucket's history goes (5 revisions).
 */
export const readPolicyRecord = Effect.gen(function* () {
  const pointer = (yield* getState(POLICY_KEY))?.value;
  const finalWeights = pointer === undefined ? 0 : (yield* getBlob(pointer.weights)).length;
  const { jetstream } = yield* Nats;
  const { subjects } = yield* Experiment;
  const pointerVersions = yield* Effect.promise(async () => {
    const kv = await new Kvm(jetstream).open(subjects.stateBucket);
    const versions: number[] = [];
    for await (const entry of await kv.history({ key: POLICY_KEY.key })) {
      if (entry.operation === "PUT") versions.push(entry.json<{ version: number }>().version);
    }
    return versions;
  });
  return { pointer, finalWeights, pointerVersions };
});

/** The ids of the groups the learner's last checkpoint says its weights were trained on. */
export async function checkpointUsedGroups(runDir: string): Promise<string[]> {
  const manifest = await readCheckpointManifest(join(runDir, "checkpoints", "learner"));
  return (manifest.trainerState as { usedGroups: string[] }).usedGroups;
}
