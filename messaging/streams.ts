/** JetStream stream set-up shared by the work queues and the blob stream. */
import type { JetStreamManager } from "@nats-io/jetstream";

export type StreamSettings = Parameters<JetStreamManager["streams"]["add"]>[0] & { readonly name: string };

/**
 * Creates the stream, or brings an existing one to `settings`: every actor may be the first to start.
 * A stream already as asked is left alone, so a user allowed only to look at it (per-role permissions:
 * messaging/permissions.ts) passes through here without needing the right to change it. Replicas are
 * a floor: a stream an operator gave more copies (`nats stream edit --replicas 3`) keeps them.
 */
export async function upsertStream(manager: JetStreamManager, settings: StreamSettings): Promise<void> {
  let existing: Record<string, unknown>;
  try {
    existing = (await manager.streams.info(settings.name)).config as unknown as Record<string, unknown>;
  } catch {
    await manager.streams.add(settings);
    return;
  }
  const replicas = Math.max(Number(existing.num_replicas ?? 1), settings.num_replicas ?? 1);
  const wanted = { ...settings, num_replicas: replicas };
  const same = Object.entries(wanted).every(
    ([key, value]) => JSON.stringify(existing[key] ?? defaults[key]) === JSON.stringify(value),
  );
  if (!same) await manager.streams.update(settings.name, wanted);
}

/** What the server reports for a setting left out of the stream's config. */
const defaults: Record<string, unknown> = { num_replicas: 1, allow_direct: false };
