import { describe, expect, it } from "vitest";
import { checkEnvironment } from "../environment.ts";
import { generatePrompts } from "../factworld/prompts.ts";
import { tokenizerForVocabulary } from "../factworld/tokenizer.ts";
import { generateWorld } from "../factworld/world.ts";
import { makeEnvironment } from "../registry.ts";
import { lookOf } from "./attributes.ts";
import { captionRewardModules } from "./caption-rewards.ts";
import { captionAnswer, captionExamples, captionTruths, DEFAULT_CAPTION_TASK } from "./caption-task.ts";

const SECTION = {
  kind: "factworld-vision",
  size: "tiny",
  promptSeed: 1,
  evalFraction: 0.2,
  maxPicturesPerEntity: 12,
  dropAltText: 0.2,
} as const;

const world = generateWorld({ size: "tiny" });
const examples = captionExamples(world, DEFAULT_CAPTION_TASK);
const modules = captionRewardModules(world, captionTruths(examples));
const score = async (name: string, promptId: string, answer: string, extra: Record<string, unknown> = {}) => {
  const [outcome] = await modules[name]!({}).score([{ prompt: { id: promptId }, answer, ...extra }]);
  return outcome;
};
const pegaPicture = examples.find((e) => e.truth.entity.name === "Pega Lelofe")!;
const pega = pegaPicture.truth; // blond hair, blue eyes, red clothing, a monocle; a teacher born in 1926

describe("the factworld-vision environment", () => {
  it("is one prompt per picture, split by entity as FactWorld's text prompts are, with its pictures and references", async () => {
    const env = await makeEnvironment(SECTION);
    expect(env.kind).toBe("factworld-vision");
    expect(env.modalities).toEqual(["text", "image"]);
    expect(env.train.length + env.eval.length).toBe(56); // the tiny world's pictures
    expect(env.suites).toEqual(["caption", "caption-no-alt"]);
    const textSplit = new Map(generatePrompts(world).map((p) => [p.focus.entity, p.split]));
    for (const p of [...env.train, ...env.eval]) {
      expect(p.split).toBe(textSplit.get(p.focus!.entity) ?? p.split);
      expect(p.picture!.pixels.length).toBe(32 * 32 * 3);
      expect(p.reference).toBeTruthy();
      expect(p.text.startsWith("alt-text : ")).toBe(true);
    }
    const noAlt = [...env.train, ...env.eval].filter((p) => p.suite === "caption-no-alt");
    expect(noAlt.length).toBeGreaterThan(0);
    expect(noAlt.every((p) => p.text === "alt-text : none")).toBe(true);
    expect(env.eval.length).toBeGreaterThan(0);
  });

  it("is deterministic: the same section gives the same pixels, texts and references", () => {
    const again = captionExamples(generateWorld({ size: "tiny" }), DEFAULT_CAPTION_TASK);
    expect(again.map((e) => e.prompt.text)).toEqual(examples.map((e) => e.prompt.text));
    expect(again.map((e) => e.caption)).toEqual(examples.map((e) => e.caption));
    expect(again.every((e, i) => Buffer.from(e.prompt.picture.pixels).equals(examples[i]!.prompt.picture.pixels))).toBe(
      true,
    );
  });

  it("writes every prompt, reference and SFT answer in its vocabulary (boilerplate file numbers aside)", async () => {
    const env = await makeEnvironment(SECTION);
    const tokenizer = tokenizerForVocabulary(env.vocabulary!);
    const unknown = new Set<string>();
    for (const e of examples) {
      for (const text of [e.prompt.text, captionAnswer(e.truth, e.caption)])
        for (const word of text.split(" ")) if (tokenizer.idOf(word) === 3) unknown.add(word);
    }
    expect([...unknown].filter((w) => !/\d{4}/.test(w))).toEqual([]);
  });

  it("names a malformed picture's prompt", () => {
    const env = { ...examples[0]!.prompt, picture: { width: 32, height: 31, pixels: new Uint8Array(32 * 32 * 3) } };
    expect(() =>
      checkEnvironment(
        { kind: "x", description: "x", modalities: ["image"], train: [env], eval: [], suites: ["caption"] },
        "test",
      ),
    ).toThrow(`train[0].picture (prompt ${env.id}): 3072 bytes of pixels, expected 2976 (32×31×3)`);
  });
});

describe("the caption rewards (worked examples)", () => {
  const id = pegaPicture.prompt.id;
  const answer = (caption: string) => captionAnswer(pega, caption);

  it("supports the true caption, and a fact about the pictured entity", async () => {
    expect(lookOf(world, pega.entity).values).toMatchObject({ hair: "blond", eyes: "blue" });
    const outcome = await score("precision", id, answer("Pega Lelofe has blond hair . Pega Lelofe was a teacher ."));
    expect(outcome).toEqual({
      ok: true,
      components: {
        precision: 1,
        supported: 2,
        contradicted: 0,
        unverifiable: 0,
        claims: 2,
        abstained: 0,
        wrongEntity: 0,
      },
    });
    expect(await score("detail", id, answer("Pega Lelofe has blond hair . Pega Lelofe was a teacher ."))).toEqual({
      ok: true,
      components: { detail: Math.log1p(2) },
    });
  });

  it("a wrong colour halves precision; a wrong name is a hallucination even with the right colours", async () => {
    const wrongColour = await score("precision", id, answer("the person has red hair . the person has blue eyes ."));
    expect(wrongColour).toMatchObject({ components: { precision: 0.5, contradicted: 1, wrongEntity: 0 } });
    const wrongName = await score("precision", id, answer("a picture of Gupu Nija . Gupu Nija has blond hair ."));
    expect(wrongName).toMatchObject({ components: { precision: 0, supported: 0, wrongEntity: 1 } });
  });

  it("boilerplate makes no claim (an abstention); a malformed or unfinished answer gets the format penalty", async () => {
    expect(await score("precision", id, answer("stock photo |"))).toMatchObject({
      components: { precision: 0, claims: 0, abstained: 1 },
    });
    expect(await score("format", id, answer("the person has blond hair ."))).toEqual({
      ok: true,
      components: { format: 0, malformed: 0 },
    });
    expect(await score("format", id, "the person has blond hair .")).toMatchObject({ components: { format: -1 } });
    expect(await score("format", id, answer("the person has"), { truncated: true })).toMatchObject({
      components: { malformed: 1 },
    });
  });

  it("relevance: covering more of what the picture shows than the reference wins; off-topic claims lose", async () => {
    const full = answer("the person has blond hair . the person has blue eyes . the person wears red .");
    const reference = answer("the person has blond hair .");
    expect(await score("relevance", id, full, { reference })).toMatchObject({ components: { relevance: 1 } });
    expect(await score("relevance", id, reference, { reference: full })).toMatchObject({
      components: { relevance: 0 },
    });
    // The same coverage with a claim about someone else: lower score, a loss.
    const padded = answer("the person has blond hair . Bapele is a fortress .");
    expect(await score("relevance", id, padded, { reference })).toMatchObject({ components: { relevance: 0 } });
    // No reference given: the re-aligned alt-text is the one to beat (it states everything shown).
    expect(await score("relevance", id, reference)).toMatchObject({ components: { relevance: 0 } });
  });

  it("rejects an answer to a prompt that is not one of its pictures", async () => {
    expect(await score("precision", "bio:3", answer("x ."))).toEqual({
      ok: false,
      error: { kind: "rejected", message: "prompt bio:3 is not a picture of this world" },
    });
  });
});
