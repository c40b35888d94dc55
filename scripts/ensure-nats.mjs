#!/usr/bin/env node
// Makes sure a `nats-server` binary is available before `npm start` / `npm test`.
// Order: $FACTRL_NATS_SERVER_BIN or PATH (incl. /usr/sbin) → apt-get when root on Debian/Ubuntu →
// a message saying exactly how to get one. Skipped when FACTRL_NATS_URL points at an existing server.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

const SEARCH = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/sbin"];

function findNatsServer() {
  const explicit = process.env.FACTRL_NATS_SERVER_BIN;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  for (const dir of SEARCH) {
    if (!dir) continue;
    const candidate = join(dir, "nats-server");
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

function isDebianLike() {
  try {
    const osRelease = readFileSync("/etc/os-release", "utf8");
    return /^(ID|ID_LIKE)=.*(debian|ubuntu)/m.test(osRelease);
  } catch {
    return false;
  }
}

function hint() {
  return [
    "factrl needs `nats-server` (NATS with JetStream, version 2.9 or newer) and could not find or install it.",
    "Install it with `sudo apt-get install -y nats-server` on Debian/Ubuntu, or download a release binary from",
    "https://github.com/nats-io/nats-server/releases and put it on your PATH (or set FACTRL_NATS_SERVER_BIN to its path).",
    "To use a server you already run instead, start it with JetStream enabled (`nats-server -js`) and set",
    "FACTRL_NATS_URL=nats://HOST:4222 (or pass `--nats URL` to factrl); factrl then starts no server of its own.",
  ].join("\n");
}

if (process.env.FACTRL_NATS_URL) process.exit(0);

let found = findNatsServer();
if (!found && process.platform === "linux" && process.getuid?.() === 0 && isDebianLike()) {
  console.error("factrl: nats-server not found; installing it with apt-get (Debian package `nats-server`)…");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const update = spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  const install =
    update.status === 0
      ? spawnSync("apt-get", ["install", "-y", "-qq", "nats-server"], { stdio: "inherit", env })
      : update;
  if (install.status !== 0) console.error("factrl: apt-get could not install nats-server.");
  found = findNatsServer();
}
if (!found) {
  console.error(hint());
  process.exit(1);
}
try {
  const version = execFileSync(found, ["--version"], { encoding: "utf8" }).trim();
  if (process.env.FACTRL_VERBOSE) console.error(`factrl: using ${found} (${version})`);
} catch (error) {
  console.error(`factrl: ${found} exists but does not run: ${error.message}\n${hint()}`);
  process.exit(1);
}
