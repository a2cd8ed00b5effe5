// The list-then-watch loop against a small scripted HTTP server, for what the simulator cannot
// be told to do on cue: end a stream at a precise moment, fail a list. The last block runs it
// against the simulator, whose history is compacted between the LIST and the WATCH: a real
// server's 410 ERROR event, not a scripted one.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../src/errors.ts';
import { startResourceWatch, type ResourceWatchHandle, type WatchChange } from '../../src/kube/resourceWatch.ts';
import type { KubeObject } from '../../src/kube/types.ts';
import { createLogger } from '../../src/logger.ts';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';

const log = createLogger({ level: 'silent', format: 'json' });
const PATH = '/api/v1/namespaces/ns/configmaps';

function cm(name: string, rv: number): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', resourceVersion: String(rv) } };
}

interface Fake {
  url: string;
  lists: number;
  listStatus: number;
  watches: URLSearchParams[];
  streams: ServerResponse[];
  items: KubeObject[];
  rv: number;
  send(type: string, object: unknown): void;
  endStreams(): void;
  close(): Promise<void>;
}

async function startFake(): Promise<Fake> {
  const fake: Fake = {
    url: '',
    lists: 0,
    listStatus: 200,
    watches: [],
    streams: [],
    items: [cm('a', 1)],
    rv: 1,
    send(type, object) {
      for (const stream of fake.streams) stream.write(`${JSON.stringify({ type, object })}\n`);
    },
    endStreams() {
      for (const stream of fake.streams.splice(0)) stream.end();
    },
    close: () => new Promise((resolve) => {
      fake.endStreams();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('Content-Type', 'application/json');
    if (url.searchParams.get('watch') === 'true') {
      fake.watches.push(url.searchParams);
      res.writeHead(200);
      res.flushHeaders();
      fake.streams.push(res);
      req.on('close', () => fake.streams.splice(fake.streams.indexOf(res) >>> 0, 1));
      return;
    }
    fake.lists += 1;
    if (fake.listStatus !== 200) {
      res.writeHead(fake.listStatus);
      res.end(JSON.stringify({ kind: 'Status', code: fake.listStatus, message: 'unavailable' }));
      return;
    }
    res.end(JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: String(fake.rv) }, items: fake.items }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

describe('startResourceWatch', () => {
  let fake: Fake;
  let handle: ResourceWatchHandle | undefined;
  let seen: string[][];
  let changes: string[];
  let errors: Error[];
  let failures: number[];

  beforeEach(async () => {
    fake = await startFake();
    seen = [];
    changes = [];
    errors = [];
    failures = [];
  });

  afterEach(async () => {
    handle?.stop();
    await fake.close();
  });

  function start({ maxFailures }: { maxFailures?: number } = { maxFailures: 3 }) {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: fake.url, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    handle = startResourceWatch({
      path: PATH,
      what: 'ConfigMaps in ns',
      apiVersion: 'v1',
      kind: 'ConfigMap',
      watch: new Watch(kc),
      log,
      maxFailures,
      backoffBaseMs: 20,
      backoffMaxMs: 100,
      list: async (signal) => {
        const response = await fetch(`${fake.url}${PATH}`, { signal });
        if (!response.ok) throw Object.assign(new Error('list failed'), { statusCode: response.status });
        const body = (await response.json()) as { items: KubeObject[]; metadata: { resourceVersion: string } };
        return { items: body.items, resourceVersion: body.metadata.resourceVersion };
      },
      onChanges: (batch: readonly WatchChange[]) => {
        changes.push(...batch.map((c) => `${c.type} ${c.object.metadata.name}`));
        seen.push([...(handle?.items.keys() ?? [])].sort());
      },
      onFailure: (_error, count) => failures.push(count),
      onGiveUp: (error) => errors.push(error),
    });
  }

  it('lists, then applies watch events from the list resourceVersion', async () => {
    start();
    await sleepUntil(() => fake.streams.length === 1, { message: 'watch connected' });
    expect(fake.watches[0]?.get('resourceVersion')).toBe('1');
    expect(fake.watches[0]?.get('allowWatchBookmarks')).toBe('true');
    expect(seen[0]).toEqual(['ns/a']);
    fake.send('ADDED', cm('b', 2));
    await sleepUntil(() => seen.at(-1)?.includes('ns/b'), { message: 'b added' });
    fake.send('DELETED', cm('a', 3));
    await sleepUntil(() => seen.at(-1)?.join() === 'ns/b', { message: 'a deleted' });
  });

  it('watches again from the last resourceVersion seen when a stream ends', async () => {
    start();
    await sleepUntil(() => fake.streams.length === 1, { message: 'watch connected' });
    fake.send('MODIFIED', cm('a', 7));
    fake.send('BOOKMARK', { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '9' } });
    await sleepUntil(() => seen.length >= 2, { message: 'event seen' });
    await new Promise((resolve) => setImmediate(resolve));
    fake.endStreams();
    await sleepUntil(() => fake.watches.length === 2, { message: 'watch re-established' });
    expect(fake.watches[1]?.get('resourceVersion')).toBe('9');
    expect(fake.lists).toBe(1);
  });

  it('relists when the server reports 410 Gone', async () => {
    start();
    await sleepUntil(() => fake.streams.length === 1, { message: 'watch connected' });
    fake.items = [cm('c', 20)];
    fake.rv = 20;
    fake.send('ERROR', { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 410, reason: 'Expired', message: 'too old resource version' });
    await sleepUntil(() => fake.lists === 2, { message: 'relisted' });
    await sleepUntil(() => seen.at(-1)?.join() === 'ns/c', { message: 'state replaced by the relist' });
    await sleepUntil(() => fake.watches.length === 2, { message: 'watch from the new list' });
    expect(fake.watches[1]?.get('resourceVersion')).toBe('20');
    // The relist is reported as the changes between the old mirror and the new list.
    expect(changes).toEqual(['ADDED a', 'ADDED c', 'DELETED a']);
    expect(errors).toEqual([]);
  });

  it('keeps retrying without a failure limit, reporting each failure, and recovers', async () => {
    fake.listStatus = 503;
    start({});
    await sleepUntil(() => failures.length >= 4, { message: 'failures reported' });
    expect(failures.slice(0, 4)).toEqual([1, 2, 3, 4]);
    fake.listStatus = 200;
    await sleepUntil(() => fake.streams.length === 1, { message: 'watch connected after recovery' });
    expect(seen.at(-1)).toEqual(['ns/a']);
    expect(errors).toEqual([]);
  });

  it('gives up with a TransientError after repeated failures', async () => {
    fake.listStatus = 503;
    start();
    await sleepUntil(() => errors.length === 1, { message: 'error reported' });
    expect(errors[0]).toBeInstanceOf(TransientError);
    expect(fake.lists).toBe(3);
    expect(failures).toEqual([1, 2, 3]);
  });

  it('stops watching when stopped', async () => {
    start();
    await sleepUntil(() => fake.streams.length === 1, { message: 'watch connected' });
    handle?.stop();
    await sleepUntil(() => fake.streams.length === 0, { message: 'stream closed' });
    expect(fake.watches).toHaveLength(1);
    expect(errors).toEqual([]);
  });
});

describe('startResourceWatch against the simulator', () => {
  let sim: Simulator;
  let handle: ResourceWatchHandle | undefined;

  beforeEach(async () => {
    sim = await startSimulator({ timeScale: 20 });
  });

  afterEach(async () => {
    handle?.stop();
    await sim?.close();
  });

  const request = (path: string, init: RequestInit = {}) =>
    fetch(`${sim.url}${path}`, { ...init, headers: { authorization: `Bearer ${sim.auth.adminToken}`, 'content-type': 'application/json', ...init.headers } });

  it('relists when its watch resumes from a compacted resourceVersion (410 Expired)', async () => {
    const path = '/api/v1/namespaces/default/configmaps';
    const create = async (name: string) => expect((await request(path, { method: 'POST', body: JSON.stringify({ metadata: { name } }) })).status).toBe(201);
    await create('first');
    const kc = new KubeConfig();
    kc.loadFromString(sim.kubeconfigYaml());
    const lists: string[] = [];
    const watchedFrom: (string | null)[] = [];
    const restarts: string[] = [];
    const changes: string[] = [];
    const watch = new Watch(kc);
    const connect = watch.watch.bind(watch);
    watch.watch = (p, query, callback, done) => {
      watchedFrom.push(typeof query.resourceVersion === 'string' ? query.resourceVersion : null);
      return connect(p, query, callback, done);
    };
    let compacted = false;
    handle = startResourceWatch({
      path,
      what: 'ConfigMaps in default',
      apiVersion: 'v1',
      kind: 'ConfigMap',
      watch,
      log,
      backoffBaseMs: 20,
      list: async (signal) => {
        const body = (await (await request(path, { signal })).json()) as { items: KubeObject[]; metadata: { resourceVersion: string } };
        lists.push(body.metadata.resourceVersion);
        return { items: body.items, resourceVersion: body.metadata.resourceVersion };
      },
      // Between the first LIST and its WATCH: a change the watch would have carried, then a
      // compaction, so the listed version is too old and only a relist can find 'second'.
      beforeWatch: async () => {
        if (compacted) return;
        compacted = true;
        await create('second');
        sim.store.compact();
      },
      onRestart: (reason) => restarts.push(reason),
      onChanges: (batch) => changes.push(...batch.map((c) => `${c.type} ${c.object.metadata.name}`)),
    });
    await sleepUntil(() => watchedFrom.length >= 2, { message: 'a second watch, after the relist' });
    expect(restarts).toEqual(['expired']);
    expect(lists).toHaveLength(2);
    expect(Number(lists[1])).toBeGreaterThan(Number(lists[0]));
    // the first watch asked for the first list's version (expired); the second for the relist's
    expect(watchedFrom.slice(0, 2)).toEqual([lists[0], lists[1]]);
    expect(changes).toEqual(['ADDED first', 'ADDED second']);
    expect([...handle.items.keys()].sort()).toEqual(['default/first', 'default/second']);
  });
});
