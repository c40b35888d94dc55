/** JetStream stream set-up shared by the work queues and the blob stream. */
import type { JetStreamManager } from "@nats-io/jetstream";

export type StreamSettings = Parameters<JetStreamManager["streams"]["add"]>[0] & { readonly name: string };

/** Creates the stream, or brings an existing one to `settings`: every actor may be the first to start. */
export async function upsertStream(manager: JetStreamManager, settings: StreamSettings): Promise<void> {
  try {
    await manager.streams.info(settings.name);
  } catch {
    await manager.streams.add(settings);
    return;
  }
  await manager.streams.update(settings.name, settings);
}
