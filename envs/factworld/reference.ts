/**
 * Well-formed reference answers rendered straight from the knowledge base:
 * `<think> short reasoning </think> answer sentences`. The SFT data and the relevance judge's
 * default reference are built from these.
 */
import { CANONICAL_TEMPLATE, renderTemplate } from "./grammar.ts";
import { aspectList, type PromptFocus } from "./prompts.ts";
import type { World } from "./world.ts";

export const THINK_OPEN = "<think>";
export const THINK_CLOSE = "</think>";

const REASONING_TEXT = "The question is about {S} . It asks for {A} .";

/** Words the reasoning part uses apart from names and aspect phrases (for the vocabulary). */
export const REASONING_WORDS: readonly string[] = REASONING_TEXT.split(" ").filter((w) => !w.startsWith("{"));

/** The answer part alone: one canonical sentence per known fact of each asked aspect. */
export function referenceSentences(world: World, focus: PromptFocus): string[] {
  const entity = world.entities[focus.entityId];
  if (!entity || entity.name !== focus.entity) throw new Error(`reference: unknown focus entity ${focus.entity}`);
  return focus.aspects.flatMap((aspect) => {
    const template = CANONICAL_TEMPLATE.get(aspect);
    if (!template) throw new Error(`reference: no template for ${aspect}`);
    return entity.facts
      .filter((f) => f.relation === aspect)
      .map((f) => renderTemplate(template, entity.name, { [aspect]: f.object }));
  });
}

/** The reasoning part, `<think> The question is about S . It asks for A . </think>` (S: the focus entity unless given). */
export function renderReasoning(focus: PromptFocus, subject: string = focus.entity): string {
  const reasoning = REASONING_TEXT.replace("{S}", subject).replace("{A}", aspectList(focus.aspects));
  return [THINK_OPEN, reasoning, THINK_CLOSE].join(" ");
}

export function renderReference(world: World, prompt: { readonly focus: PromptFocus }): string {
  return [renderReasoning(prompt.focus), ...referenceSentences(world, prompt.focus)].join(" ");
}
