/**
 * Name-echo documents: a train-split prompt whose entity is renamed to a made-up name, followed by
 * the answer such a prompt deserves — the reasoning part, `<think> The question is about NAME .
 * It asks for … </think>`, then an abstention, `I do not know about NAME .` The name has to be
 * copied, from the prompt and again across the reasoning: no entity has it, so it cannot be
 * recalled, and no fact is ever attached to it.
 *
 * The corpus repeats a name only within a document about an entity the model already knows, so a
 * byte-level model learns to recall names rather than copy them; this is the copy it lacks
 * (docs/models.md, "BLT base policy").
 */

import { NO_CLAIM_TEXTS } from "./grammar.ts";
import { generatePrompts, type Prompt } from "./prompts.ts";
import { createRng } from "./random.ts";
import { renderReasoning } from "./reference.ts";
import { madeUpName, type World } from "./world.ts";

const ABSTENTION = NO_CLAIM_TEXTS.find((t) => t.startsWith("I do not know"))!;

export interface NameEchoDocument {
  /** The renamed prompt, as a policy reads it. */
  readonly prompt: string;
  /** The answer: the reasoning part with the made-up name, then an abstention. */
  readonly answer: string;
  readonly name: string;
}

/** `count` documents, each a train-split prompt picked at random (seeded) under a new made-up name. */
export function nameEchoDocuments(world: World, count: number, seed: number): NameEchoDocument[] {
  const rng = createRng(seed);
  const prompts: Prompt[] = generatePrompts(world).filter((p) => p.split === "train");
  if (prompts.length === 0) throw new Error("name-echo documents: the world has no train-split prompts");
  return Array.from({ length: count }, () => {
    const prompt = rng.pick(prompts);
    const name = madeUpName(world, rng, prompt.focus.entity);
    return {
      prompt: prompt.text.split(prompt.focus.entity).join(name),
      answer: `${renderReasoning(prompt.focus, name)} ${ABSTENTION.replace("{S}", name)}`,
      name,
    };
  });
}
