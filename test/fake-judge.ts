/**
 * A local chat-completions server standing in for a judge model, speaking real HTTP: it extracts one
 * claim per clause of the <SOS> sentence ("X and Y" → two), none for "well known", calls claims
 * about Mars unsupported, and fails (HTTP 500) any prompt that says "explode". It records every
 * request (auth header, model, temperature, and whether it was a verification and of which claim).
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { NO_VERIFIABLE_CLAIM } from "../rewards/index.ts";

export interface JudgeRequest {
  readonly auth?: string;
  readonly model?: string;
  readonly temperature?: number;
  /** The claim of a verification request (undefined for an extraction). */
  readonly verifies?: string;
}

export interface FakeJudge {
  /** Base URL, `http://127.0.0.1:PORT/v1`. */
  readonly url: string;
  readonly seen: JudgeRequest[];
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = "";
    req.on("data", (chunk) => {
      text += chunk;
    });
    req.on("end", () => resolve(text));
  });

export async function startFakeJudge(): Promise<FakeJudge> {
  const seen: JudgeRequest[] = [];
  const server = createServer(async (req, res) => {
    const body = JSON.parse(await readBody(req));
    const prompt: string = body.messages[0].content;
    const verifies = /^Claim: (.*)$/m.exec(prompt)?.[1];
    seen.push({
      auth: req.headers.authorization,
      model: body.model,
      temperature: body.temperature,
      ...(verifies === undefined ? {} : { verifies }),
    });
    if (req.url !== "/v1/chat/completions") return res.writeHead(404).end("no such route");
    if (prompt.includes("explode")) return res.writeHead(500).end("judge overloaded");
    let content: string;
    const marked = /Response: .*?<SOS>(.*?)<EOS>/s.exec(prompt)?.[1];
    if (marked !== undefined)
      content = marked.includes("well known")
        ? NO_VERIFIABLE_CLAIM
        : marked
            .replace(/\.$/, "")
            .split(" and ")
            .map((c) => `- ${c.trim()}.`)
            .join("\n");
    else content = /Claim: .*Mars/.test(prompt) ? "Unsupported" : "Supported.";
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id: "x",
        object: "chat.completion",
        choices: [{ index: 0, message: { role: "assistant", content } }],
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
