/** `factrl world show ENTITY`: a contact sheet of an entity's pictures, to see what the vision world shows. */
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { Console, Data, Effect } from "effect";
import {
  ATTRIBUTES_OF_TYPE,
  contactSheet,
  type Entity,
  encodePng,
  generateWorld,
  lookOf,
  popularityBucket,
  renderPicture,
  VISUAL_ATTRIBUTES,
  WORLD_SIZES,
  type World,
  type WorldSize,
  worldPictures,
} from "../../envs/index.ts";
import { runMain, UsageError } from "../run-main.ts";

class WriteError extends Data.TaggedError("WriteError")<{ readonly path: string; readonly reason: string }> {
  override get message(): string {
    return `cannot write ${this.path}: ${this.reason}`;
  }
}

/** Edit distance, case-insensitive: how far a typed name is from a real one. */
function editDistance(a: string, b: string): number {
  const [s, t] = [a.toLowerCase(), b.toLowerCase()];
  let previous = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const current = [i];
    for (let j = 1; j <= t.length; j++) {
      const substitution = (previous[j - 1] as number) + (s[i - 1] === t[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[t.length] as number;
}

/** The entity of that name, or a usage error naming the closest names the world has. */
export function findEntity(world: World, name: string): Effect.Effect<Entity, UsageError> {
  const entity = world.byName.get(name);
  if (entity) return Effect.succeed(entity);
  const close = world.entities
    .map((e) => ({ name: e.name, distance: editDistance(name, e.name) }))
    .sort((a, b) => a.distance - b.distance || a.name.localeCompare(b.name))
    .slice(0, 5)
    .map((e) => e.name);
  return Effect.fail(
    new UsageError({ reason: `no entity named "${name}" in this world; closest names: ${close.join(", ")}` }),
  );
}

/** One line about the entity: type, popularity, pictures and look. */
export function describeEntity(world: World, entity: Entity, pictures: number): string {
  const look = lookOf(world, entity);
  const attributes = ATTRIBUTES_OF_TYPE[entity.type].map((a) => `${VISUAL_ATTRIBUTES[a].phrase} ${look.values[a]}`);
  const plural = pictures === 1 ? "picture" : "pictures";
  return `${entity.name} (${entity.type}, rank ${entity.rank} of ${world.entities.length}, ${popularityBucket(entity)}): ${pictures} ${plural}; ${attributes.join(", ")}`;
}

const slug = (name: string) => name.toLowerCase().replace(/[^a-z0-9]+/g, "-");

interface ShowOptions {
  readonly out?: string;
  readonly size: string;
  readonly seed?: string;
}

function worldOf(options: ShowOptions): Effect.Effect<World, UsageError> {
  return Effect.gen(function* () {
    if (!Object.hasOwn(WORLD_SIZES, options.size)) {
      return yield* new UsageError({
        reason: `--size must be one of ${Object.keys(WORLD_SIZES).join(", ")}, got "${options.size}"`,
      });
    }
    const seed = options.seed === undefined ? undefined : Number(options.seed);
    if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0)) {
      return yield* new UsageError({ reason: `--seed must be a non-negative integer, got "${options.seed}"` });
    }
    return generateWorld({ size: options.size as WorldSize, ...(seed === undefined ? {} : { seed }) });
  });
}

export function registerWorld(program: Command): void {
  const world = program.command("world").description("look at the FactWorld that experiments run on");
  world
    .command("show")
    .description("write a contact sheet (PNG) of an entity's pictures and print what they show")
    .argument("<entity>", 'the entity\'s name, e.g. "Jogu Fefi" (quote names with spaces)')
    .option("--out <file>", "where the PNG goes (default: <entity-name>.png)")
    .option("--size <size>", "world size: tiny or default", "default")
    .option("--seed <n>", "world seed (default: the size's own)")
    .action((name: string, options: ShowOptions) => {
      const program = Effect.gen(function* () {
        const w = yield* worldOf(options);
        const entity = yield* findEntity(w, name);
        const refs = worldPictures(w).filter((ref) => ref.entityId === entity.id);
        const sheet = contactSheet(refs.map((ref) => renderPicture(ref.look, ref.seed)));
        const out = options.out ?? `${slug(entity.name)}.png`;
        yield* Effect.tryPromise({
          try: () => writeFile(out, encodePng(sheet)),
          catch: (error) => new WriteError({ path: out, reason: (error as Error).message }),
        });
        yield* Console.log(`${describeEntity(w, entity, refs.length)}\nwrote ${out} (${sheet.width}×${sheet.height})`);
      });
      runMain(program);
    });
}
