import { describe, expect, it } from "vitest";
import { eventLoopYielder, yieldToEventLoop } from "./event-loop.ts";

describe("yielding to the event loop", () => {
  it("lets timers and I/O callbacks run, which awaiting a resolved promise does not", async () => {
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    await Promise.resolve();
    expect(ran).toBe(false);
    await yieldToEventLoop();
    expect(ran).toBe(true);
  });

  it("yields only once its interval has passed since the last yield", async () => {
    const rarely = eventLoopYielder(60_000);
    expect(rarely()).toBeUndefined();
    const always = eventLoopYielder(0);
    let ran = false;
    setImmediate(() => {
      ran = true;
    });
    const pending = always();
    expect(pending).toBeInstanceOf(Promise);
    await pending;
    expect(ran).toBe(true);
  });
});
