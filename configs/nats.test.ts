import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Effect, Either } from "effect";
import { describe, expect, it } from "vitest";
import { decodeConfig } from "./loader.ts";
import { natsConnectionOptions as asEffect, embeddedServerAuthArgs } from "./nats.ts";

const natsConnectionOptions = (...args: Parameters<typeof asEffect>) => Effect.runSync(asEffect(...args));

const nats = (section: unknown) => Either.getOrThrow(decodeConfig({ experiment: "x", nats: section })).nats;

describe("nats section → connection options", () => {
  it("maps each kind of credentials and TLS, and splits server lists", () => {
    expect(natsConnectionOptions(nats({ auth: { token: "t" } }), "nats://a:1, nats://b:2", "n")).toEqual({
      servers: ["nats://a:1", "nats://b:2"],
      name: "n",
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

  it("gives the embedded server the same token or user/password, and refuses creds/nkey for it", () => {
    expect(embeddedServerAuthArgs(nats({}))).toEqual([]);
    expect(embeddedServerAuthArgs(nats({ auth: { token: "t" } }))).toEqual(["--auth", "t"]);
    expect(embeddedServerAuthArgs(nats({ auth: { user: "u", pass: "p" } }))).toEqual(["--user", "u", "--pass", "p"]);
    expect(() => embeddedServerAuthArgs(nats({ auth: { creds: "/c.creds" } }))).toThrow(/need an external server/);
  });
});
