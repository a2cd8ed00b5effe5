// The outer bound of `keelson serve`'s shutdown (src/shutdown.ts), with fakes for what it bounds:
// a close that finishes, fails or hangs, a request during start-up, a second signal.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { createShutdown, forceBudgetMs } from '../../src/shutdown.ts';
import { sleepUntil } from '../helpers.ts';

const log = createLogger({ level: 'silent', format: 'json' });

function harness(timeoutMs: number) {
  const exits: number[] = [];
  const calls: string[] = [];
  const shutdown = createShutdown({ timeoutMs, log, exit: (code) => exits.push(code) });
  const never = () => new Promise<void>(() => {});
  const force = async () => {
    calls.push('force');
  };
  return { shutdown, exits, calls, never, force };
}

describe('createShutdown', () => {
  it('resolves with the exit code once the graceful close finished, without forcing', async () => {
    const h = harness(60_000);
    h.shutdown.handle(async () => {
      h.calls.push('close');
    }, h.force);
    expect(h.calls).toEqual([]);
    h.shutdown.request('SIGTERM');
    expect(await h.shutdown.done).toBe(0);
    expect(h.calls).toEqual(['close']);
    expect(h.exits).toEqual([]);
  });

  it('keeps a crash\'s exit code through a clean close', async () => {
    const h = harness(60_000);
    h.shutdown.handle(async () => {}, h.force);
    h.shutdown.request('uncaughtException', 1);
    expect(await h.shutdown.done).toBe(1);
  });

  it('exits 1 when the graceful close fails', async () => {
    const h = harness(60_000);
    h.shutdown.handle(async () => {
      throw new Error('pool gone');
    }, h.force);
    h.shutdown.request('SIGTERM');
    expect(await h.shutdown.done).toBe(1);
  });

  it('forces and exits 1 when the graceful close hangs past the bound', async () => {
    const h = harness(400);
    h.shutdown.handle(h.never, h.force);
    h.shutdown.request('SIGTERM');
    await sleepUntil(() => h.exits.length > 0, { message: 'watchdog exit' });
    expect(h.exits).toEqual([1]);
    expect(h.calls).toEqual(['force']);
  });

  it('exits even when the forced stop hangs too', async () => {
    const h = harness(400);
    h.shutdown.handle(h.never, h.never);
    h.shutdown.request('SIGTERM');
    await sleepUntil(() => h.exits.length > 0, { message: 'watchdog exit' });
    expect(h.exits).toEqual([1]);
  });

  it('starts the close a request made during start-up was waiting for', async () => {
    const h = harness(60_000);
    h.shutdown.request('SIGTERM');
    expect(h.shutdown.requested).toBe(true);
    h.shutdown.handle(async () => {
      h.calls.push('close');
    }, h.force);
    expect(await h.shutdown.done).toBe(0);
    expect(h.calls).toEqual(['close']);
  });

  it('exits during a start-up that hangs', async () => {
    const h = harness(400);
    h.shutdown.request('SIGTERM');
    await sleepUntil(() => h.exits.length > 0, { message: 'watchdog exit' });
    expect(h.exits).toEqual([1]);
  });

  it('a second signal forces at once', async () => {
    const h = harness(60_000);
    h.shutdown.handle(h.never, h.force);
    h.shutdown.request('SIGINT');
    expect(h.calls).toEqual([]);
    h.shutdown.request('SIGINT');
    await sleepUntil(() => h.exits.length > 0, { message: 'forced exit' });
    expect(h.exits).toEqual([1]);
    expect(h.calls).toEqual(['force']);
  });

  it.each([
    [20_000, 3000],
    [8000, 2000],
    [1000, 250],
  ])('keeps back a share of %i ms for the forced stop: %i ms', (timeoutMs, budget) => {
    expect(forceBudgetMs(timeoutMs)).toBe(budget);
  });
});
