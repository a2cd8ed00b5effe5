import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/kube/rateLimiter.ts';

describe('TokenBucket.reserve', () => {
  // Each row: requests at the given times (ms) → the wait each one is told.
  const cases: Array<{ name: string; qps: number; burst: number; at: number[]; waits: number[] }> = [
    { name: 'a burst is free', qps: 10, burst: 3, at: [0, 0, 0], waits: [0, 0, 0] },
    { name: 'past the burst, one token per 1/qps', qps: 10, burst: 2, at: [0, 0, 0, 0], waits: [0, 0, 100, 200] },
    { name: 'tokens accrue while idle', qps: 10, burst: 2, at: [0, 0, 100, 100], waits: [0, 0, 0, 100] },
    { name: 'accrual stops at the burst', qps: 10, burst: 2, at: [0, 10_000, 10_000, 10_000], waits: [0, 0, 0, 100] },
    { name: 'fractional qps', qps: 0.5, burst: 1, at: [0, 0], waits: [0, 2000] },
    { name: "Flux's defaults", qps: 50, burst: 100, at: Array.from({ length: 102 }, () => 0), waits: [...Array.from({ length: 100 }, () => 0), 20, 40] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      let now = 0;
      const bucket = new TokenBucket({ qps: c.qps, burst: c.burst }, () => now);
      const waits = c.at.map((t) => {
        now = t;
        return bucket.reserve();
      });
      expect(waits).toEqual(c.waits);
    });
  }

  it('refuses a limit that can never admit a request', () => {
    expect(() => new TokenBucket({ qps: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new TokenBucket({ qps: 1, burst: 0 })).toThrow(RangeError);
  });

  it('take() ends with an AbortError when aborted while waiting', async () => {
    const bucket = new TokenBucket({ qps: 0.01, burst: 1 });
    await bucket.take();
    const controller = new AbortController();
    const waiting = bucket.take(controller.signal).catch((e: unknown) => e);
    controller.abort();
    expect(((await waiting) as Error).name).toBe('AbortError');
  });
});
