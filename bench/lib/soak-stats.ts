/** The soak bench's arithmetic (bench/soak.ts): pure, unit-tested in soak-stats.test.ts. */

/** Least-squares line y = intercept + slope·x through the points; slope NaN with fewer than two distinct x. */
export function linearFit(points: readonly (readonly [number, number])[]): { slope: number; intercept: number } {
  const n = points.length;
  const meanX = points.reduce((s, [x]) => s + x, 0) / n;
  const meanY = points.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - meanX) * (y - meanY);
    sxx += (x - meanX) ** 2;
  }
  const slope = sxx === 0 ? Number.NaN : sxy / sxx;
  return { slope, intercept: meanY - slope * meanX };
}

/** One sample of one process: minutes since the soak started, resident memory (MB) and open descriptors. */
export interface ProcessSample {
  readonly minute: number;
  readonly rssMb: number;
  readonly fds: number;
}

/** What the soak reports per process, from its samples taken after the warm-up. */
export interface ProcessTrend {
  /** Memory slope from a linear fit, MB per minute. */
  readonly rssSlopeMbPerMin: number;
  readonly rssFirstMb: number;
  readonly rssLastMb: number;
  readonly rssMaxMb: number;
  /** Open descriptors: last minus first after the warm-up, and the most seen. */
  readonly fdGrowth: number;
  readonly fdMax: number;
  readonly samples: number;
}

export function processTrend(samples: readonly ProcessSample[], warmupMinutes: number): ProcessTrend | undefined {
  const steady = samples.filter((s) => s.minute >= warmupMinutes);
  if (steady.length < 2) return undefined;
  return {
    rssSlopeMbPerMin: linearFit(steady.map((s) => [s.minute, s.rssMb])).slope,
    rssFirstMb: steady[0]!.rssMb,
    rssLastMb: steady.at(-1)!.rssMb,
    rssMaxMb: Math.max(...steady.map((s) => s.rssMb)),
    fdGrowth: steady.at(-1)!.fds - steady[0]!.fds,
    fdMax: Math.max(...steady.map((s) => s.fds)),
    samples: steady.length,
  };
}
