import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeConfig } from "./loader.ts";
import { natsConnectionOptions as asEffect, embeddedServerAuthArgs } from "./nats.ts";
import { configPaths, pathFieldProblem } from "./paths.ts";

const natsConnectionOptions = (...args: Parameters<typeof asEffect>) => Effect.runSync(asEffect(...args));

const nats = (section: unknown) => Either.getOrThrow(decodeConfig({ experiment: "x", nats: section })).nats;

describe("nats section → connection options", () => {
  it("maps each kind of credentials and TLS, and splits server lists", () => {
    expect(natsConnectionOptions(nats({ auth: { token: "t" } }), "nats://a:1, nats://b:2", "n")).toEqual({
      servers: ["nats://a:1", "nats://b:2"],
      name: "n",
      replicas: 1,
      token: "t",
    });
    expect(natsConnectionOptions(nats({ auth: { user: "u", pass: "p" } }), "nats://a:1", "n")).toMatchObject({
      user: "u",
      pass: "p",
    });
    expect(natsConnectionOptions(nats({ auth: { creds: "/c.creds" } }), "nats://a:1", "n")).toMatchObject({
      credsFile: "/c.creds",
    });
    const seedFile = join(mkdtempSync(join(tmpdir(), "factrl-nkey-")), "seed");
    writeFileSync(seedFile, "SUAEXAMPLESEED\n");
    expect(natsConnectionOptions(nats({ auth: { nkey: seedFile } }), "nats://a:1", "n")).toMatchObject({
      nkeySeed: "SUAEXAMPLESEED",
    });
    expect(() => natsConnectionOptions(nats({ auth: { nkey: "/nowhere/seed" } }), "nats://a:1", "n")).toThrow(
      /cannot read \/nowhere\/seed/,
    );
    expect(natsConnectionOptions(nats({ tls: { ca: "/ca.pem" } }), "tls://a:1", "n").tls).toEqual({
      caFile: "/ca.pem",
    });
  });

  it("connects a role with its nats.roleAuth entry and its own inbox; a role without one uses nats.auth", () => {
    const dir = mkdtempSync(join(tmpdir(), "factrl-roleauth-"));
    writeFileSync(join(dir, "rollout.nk"), "SUAROLLOUTSEED\n");
    const section = nats({
      auth: { token: "shared" },
      roleAuth: { rollout: { nkey: join(dir, "rollout.nk") } },
      replicas: 3,
    });
    expect(natsConnectionOptions(section, "nats://a:1", "n", { kind: "rollout", experiment: "x" })).toEqual({
      servers: ["nats://a:1"],
      name: "n",
      replicas: 3,
      inboxPrefix: "_INBOX.factrl.x.rollout",
      nkeySeed: "SUAROLLOUTSEED",
    });
    const curator = natsConnectionOptions(section, "nats://a:1", "n", { kind: "curator", experiment: "x" });
    expect(curator).toMatchObject({ token: "shared" });
    expect(curator.inboxPrefix).toBeUndefined();
    // The file is checked by the processes that read it, before anything starts; a missing one names its field.
    const missing = Either.getOrThrow(
      decodeConfig({ experiment: "x", nats: { roleAuth: { learner: { nkey: join(dir, "learner.nk") } } } }),
    );
    const problems = (reader: "learner" | "rollout") =>
      configPaths(missing, [reader]).flatMap((field) => pathFieldProblem(field, dir) ?? []);
    expect(problems("learner")).toEqual([`nats.roleAuth.learner.nkey: no such file ${join(dir, "learner.nk")}`]);
    expect(problems("rollout")).toEqual([]);
    // A role that does not exist, and a replica count a cluster cannot have, are named with their paths.
    const bad = decodeConfig({ experiment: "x", nats: { roleAuth: { rolout: { token: "t" } }, replicas: 2 } });
    expect(Either.isLeft(bad) && bad.left.message).toMatch(/nats[^\n]*roleAuth[^\n]*rolout[\s\S]*replicas/);
  });

  it("gives the embedded server the same token or user/password, and refuses creds/nkey for it", () => {
    expect(embeddedServerAuthArgs(nats({}))).toEqual([]);
    expect(embeddedServerAuthArgs(nats({ auth: { token: "t" } }))).toEqual(["--auth", "t"]);
    expect(embeddedServerAuthArgs(nats({ auth: { user: "u", pass: "p" } }))).toEqual(["--user", "u", "--pass", "p"]);
    expect(() => embeddedServerAuthArgs(nats({ auth: { creds: "/c.creds" } }))).toThrow(/need an external server/);
  });
});
