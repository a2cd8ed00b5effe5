// An effect's signal (own state left, or the actor fenced) without AbortSignal.any's
// dependants on the long-lived fence.
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { linkSignals } from '../../src/runtime/effects.ts';

describe('linkSignals', () => {
  it('aborts with the reason of whichever aborts first', () => {
    const own = new AbortController();
    const fence = new AbortController();
    const a = linkSignals(own.signal, fence.signal);
    fence.abort(new Error('fenced'));
    own.abort(new Error('left'));
    expect((a.signal.reason as Error).message).toBe('fenced');

    const own2 = new AbortController();
    const b = linkSignals(own2.signal, new AbortController().signal);
    own2.abort(new Error('left'));
    expect(b.signal.aborted).toBe(true);
    expect((b.signal.reason as Error).message).toBe('left');
  });

  it('is aborted at once when either is aborted already', () => {
    const fence = new AbortController();
    fence.abort(new Error('fenced'));
    const linked = linkSignals(new AbortController().signal, fence.signal);
    expect(linked.signal.aborted).toBe(true);
    expect((linked.signal.reason as Error).message).toBe('fenced');
  });

  it('leaves nothing on the fence once unlinked or once its own signal aborted, however many effects ran', () => {
    const fence = new AbortController();
    for (let i = 0; i < 100; i++) linkSignals(new AbortController().signal, fence.signal).unlink();
    const own = new AbortController();
    linkSignals(own.signal, fence.signal);
    own.abort();
    expect(getEventListeners(fence.signal, 'abort')).toHaveLength(0);
    // an unlinked effect's signal no longer follows the fence
    const unlinked = linkSignals(new AbortController().signal, fence.signal);
    unlinked.unlink();
    fence.abort();
    expect(unlinked.signal.aborted).toBe(false);
  });
});
