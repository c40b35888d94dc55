import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateCorpus } from "../envs/index.ts";
import { decodePretrainConfig, loadPretrainConfig } from "./pretrain-config.ts";
import { curatedCorpus, factWorldSetup, pretrainingCorpus } from "./pretrain-factworld.ts";

describe("pretrain config", () => {
  it("fills every default from an empty file", () => {
    const config = decodePretrainConfig({}, "empty");
    expect(config.world).toBe("default");
    expect(config.model).toEqual({
      backbone: "dense",
      dModel: 128,
      layers: 2,
      heads: 4,
      dFF: 512,
      maxSeqLen: 256,
      positions: "rope",
    });
    expect(config.pretrain.steps).toBe(1200);
    expect(config.sft.examples).toBe(1000);
    expect(config.export).toBeUndefined();
  });

  it("takes a world preset or a world with its options overridden, as an experiment's env does", () => {
    expect(decodePretrainConfig({ world: "tiny" }, "x").world).toBe("tiny");
    const custom = decodePretrainConfig({ world: { size: "tiny", seed: 11, people: 20 } }, "x").world;
    expect(custom).toMatchObject({ size: "tiny", seed: 11, people: 20 });
    const world = factWorldSetup(custom).world;
    expect(world.options).toMatchObject({ seed: 11, people: 20, places: 6 });
    expect(world.entities.filter((e) => e.type === "person")).toHaveLength(20);
    expect(() => decodePretrainConfig({ world: { size: "tiny", people: 0, colour: "red" } }, "x")).toThrow(
      /world[\s\S]*people/,
    );
  });

  it("balances the corpus and the SFT candidates only when asked, with a share in [0, 1]", () => {
    const plain = decodePretrainConfig({}, "x");
    expect([plain.pretrain.balanceTailShare, plain.sft.balanceTailShare]).toEqual([undefined, undefined]);
    const balanced = decodePretrainConfig({ pretrain: { balanceTailShare: 0.1 }, sft: { balanceTailShare: 0.3 } }, "x");
    expect([balanced.pretrain.balanceTailShare, balanced.sft.balanceTailShare]).toEqual([0.1, 0.3]);
    expect(() => decodePretrainConfig({ pretrain: { balanceTailShare: 1.5 } }, "x")).toThrow(
      /pretrain\.balanceTailShare[\s\S]*\[0, 1\]/,
    );
    const world = factWorldSetup("tiny").world;
    const corpus = generateCorpus(world);
    const kept = curatedCorpus(world, corpus, { seed: 1, balanceTailShare: 0.05 });
    expect(kept.length).toBeLessThan(corpus.length);
    const headShare = (docs: readonly { entityId: number }[]) =>
      docs.filter((d) => world.entities[d.entityId]!.rankFraction <= 0.1).length / docs.length;
    expect(headShare(kept)).toBeLessThan(headShare(corpus));
  });

  it("mixes low-quality lines into the corpus and prunes the lowest-quality share only when asked", () => {
    const plain = decodePretrainConfig({}, "x");
    expect([plain.pretrain.lowQualityRate, plain.pretrain.pruneShare]).toEqual([0, undefined]);
    expect(() => decodePretrainConfig({ pretrain: { pruneShare: -0.2 } }, "x")).toThrow(/pretrain\.pruneShare/);
    const world = factWorldSetup("tiny").world;
    const settings = { seed: 1, corpus: { lowQualityRate: 0.15, documents: 500 } };
    const all = generateCorpus(world, settings.corpus);
    const pruned = curatedCorpus(world, all, { ...settings, pruneShare: 0.2 });
    expect(pruned).toHaveLength(400);
    const flawed = (docs: readonly { noisy: boolean; lowQuality?: readonly unknown[] }[]) =>
      docs.filter((d) => d.noisy || (d.lowQuality?.length ?? 0) > 0).length;
    // the 100 pruned documents all had a garbled text or a low-quality line
    expect(flawed(all) - flawed(pruned)).toBe(100);
  });

  it("holds out the same clean documents whatever the curation, and never trains on them", () => {
    const world = factWorldSetup("tiny").world;
    const settings = { seed: 1, evalFraction: 0.1, corpus: { lowQualityRate: 0.3, documents: 300 } };
    const full = pretrainingCorpus(world, settings);
    const pruned = pretrainingCorpus(world, { ...settings, pruneShare: 0.4 });
    expect(full.heldOut).toHaveLength(30);
    expect(pruned.heldOut).toEqual(full.heldOut);
    expect(full.train).toHaveLength(270);
    expect(pruned.train).toHaveLength(162);
    const heldOutIds = new Set(full.heldOut.map((d) => d.id));
    expect(full.train.some((d) => heldOutIds.has(d.id))).toBe(false);
    const generated = generateCorpus(world, settings.corpus).slice(0, 30);
    expect(generated.some((d) => (d.lowQuality?.length ?? 0) > 0)).toBe(true);
    full.heldOut.forEach((d, i) => {
      const added = new Set(generated[i]!.lowQuality?.map((l) => l.line));
      expect(d.lowQuality ?? []).toEqual([]);
      expect(d.lines).toEqual(generated[i]!.lines.filter((_, line) => !added.has(line)));
      expect(d.text).toBe(d.lines.join(" "));
    });
    // without low-quality lines or curation it is the plain split every shipped policy was made with
    const plain = pretrainingCorpus(world, { seed: 1, evalFraction: 0.1, corpus: { documents: 300 } });
    expect([...plain.heldOut, ...plain.train]).toEqual(generateCorpus(world, { documents: 300 }));
  });

  it("reports every bad field with its path at once", () => {
    let message = "";
    try {
      decodePretrainConfig({ world: "huge", pretrain: { steps: -1, bogus: 1 }, sft: { learningRate: 0 } }, "bad.yaml");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/^invalid pretrain config \(bad\.yaml\)/);
    expect(message).toMatch(/world: expected "tiny" \| "default" \| a mapping, found "huge"/);
    expect(message).toMatch(/pretrain\.steps: expected a non-negative number, found -1/);
    expect(message).toMatch(/pretrain\.bogus: unknown key/);
    expect(message).toMatch(/sft\.learningRate: expected a positive number, found 0/);
    expect(() => decodePretrainConfig({ model: { dModel: 96, heads: 5 } }, "x")).toThrow(/model\.heads/);
  });

  it("has BLT-only settings: hashed n-gram buckets and the entropy stage", () => {
    const config = decodePretrainConfig({ model: { backbone: "blt", hashBuckets: 512, localLayers: 2 } }, "blt");
    expect(config.model.hashBuckets).toBe(512);
    expect(config.model.localLayers).toBe(2);
    expect(() => decodePretrainConfig({ model: { localLayers: 2 } }, "dense")).toThrow(
      /model\.localLayers: Only the blt backbone has local layers, actual dense/,
    );
    expect(config.pretrain.entropy).toEqual({
      steps: 300,
      batch: 16,
      seqLen: 128,
      learningRate: 3e-3,
      meanPatchLength: 5,
    });
    expect(() => decodePretrainConfig({ model: { hashBuckets: 512 } }, "dense")).toThrow(
      /model\.hashBuckets: Only the blt backbone has hashed n-grams, actual dense/,
    );
    expect(() => decodePretrainConfig({ pretrain: { entropy: { meanPatchLength: 0.5 } } }, "x")).toThrow(
      /pretrain\.entropy\.meanPatchLength/,
    );
    expect(config.pretrain.nameEchoDocuments).toBe(0);
    expect(decodePretrainConfig({ model: { backbone: "blt", localWindow: 256 } }, "blt").model.localWindow).toBe(256);
    expect(decodePretrainConfig({ model: { backbone: "blt", patching: "space" } }, "blt").model.patching).toBe("space");
    expect(() => decodePretrainConfig({ model: { patching: "space" } }, "dense")).toThrow(
      /model\.patching: Only the blt backbone has patches, actual dense/,
    );
    expect(() => decodePretrainConfig({ model: { localWindow: 256 } }, "dense")).toThrow(
      /model\.localWindow: Only the blt backbone has local layers, actual dense/,
    );
    expect(
      decodePretrainConfig({ model: { backbone: "blt" }, pretrain: { nameEchoDocuments: 100 } }, "blt").pretrain
        .nameEchoDocuments,
    ).toBe(100);
    expect(() =>
      decodePretrainConfig({ model: { backbone: "mot" }, pretrain: { nameEchoDocuments: 100 } }, "mot"),
    ).toThrow(/pretrain\.nameEchoDocuments: Only the blt backbone copies made-up names, actual mot/);
  });

  it("makes a captioner with a vision section (the caption task's fields), refused for BLT", () => {
    const config = loadPretrainConfig(join(import.meta.dirname, "..", "configs", "pretrain-vision.yaml"));
    expect(config.vision).toMatchObject({ codebookSize: 512, captions: "realigned", dropAltText: 0.2, promptSeed: 1 });
    expect(decodePretrainConfig({ vision: {} }, "x").vision).toMatchObject({
      pictureDocuments: 8000,
      evalFraction: 0.2,
    });
    expect(() => decodePretrainConfig({ vision: { captions: "fresh" } }, "x")).toThrow(/vision\.captions/);
    // the text policy's SFT curation does not apply to captions: refused, not silently ignored
    expect(() => decodePretrainConfig({ vision: {}, sft: { selection: "lima" } }, "x")).toThrow(/sft\.selection/);
    expect(() => decodePretrainConfig({ vision: {}, sft: { balanceTailShare: 0.3 } }, "x")).toThrow(
      /sft\.balanceTailShare/,
    );
    expect(() => decodePretrainConfig({ model: { backbone: "blt" }, vision: {} }, "x")).toThrow(
      /vision: A blt policy reads bytes: it has no image tokens/,
    );
  });

  it("starts from a Hugging Face model with or without a corpus stage; what only FactWorld's own models have is refused at its field", () => {
    const init = "hf:models/fixtures/hf/tiny-llama";
    // continued pretraining: the corpus stage in the model's own tokenizer, for as many steps as the config says
    expect(() => decodePretrainConfig({ init }, "x")).toThrow(/pretrain\.steps: with init, say how many corpus steps/);
    expect(() => decodePretrainConfig({ init, pretrain: { steps: -1 } }, "x")).toThrow(/pretrain\.steps/);
    const continued = decodePretrainConfig(
      { init, pretrain: { steps: 50, seqLen: 64, balanceTailShare: 0.1, pruneShare: 0.2, lowQualityRate: 0.1 } },
      "x",
    );
    expect(continued.pretrain).toMatchObject({ steps: 50, seqLen: 64, balanceTailShare: 0.1, pruneShare: 0.2 });
    expect(decodePretrainConfig({ init, pretrain: { steps: 0 } }, "x").pretrain.steps).toBe(0); // SFT only
    const refused = (raw: Record<string, unknown>) => () => decodePretrainConfig({ init, ...raw }, "x");
    expect(refused({ model: { dModel: 64 } })).toThrow(
      /model: The architecture is .*config\.json: leave model out with init/,
    );
    expect(refused({ vision: {} })).toThrow(/vision: .* is a text model: it has no image tokens/);
    expect(refused({ pretrain: { entropy: { steps: 10 } } })).toThrow(
      /pretrain\.entropy: Entropy patching is the blt backbone's; .* leave pretrain\.entropy out with init/,
    );
    expect(refused({ pretrain: { nameEchoDocuments: 10 } })).toThrow(
      /pretrain\.nameEchoDocuments: Name-echo documents are written in the blt backbone's bytes.*actual 10/,
    );
    expect(refused({ contrastive: {} })).toThrow(/contrastive: .*leave vision and init out/);
    expect(() => decodePretrainConfig({ init: "models/fixtures/hf/tiny-llama" }, "x")).toThrow(
      /init: .*Expected hf:DIR/,
    );
  });

  it("reads YAML with --set overrides", () => {
    const dir = mkdtempSync(join(tmpdir(), "factrl-pretrain-config-"));
    const file = join(dir, "p.yaml");
    writeFileSync(file, "world: tiny\npretrain:\n  steps: 10\n");
    const config = loadPretrainConfig(file, ["pretrain.steps=20", "export.dir=out/q", "model.positions=learned"]);
    expect(config.world).toBe("tiny");
    expect(config.pretrain.steps).toBe(20);
    expect(config.export).toEqual({ dir: "out/q", dtype: "float16" });
    expect(config.model.positions).toBe("learned");
    expect(() => loadPretrainConfig(file, ["nonsense"])).toThrow(/expected key=value/);
  });
});
