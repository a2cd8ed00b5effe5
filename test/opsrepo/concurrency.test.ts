import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeelsonError } from '../../src/errors.ts';
import { createOrigin } from './gitFixtures.ts';
import { createHarness, type Harness } from './harness.ts';

let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(async () => {
  await h.close();
});

describe('concurrent syncs of one repo', () => {
  it('share one clone: every caller gets the same sha, and git ran once', async () => {
    const origin = createOrigin(h.tmp, 'shared-clone');
    const sha = origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'shared-clone', repo_url: origin.url });

    const results = await Promise.all(Array.from({ length: 6 }, () => h.manager.fetch(id, { force: true })));

    expect(new Set(results.map((r) => r.sha))).toEqual(new Set([sha]));
    expect(results.every((r) => r.fetched)).toBe(true);
    expect(await h.fetchCount('shared-clone')).toBe(1);
  });

  it('share one fetch on an existing checkout, with no index.lock collisions', async () => {
    const origin = createOrigin(h.tmp, 'shared-fetch');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'shared-fetch', repo_url: origin.url });
    await h.manager.fetch(id);
    const next = origin.commit({ 'a.yaml': 'b\n' });

    const settled = await Promise.allSettled(Array.from({ length: 8 }, () => h.manager.fetch(id, { force: true })));

    const failures = settled.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
    expect(failures).toEqual([]);
    const shas = settled.map((s) => (s as PromiseFulfilledResult<{ sha: string }>).value.sha);
    expect(new Set(shas)).toEqual(new Set([next]));
    expect(await h.fetchCount('shared-fetch')).toBe(2);
  });

  it('serialises different kinds of callers instead of running git twice at once', async () => {
    const origin = createOrigin(h.tmp, 'mixed');
    origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'mixed', repo_url: origin.url, sync_interval_s: 3600 });
    await h.manager.fetch(id);
    const next = origin.commit({ 'a.yaml': 'b\n' });

    // An unforced sync would skip (interval not elapsed); a forced one arriving meanwhile must
    // not be satisfied by that skip, so it runs after it, never alongside.
    const [skipped, forced, sharesForced] = await Promise.all([
      h.manager.fetch(id),
      h.manager.fetch(id, { force: true }),
      h.manager.fetch(id),
    ]);
    expect(skipped.fetched).toBe(false);
    expect(forced).toMatchObject({ sha: next, fetched: true });
    expect(sharesForced).toMatchObject({ sha: next, fetched: true });
    expect(await h.fetchCount('mixed')).toBe(2);
    expect(readFileSync(path.join(forced.dir, 'a.yaml'), 'utf8')).toBe('b\n');
  });

  it('one caller giving up does not cancel the sync another caller still waits for', async () => {
    const origin = createOrigin(h.tmp, 'one-gives-up');
    const sha = origin.commit({ 'a.yaml': 'a\n' });
    const id = await h.insertRepo({ name: 'one-gives-up', repo_url: origin.url });
    const impatient = new AbortController();
    const patient = new AbortController();
    const first = h.manager.fetch(id, { signal: impatient.signal });
    const second = h.manager.fetch(id, { signal: patient.signal });
    impatient.abort();
    await expect(first).rejects.toSatisfy((e: unknown) => e instanceof KeelsonError && e.code === 'repo_sync_aborted');
    await expect(second).resolves.toMatchObject({ sha, fetched: true });
  });

  it('syncs of different repos do not wait for each other', async () => {
    const a = createOrigin(h.tmp, 'para-a');
    const b = createOrigin(h.tmp, 'para-b');
    const shaA = a.commit({ 'a.yaml': 'a\n' });
    const shaB = b.commit({ 'b.yaml': 'b\n' });
    const idA = await h.insertRepo({ name: 'para-a', repo_url: a.url });
    const idB = await h.insertRepo({ name: 'para-b', repo_url: b.url });
    const [ra, rb] = await Promise.all([h.manager.fetch(idA), h.manager.fetch(idB)]);
    expect([ra.sha, rb.sha]).toEqual([shaA, shaB]);
    expect(ra.dir).not.toBe(rb.dir);
  });
});
