// The simulated controllers' queues and the store's indexes: pure pieces, table-driven.
import { describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/sim/apiserver.ts';
import { SimClock } from '../../src/sim/clock.ts';
import { EventRecorder } from '../../src/sim/controllers/events.ts';
import { TimerQueue, WorkQueue } from '../../src/sim/controllers/queue.ts';
import { typeOf } from '../../src/sim/resources.ts';
import { Store, type KObject } from '../../src/sim/store.ts';

describe('WorkQueue', () => {
  const cases: [string, string[], string[]][] = [
    ['empty', [], []],
    ['one key', ['a'], ['a']],
    ['a key queued twice is worked on once, at its first place', ['a', 'b', 'a', 'c', 'b'], ['a', 'b', 'c']],
  ];
  it.each(cases)('%s', (_name, added, taken) => {
    const q = new WorkQueue<string>();
    for (const k of added) q.add(k);
    expect(q.size).toBe(taken.length);
    expect(q.take()).toEqual(taken);
    expect(q.size).toBe(0);
    expect(q.take()).toEqual([]);
  });

  it('queues a key again when it is added while the taken keys are worked on', () => {
    const q = new WorkQueue<string>();
    q.add('a');
    for (const k of q.take()) q.add(k);
    expect(q.take()).toEqual(['a']);
  });
});

describe('TimerQueue', () => {
  // [name, schedule [key, at][], now, due keys, next due after]
  const cases: [string, [string, number][], number, string[], number | undefined][] = [
    ['nothing scheduled', [], 100, [], undefined],
    ['nothing due yet', [['a', 50]], 10, [], 50],
    ['due at exactly now', [['a', 50]], 50, ['a'], undefined],
    ['earliest first', [['c', 30], ['a', 10], ['b', 20], ['d', 40]], 30, ['a', 'b', 'c'], 40],
    ['a key keeps its earliest time', [['a', 50], ['a', 10], ['a', 70]], 20, ['a'], undefined],
    ['a later time does not delay an earlier one', [['a', 10], ['a', 90]], 10, ['a'], undefined],
    ['many keys', Array.from({ length: 100 }, (_, i): [string, number] => [`k${(i * 37) % 100}`, (i * 37) % 100]), 4, ['k0', 'k1', 'k2', 'k3', 'k4'], 5],
  ];
  it.each(cases)('%s', (_name, scheduled, now, due, next) => {
    const q = new TimerQueue<string>();
    for (const [key, at] of scheduled) q.schedule(key, at);
    expect(q.popDue(now)).toEqual(due);
    expect(q.next).toBe(next);
    expect(q.popDue(now)).toEqual([]);
  });

  it('schedules a key again after it was due', () => {
    const q = new TimerQueue<string>();
    q.schedule('a', 10);
    expect(q.popDue(10)).toEqual(['a']);
    q.schedule('a', 20);
    expect(q.size).toBe(1);
    expect(q.popDue(15)).toEqual([]);
    expect(q.popDue(20)).toEqual(['a']);
    expect(q.size).toBe(0);
  });
});

describe('Store indexes', () => {
  const pod = (ns: string, name: string, uid: string, owners: string[] = []): KObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, uid, ...(owners.length ? { ownerReferences: owners.map((o) => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: o, uid: o, controller: true })) } : {}) },
  });
  const names = (objects: KObject[] | [unknown, KObject][]) => objects.map((o) => (Array.isArray(o) ? o[1] : o).metadata.name);

  it('lists a namespace, finds dependents and uids, and follows updates and deletions', () => {
    const store = new Store();
    const Pod = typeOf('Pod');
    store.put(Pod, pod('b', 'p2', 'u2', ['rs1']));
    store.put(Pod, pod('a', 'p1', 'u1', ['rs1']));
    store.put(Pod, pod('a', 'p0', 'u0', ['rs2']));
    const cases: [string, () => unknown, unknown][] = [
      ['namespace a, by name', () => names(store.list(Pod, 'a')), ['p0', 'p1']],
      ['every namespace, by namespace then name', () => names(store.list(Pod)), ['p0', 'p1', 'p2']],
      ['dependents of rs1', () => names(store.dependents('rs1')).sort(), ['p1', 'p2']],
      ['a uid is known', () => store.hasUid('u1'), true],
      ['what is in namespace b', () => names(store.inNamespace('b')), ['p2']],
      ['located by uid', () => store.locate('u0')?.[1].metadata.name, 'p0'],
    ];
    for (const [name, read, expected] of cases) expect(read(), name).toEqual(expected);

    store.put(Pod, pod('a', 'p1', 'u1', ['rs2'])); // re-owned
    store.remove(Pod, 'b', 'p2');
    const after: [string, () => unknown, unknown][] = [
      ['rs1 owns nothing', () => store.dependents('rs1'), []],
      ['rs2 owns both', () => names(store.dependents('rs2')).sort(), ['p0', 'p1']],
      ['namespace b is empty', () => store.list(Pod, 'b'), []],
      ['a removed uid is gone', () => [store.hasUid('u2'), store.locate('u2')], [false, undefined]],
      ['nothing left in b', () => store.inNamespace('b'), []],
    ];
    for (const [name, read, expected] of after) expect(read(), name).toEqual(expected);
  });
});

describe('a strategic-merge PATCH', () => {
  it('keeps the uid the owner index and the garbage collector key on', () => {
    const api = new ApiServer(new Store(), new SimClock());
    api.create(typeOf('Namespace'), undefined, { metadata: { name: 'x' } }, { manager: 'test' });
    const created = api.create(typeOf('ConfigMap'), 'x', { metadata: { name: 'c' }, data: { a: '1' } }, { manager: 'test' });
    const { object } = api.patch(typeOf('ConfigMap'), 'x', 'c', 'application/strategic-merge-patch+json', JSON.stringify({ data: { a: '2' } }), { manager: 'test' });
    expect(object.data).toEqual({ a: '2' });
    expect(object.metadata.uid).toBe(created.metadata.uid);
    expect(api.store.hasUid(created.metadata.uid!)).toBe(true);
  });
});

describe('EventRecorder', () => {
  const cases: [string, number, number, number][] = [
    ['under capacity keeps all', 5, 3, 3],
    ['over capacity keeps the newest', 3, 10, 3],
    ['far over capacity, many times', 2, 25, 2],
  ];
  it.each(cases)('%s', (_name, capacity, recorded, kept) => {
    const store = new Store();
    const api = new ApiServer(store, new SimClock());
    api.create(typeOf('Namespace'), undefined, { metadata: { name: 'x' } }, { manager: 'test' });
    const pod = api.create(typeOf('ConfigMap'), 'x', { metadata: { name: 'c' } }, { manager: 'test' });
    const recorder = new EventRecorder(store, api.clock, capacity);
    for (let i = 0; i < recorded; i++) recorder.record(pod, 'Normal', 'Test', `event ${i}`, { component: 'test' });
    const events = store.list(typeOf('Event'), 'x');
    expect(events).toHaveLength(kept);
    expect(events.map((e) => e.message).sort()).toEqual(Array.from({ length: kept }, (_, i) => `event ${recorded - kept + i}`).sort());
    expect(events[0]).toMatchObject({ involvedObject: { kind: 'ConfigMap', name: 'c', namespace: 'x', uid: pod.metadata.uid }, reason: 'Test', type: 'Normal', count: 1, source: { component: 'test' } });
  });

  it('records nothing in a namespace that is gone or terminating', () => {
    const store = new Store();
    const api = new ApiServer(store, new SimClock());
    const recorder = new EventRecorder(store, api.clock);
    recorder.record({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'nowhere', uid: 'u' } }, 'Normal', 'Test', 'm', { component: 'test' });
    expect(store.list(typeOf('Event'))).toEqual([]);
  });
});
