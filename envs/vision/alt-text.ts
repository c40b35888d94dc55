/**
 * Web-style alt-text for the world's pictures, noisy the way the web's is (Altogether): the right name
 * most of the time (sometimes a look-alike's), some attributes, some of them wrong, a fact the picture
 * cannot show, boilerplate ("IMG_2031.jpg free download |"), sometimes nothing at all. Every rate is
 * an option; the same picture and options always give the same alt-text.
 */

import { claimSentence } from "../factworld/grammar.ts";
import { createRng, hashString, type Rng } from "../factworld/random.ts";
import { FIRST_YEAR, LAST_YEAR, relationInfo } from "../factworld/schema.ts";
import type { Entity, Fact, World } from "../factworld/world.ts";
import { ATTRIBUTES_OF_TYPE, type PictureRef, VISUAL_ATTRIBUTES } from "./attributes.ts";
import { IDENTITY_SENTENCES, pictureTruth, visualSentence } from "./captions.ts";

export interface AltTextOptions {
  /** Chance that a picture has no alt-text at all. */
  readonly emptyRate: number;
  /** Chance that the alt-text names the picture's entity … */
  readonly rightNameRate: number;
  /** … or names another (its look-alike when it has one); otherwise it names nobody. */
  readonly wrongNameRate: number;
  /** Chance that each attribute of the picture is mentioned. */
  readonly attributeRate: number;
  /** Chance that a mentioned attribute gets a wrong value. */
  readonly wrongAttributeRate: number;
  /** Chance of one fact about the named entity (knowledge the picture cannot show). */
  readonly factRate: number;
  /** Chance that the fact is wrong. */
  readonly wrongFactRate: number;
  /** Chance of boilerplate (a file name, "free download", …) before or after. */
  readonly boilerplateRate: number;
}

export const DEFAULT_ALT_TEXT_OPTIONS: AltTextOptions = {
  emptyRate: 0.1,
  rightNameRate: 0.75,
  wrongNameRate: 0.1,
  attributeRate: 0.4,
  wrongAttributeRate: 0.2,
  factRate: 0.3,
  wrongFactRate: 0.2,
  boilerplateRate: 0.35,
};

/** Boilerplate fragments; {N} is a four-digit number. Each ends with "|", so it is a sentence of its own. */
export const BOILERPLATE = [
  "IMG_{N}.jpg free download |",
  "IMG_{N}.jpg |",
  "stock photo |",
  "click to enlarge |",
  "image may contain |",
  "royalty free picture {N} |",
  "wallpaper hd |",
] as const;

function checkRates(options: AltTextOptions): void {
  const bad = Object.entries(options).filter(([, v]) => typeof v !== "number" || !(v >= 0 && v <= 1));
  if (bad.length > 0)
    throw new Error(`alt-text rates must be in [0, 1]: ${bad.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  if (options.rightNameRate + options.wrongNameRate > 1) {
    throw new Error(`rightNameRate + wrongNameRate must be ≤ 1, got ${options.rightNameRate + options.wrongNameRate}`);
  }
}

function otherName(world: World, entity: Entity, rng: Rng): string {
  if (entity.confusableWith !== null) return (world.entities[entity.confusableWith] as Entity).name;
  const others = world.entities.filter((e) => e.type === entity.type && e.id !== entity.id);
  return others.length > 0 ? rng.pick(others).name : rng.pick(world.entities.filter((e) => e.id !== entity.id)).name;
}

/** The fact with another object of the same kind (another word of its list, another year, another entity). */
function falsified(world: World, fact: Fact, rng: Rng): Fact {
  const info = relationInfo(fact.relation);
  for (let attempt = 0; attempt < 20; attempt++) {
    let object: string;
    if (info.objectKind === "year") object = String(rng.int(FIRST_YEAR, LAST_YEAR));
    else if (info.objectKind === "word") object = rng.pick(info.words as readonly string[]);
    else object = rng.pick(world.entities.filter((e) => e.type === info.objectType)).name;
    if (object !== fact.object) return { subject: fact.subject, relation: fact.relation, object };
  }
  return fact; // a relation with a single possible object cannot be falsified
}

/** The alt-text of one picture: deterministic from the picture's seed and the options. */
export function generateAltText(world: World, picture: PictureRef, options: Partial<AltTextOptions> = {}): string {
  const opts = { ...DEFAULT_ALT_TEXT_OPTIONS, ...options };
  checkRates(opts);
  const rng = createRng(hashString(`alt-text:${picture.seed}`));
  if (rng.chance(opts.emptyRate)) return "";
  const { entity, look } = pictureTruth(world, picture);

  const draw = rng.next();
  const name =
    draw < opts.rightNameRate
      ? entity.name
      : draw < opts.rightNameRate + opts.wrongNameRate
        ? otherName(world, entity, rng)
        : undefined;
  const sentences: string[] = [];
  let nameSaid = false;
  for (const attribute of ATTRIBUTES_OF_TYPE[look.type]) {
    if (!rng.chance(opts.attributeRate)) continue;
    const truth = look.values[attribute] as string;
    const others = (VISUAL_ATTRIBUTES[attribute].words as readonly string[]).filter((w) => w !== truth);
    const value = rng.chance(opts.wrongAttributeRate) ? rng.pick(others) : truth;
    const subject = rng.chance(0.7) ? name : undefined;
    nameSaid ||= subject !== undefined;
    sentences.push(visualSentence(attribute, value, subject, rng.int(0, 1)));
  }
  const facts = entity.facts;
  if (name !== undefined && facts.length > 0 && rng.chance(opts.factRate)) {
    const fact = rng.pick(facts);
    const stated = rng.chance(opts.wrongFactRate) ? falsified(world, fact, rng) : fact;
    sentences.push(claimSentence({ subject: name, relation: stated.relation, object: stated.object }));
    nameSaid = true;
  }
  // A name the alt-text has is always said: by an identity sentence when nothing else says it.
  if (name !== undefined && (!nameSaid || rng.chance(0.5))) {
    sentences.unshift(rng.pick(IDENTITY_SENTENCES).replace("{S}", name));
  }
  if (rng.chance(opts.boilerplateRate)) {
    const boilerplate = rng.pick(BOILERPLATE).replace("{N}", String(rng.int(1000, 9999)));
    if (rng.chance(0.5)) sentences.unshift(boilerplate);
    else sentences.push(boilerplate);
  }
  return sentences.join(" ");
}
