/**
 * The plain-msgpack wire format (typed arrays as {dtype, data} maps, messaging/wire.ts) against the
 * format it replaced (msgpackr's typed-array extension, `moreTypes: true`), in one run, rounds
 * interleaved so machine load hits both alike. Per message: a ScoredGroup and a RolloutGroup of
 * 8 answers × 100 tokens (each answer's text ≈ 400 characters). Figures are the process's CPU time
 * per operation (steadier than wall time on a shared machine); ratios are taken round by round.
 *
 *   encode           today: msgpackr pack           plain: encodeEnvelope (dtype maps + pack + size check)
 *   decode, msgpack  today: msgpackr unpack         plain: unpackWire (unpack + typed arrays restored)
 *   decode, full     plain: decodeEnvelope (+ envelope and schema checks, the same for both formats;
 *                    today's is its msgpack layer plus the checks' cost measured in the same round)
 *
 * Run: node bin/run-ts.mjs bench/wire-format.ts [--quick]
 */
import { Either } from "effect";
import { Packr } from "msgpackr";
import { RolloutGroupMessage, ScoredGroupMessage } from "../actors/topology.ts";
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  envelope,
  type MessageType,
  unpackWire,
} from "../messaging/index.ts";
import { sampleRolloutGroup, sampleScoredGroup } from "../test/messaging/fixtures.ts";

const quick = process.argv.includes("--quick");
const ROUNDS = quick ? 9 : 21;
const OPERATIONS = quick ? 300 : 3_000;

// The codec as it was: typed arrays as msgpackr's extension 116.
const today = new Packr({ useRecords: false, moreTypes: true, variableMapSize: true });

const cpuMicros = () => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};
const quantile = (values: readonly number[], q: number) =>
  [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * q)] ?? Number.NaN;

/**
 * CPU µs per call of each contender, per round. Every round runs each contender once, in forward
 * order on even rounds and reverse order on odd ones, so load and warm caches hit all alike.
 */
function race<K extends string>(contenders: Record<K, () => unknown>): Record<K, number[]> {
  const names = Object.keys(contenders) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = -1; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const run = contenders[name];
      const start = cpuMicros();
      for (let i = 0; i < OPERATIONS; i++) run();
      if (round >= 0) samples[name].push((cpuMicros() - start) / OPERATIONS); // round -1 warms up
    }
  }
  return samples;
}

const fmt = (n: number, digits = 1) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * Median µs of both, the median (with quartiles) of the per-round ratio after / before, and the
 * ratio of the best rounds (the least disturbed by other processes on a shared machine).
 */
function row(step: string, before: readonly number[], after: readonly number[], derived = false) {
  const ratios = after.map((value, i) => value / before[i]!);
  const spread = `${fmt(quantile(ratios, 0.25), 2)}–${fmt(quantile(ratios, 0.75), 2)}`;
  // A derived figure's best round would be the one whose noise happened to cancel: not shown.
  const best = derived
    ? "—"
    : `${fmt(quantile(before, 0))} → ${fmt(quantile(after, 0))}: ${fmt(quantile(after, 0) / quantile(before, 0), 2)}`;
  console.log(
    `| ${step} | ${fmt(quantile(before, 0.5))} | ${fmt(quantile(after, 0.5))} | **${fmt(quantile(ratios, 0.5), 2)}** (${spread}) | ${best} |`,
  );
}

function benchMessage<A>(type: MessageType<A>, message: Envelope<A>) {
  const todayBytes = today.pack(message);
  const plainBytes = encodeEnvelope(message);
  const decoded = decodeEnvelope(plainBytes, { accept: [type] });
  if (Either.isLeft(decoded)) throw decoded.left;
  const t = race({
    todayEncode: () => today.pack(message),
    plainEncode: () => encodeEnvelope(message),
    todayDecode: () => today.unpack(todayBytes),
    plainDecode: () => unpackWire(plainBytes),
    plainFull: () => decodeEnvelope(plainBytes, { accept: [type] }),
  });
  // The envelope and schema checks are the same for both formats: today's full decode is its
  // msgpack layer plus what they cost, round by round.
  const todayFull = t.todayDecode.map((value, i) => value + t.plainFull[i]! - t.plainDecode[i]!);
  console.log(`\n### ${type.name}: 8 answers × 100 tokens\n`);
  console.log("| step | today µs | plain µs | plain / today, median (quartiles) of rounds | best rounds, µs |");
  console.log("|---|---|---|---|---|");
  row("encode", t.todayEncode, t.plainEncode);
  row("decode, msgpack layer", t.todayDecode, t.plainDecode);
  row("decode, full (`decodeEnvelope`)", todayFull, t.plainFull, true);
  const bytesRatio = fmt(plainBytes.byteLength / todayBytes.byteLength, 3);
  console.log(`| bytes | ${fmt(todayBytes.byteLength, 0)} | ${fmt(plainBytes.byteLength, 0)} | ${bytesRatio} | |`);
}

const meta = { experiment: "bench", sender: "reward-1" };
console.log(`CPU µs per operation: median of ${ROUNDS} interleaved rounds of ${OPERATIONS} operations each`);
benchMessage(ScoredGroupMessage, envelope(ScoredGroupMessage, sampleScoredGroup("g-bench", 8, 100), meta));
benchMessage(RolloutGroupMessage, envelope(RolloutGroupMessage, sampleRolloutGroup("g-bench", 8, 100), meta));
