/**
 * Long synchronous model work (sampling, training steps) starves the process's timers and I/O:
 * heartbeats stop, keep-alives for work in hand stop, and replies that did arrive time out because
 * the timer fires before the socket is read. Awaiting a resolved promise does not help (microtasks
 * run before I/O); `setImmediate` does.
 */
export const yieldToEventLoop = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Returns a function to await between units of work: it yields to the event loop once `everyMs`
 * have passed since the last yield, and is otherwise free.
 */
export function eventLoopYielder(everyMs = 50): () => Promise<void> | undefined {
  let last = performance.now();
  return () => {
    const now = performance.now();
    if (now - last < everyMs) return undefined;
    last = now;
    return yieldToEventLoop();
  };
}
