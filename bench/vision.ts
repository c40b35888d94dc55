// The vision world's figures: how many pictures the world has, how well the attribute classifier
// (the world's rater) reads held-out pictures, and, per codebook size, the VQ tokenizer's
// reconstruction error and how well the classifier reads VQ-decoded pictures.
//
//   node bin/run-ts.mjs bench/vision.ts [--size default] [--codes 64,256,512]
//
// Held out: pictures of the world's own looks drawn with seeds that neither the classifier nor the
// codebook saw, and 2000 pictures of fresh random looks (classifier only).
import {
  generateWorld,
  type Picture,
  popularityBucket,
  renderPicture,
  type WorldSize,
  worldPictures,
} from "../envs/index.ts";
import { AttributeClassifier, type ClassifierAccuracy, samplePictures } from "../envs/vision/classifier.ts";
import { initBackend } from "../models/backend.ts";
import { decodeTokens, encodePicture, reconstructionError, trainVqCodebook } from "../models/vq.ts";

const argv = process.argv.slice(2);
const arg = (name: string, fallback: string) =>
  argv.includes(name) ? (argv[argv.indexOf(name) + 1] ?? fallback) : fallback;
const size = arg("--size", "default") as WorldSize;
const codebookSizes = arg("--codes", "64,256,512").split(",").map(Number);

const seconds = (start: number) => ((performance.now() - start) / 1000).toFixed(1);
const percent = (x: number) => `${(100 * x).toFixed(1)} %`;
const table = (accuracy: ClassifierAccuracy) =>
  [
    `type ${percent(accuracy.type)}`,
    ...Object.entries(accuracy.byAttribute).map(([a, v]) => `${a} ${percent(v)}`),
  ].join(", ");

await initBackend({ backend: "wasm", measure: false, logger: { info: () => {} } });
const world = generateWorld({ size });
const refs = worldPictures(world);
const byBucket = { head: 0, torso: 0, tail: 0 };
for (const ref of refs) byBucket[popularityBucket(world.entities[ref.entityId]!)]++;
console.log(
  `world ${size}: ${world.entities.length} entities, ${refs.length} pictures (head ${byBucket.head}, torso ${byBucket.torso}, tail ${byBucket.tail})`,
);
let start = performance.now();
const pictures = refs.map((ref) => renderPicture(ref.look, ref.seed));
const heldOut = refs.map((ref, i) => ({ look: ref.look, picture: renderPicture(ref.look, 0x5eed0000 + i) }));
console.log(`rendered ${pictures.length + heldOut.length} pictures in ${seconds(start)} s`);

start = performance.now();
const classifier = await AttributeClassifier.train();
console.log(`classifier trained in ${seconds(start)} s (default options)`);
console.log(`  fresh looks (2000): ${table(classifier.accuracy(samplePictures(2000, 4242)))}`);
const original = classifier.accuracy(heldOut);
console.log(`  world's looks, held-out seeds (${heldOut.length}): ${table(original)}`);

for (const codes of codebookSizes) {
  start = performance.now();
  const codebook = trainVqCodebook(pictures, { codebookSize: codes });
  const trained = seconds(start);
  const train = reconstructionError(codebook, pictures);
  const held = reconstructionError(
    codebook,
    heldOut.map((h) => h.picture),
  );
  const decoded = heldOut.map(({ look, picture }) => ({
    look,
    picture: decodeTokens(codebook, encodePicture(codebook, picture)) as Picture,
  }));
  console.log(
    `VQ ${codes} codes (4×4 patches, 64 tokens/picture; ${trained} s): MSE ${train.mse.toFixed(0)} / PSNR ${train.psnr.toFixed(1)} dB on its pictures, MSE ${held.mse.toFixed(0)} / PSNR ${held.psnr.toFixed(1)} dB held out`,
  );
  console.log(`  classifier on decoded held-out pictures: ${table(classifier.accuracy(decoded))}`);
}
classifier.dispose();
