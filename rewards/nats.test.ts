import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { generatePrompts, generateWorld, renderReference } from "../envs/index.ts";
import { decodeWithPython, encodeWithPython } from "../test/plain-msgpack.ts";
import { FactWorldAnalyzer, precisionModule } from "./builtins.ts";
import type { RewardModule } from "./module.ts";
import { natsRewardModule, REWARD_PROTOCOL_VERSION, rewardSubjects, serveRewardModule } from "./nats.ts";
import { createRewardPipeline } from "./registry.ts";

const packr = new Packr({ useRecords: false, moreTypes: true });
const world = generateWorld({ size: "tiny" });
const prompts = generatePrompts(world);
let nc: NatsConnection;
const stops: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  nc = await connect({ servers: inject("natsUrl") });
});
afterAll(async () => {
  for (const stop of stops) await stop();
  await nc.drain();
});

const flaky: RewardModule = {
  name: "flaky",
  version: "2.0.0",
  async score(batch) {
    if (batch.some((i) => i.answer === "throw")) throw new Error("remote boom");
    return batch.map((i) => ({ ok: true as const, components: { flaky: i.answer.length } }));
  },
};

describe("reward modules as NATS services", () => {
  it("a built-in served over NATS scores the same as in-process, end to end through the pipeline", async () => {
    const svc = await serveRewardModule(nc, precisionModule(new FactWorldAnalyzer({ world })), {
      service: "kb-precision",
    });
    stops.push(() => svc.stop());
    const items = prompts.slice(0, 5).map((p, i) => ({
      prompt: { id: p.id, text: p.text, focus: p.focus },
      answer: i === 0 ? "<think> </think>" : renderReference(world, p),
    }));
    const remote = await createRewardPipeline(
      { modules: [{ service: "kb-precision", weight: 1 }], timeoutMs: 5000, retries: 0 },
      { nats: nc },
    );
    const local = await createRewardPipeline(
      { modules: [{ name: "precision", weight: 1 }], timeoutMs: 5000, retries: 0 },
      { world },
    );
    const [r, l] = [await remote.score(items), await local.score(items)];
    expect(r.map((s) => s.reward)).toEqual([0, 1, 1, 1, 1]);
    expect(r).toEqual(l.map((s) => ({ ...s, components: { ...s.components } })));
    expect(remote.modules[0]!.version).toBe("1.0.0");
  });

  it("a remote module that throws on one answer fails only that answer", async () => {
    const svc = await serveRewardModule(nc, flaky);
    stops.push(() => svc.stop());
    const pipeline = await createRewardPipeline(
      { modules: [{ service: "flaky", weight: 1 }], timeoutMs: 2000, retries: 0 },
      { nats: nc },
    );
    const scores = await pipeline.score(
      ["ab", "throw", "abcd"].map((answer) => ({ prompt: { id: "p", text: "q" }, answer })),
    );
    expect(scores.map((s) => s.reward)).toEqual([2, 0, 4]);
    expect(scores[1]!.failures).toEqual([
      { module: "flaky", kind: "threw", message: 'reward service "flaky": remote boom' },
    ]);
  });

  it("answers bad requests with an error body, and is discoverable as a NATS micro-service", async () => {
    const subjects = rewardSubjects("flaky");
    const garbage = packr.unpack(
      (await nc.request(subjects.score, new Uint8Array([0x82, 0xa1]), { timeout: 2000 })).data,
    );
    expect(garbage).toEqual({
      protocol: REWARD_PROTOCOL_VERSION,
      error: { message: expect.stringMatching(/not msgpack/) },
    });
    const wrongVersion = packr.unpack(
      (await nc.request(subjects.score, packr.pack({ protocol: 99, items: [] }), { timeout: 2000 })).data,
    );
    expect(wrongVersion.error.message).toBe("unsupported protocol 99");
    const ping = JSON.parse(
      new TextDecoder().decode((await nc.request("$SRV.PING.flaky", undefined, { timeout: 2000 })).data),
    );
    expect(ping).toMatchObject({ name: "flaky", version: "2.0.0", metadata: { protocol: "factrl-reward/1" } });
  });

  it("talks to a service written with Python's msgpack: plain requests, 64-bit ints in replies", async () => {
    // The service's replies as Python packs them (5e9 is a 64-bit int there); factrl's requests are kept.
    const [info, outcomes] = encodeWithPython([
      { protocol: 1, name: "py", version: "1.0.0" },
      {
        protocol: 1,
        outcomes: [
          { ok: true, components: { py: 5_000_000_000 } },
          { ok: true, components: { py: 0.25 } },
        ],
      },
    ]);
    const requests: Uint8Array[] = [];
    const subjects = rewardSubjects("py");
    const subscriptions = [
      nc.subscribe(subjects.info, {
        callback: (_err, msg) => {
          msg.respond(info);
        },
      }),
      nc.subscribe(subjects.score, {
        callback: (_err, msg) => {
          requests.push(msg.data);
          msg.respond(outcomes);
        },
      }),
    ];
    stops.push(async () => {
      for (const subscription of subscriptions) subscription.unsubscribe();
    });
    await nc.flush();
    const module = await natsRewardModule(nc, "py");
    const items = [
      { prompt: { id: "p1", text: "Who is Zorvath?", focus: undefined }, answer: "<think></think> A painter." },
      { prompt: { id: "p2", text: "Where is Quell?" }, answer: "<think></think> North.", reference: undefined },
    ];
    expect(await module.score(items, new AbortController().signal)).toEqual([
      { ok: true, components: { py: 5_000_000_000 } },
      { ok: true, components: { py: 0.25 } },
    ]);
    // Python reads the request without extension types: the undefined fields are simply absent.
    expect(decodeWithPython(requests)).toEqual([
      {
        protocol: 1,
        items: [
          { prompt: { id: "p1", text: "Who is Zorvath?" }, answer: "<think></think> A painter." },
          { prompt: { id: "p2", text: "Where is Quell?" }, answer: "<think></think> North." },
        ],
      },
    ]);
  });

  it("names a missing service clearly and refuses bad names", async () => {
    await expect(natsRewardModule(nc, "absent")).rejects.toThrow(
      /reward service "absent": no answer on factrl.reward.absent.info/,
    );
    expect(() => rewardSubjects("a.b")).toThrow(/must match/);
  });
});
