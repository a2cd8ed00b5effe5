// Trees of single commits, materialised from a real local clone: exact content of the sha asked
// for (not of the moved checkout), read-only, one materialisation for concurrent callers, crash
// leftovers and old trees pruned, trees in use kept.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTreeCache } from '../../src/source/treeCache.ts';
import { createOrigin, git, removeDir, tempDir, type OriginRepo } from '../opsrepo/gitFixtures.ts';

const REPO = '00000000-0000-4000-8000-00000000000a';
let tmp: string;
let origin: OriginRepo;
let clone: string;
let first: string;
let second: string;

beforeAll(() => {
  tmp = tempDir('trees');
  origin = createOrigin(tmp, 'origin');
  first = origin.commit({ 'web/deployment.yaml': 'replicas: 1\n', 'values.yaml': 'a: 1\n', 'bin/run.sh': '#!/bin/sh\n' });
  execFileSync('ln', ['-s', 'deployment.yaml', path.join(origin.dir, 'web/link.yaml')]);
  first = origin.commit({}, 'link');
  clone = path.join(tmp, 'clone');
  execFileSync('git', ['clone', '--quiet', origin.url, clone]);
  second = origin.commit({ 'web/deployment.yaml': 'replicas: 2\n' });
  git(clone, 'fetch', '--quiet', 'origin');
  // the checkout moved on: its working tree is at `second`
  git(clone, 'reset', '--hard', '--quiet', 'origin/main');
});

afterAll(() => {
  removeDir(tmp);
});

describe('tree cache', () => {
  it('materialises exactly the commit asked for, read-only, whatever the checkout is at', async () => {
    const cache = createTreeCache({ root: path.join(tmp, 'trees-exact') });
    const tree = await cache.acquire(REPO, first, clone);
    expect(readFileSync(path.join(clone, 'web/deployment.yaml'), 'utf8')).toBe('replicas: 2\n');
    expect(readFileSync(path.join(tree.dir, 'web/deployment.yaml'), 'utf8')).toBe('replicas: 1\n');
    expect(readFileSync(path.join(tree.dir, 'values.yaml'), 'utf8')).toBe('a: 1\n');
    expect(readlinkSync(path.join(tree.dir, 'web/link.yaml'))).toBe('deployment.yaml');
    expect(existsSync(path.join(tree.dir, '.git'))).toBe(false);
    expect(statSync(path.join(tree.dir, 'web/deployment.yaml')).mode & 0o777).toBe(0o444);
    expect(statSync(path.join(tree.dir, 'web')).mode & 0o777).toBe(0o555);
    expect(statSync(tree.dir).mode & 0o777).toBe(0o555);
    tree.release();
  });

  it('materialises a sha once for concurrent callers', async () => {
    const cache = createTreeCache({ root: path.join(tmp, 'trees-concurrent') });
    const trees = await Promise.all(Array.from({ length: 6 }, () => cache.acquire(REPO, second, clone)));
    expect(new Set(trees.map((t) => t.dir)).size).toBe(1);
    expect(cache.stats().materialised).toBe(1);
    // a later caller finds it on disk
    (await cache.acquire(REPO, second, clone)).release();
    expect(cache.stats().materialised).toBe(1);
    expect(readFileSync(path.join(trees[0]!.dir, 'web/deployment.yaml'), 'utf8')).toBe('replicas: 2\n');
    for (const tree of trees) tree.release();
  });

  it('refuses a commit the clone does not have as terminal source_commit_missing', async () => {
    const cache = createTreeCache({ root: path.join(tmp, 'trees-missing') });
    await expect(cache.acquire(REPO, 'f'.repeat(40), clone)).rejects.toMatchObject({ code: 'source_commit_missing', kind: 'terminal' });
    await expect(cache.acquire(REPO, '../../etc', clone)).rejects.toMatchObject({ code: 'source_commit_missing' });
  });

  it('prunes leftovers of a killed materialisation and trees past the limits, never one in use', async () => {
    let now = Date.now();
    const root = path.join(tmp, 'trees-prune');
    const cache = createTreeCache({ root, maxTrees: 1, maxAgeMs: 60_000, pruneIntervalMs: Number.POSITIVE_INFINITY, now: () => now });
    const old = await cache.acquire(REPO, first, clone);
    old.release();
    now += 1000;
    const held = await cache.acquire(REPO, second, clone);
    // a process killed mid-way left a temp dir
    const leftover = path.join(root, REPO, `.tmp.${first}.abc123`);
    mkdirSync(leftover);
    writeFileSync(path.join(leftover, 'half.yaml'), 'x');

    const removed = await cache.prune();
    // beyond maxTrees (1) the least recently used goes; the newest is kept (and in use)
    expect(removed.sort()).toEqual([leftover, old.dir].sort());
    expect(existsSync(old.dir)).toBe(false);
    expect(existsSync(held.dir)).toBe(true);

    // past maxAge, but in use: kept until released
    now += 120_000;
    expect(await cache.prune()).toEqual([]);
    held.release();
    expect(await cache.prune()).toEqual([held.dir]);
    expect(existsSync(held.dir)).toBe(false);
    // gone trees come back on demand
    const again = await cache.acquire(REPO, first, clone);
    expect(readFileSync(path.join(again.dir, 'web/deployment.yaml'), 'utf8')).toBe('replicas: 1\n');
    again.release();
  });
});
