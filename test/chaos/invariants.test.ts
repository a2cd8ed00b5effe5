// The chaos suite's invariants are pure functions: each is driven here by a table of cases,
// violations and passes alike, so a check that could never fail would show.
import { describe, expect, it } from 'vitest';
import {
  brokenChains, fatalLines, historyViolations, imageMismatches, orphanedLeases, percentile, slowExits, snapshotRegressions, unsettledRows,
  writesAfterLeaseExpiry, type HistoryFacts, type RowFacts, type TransitionFacts, type WorkloadFacts,
} from '../../bench/chaos/invariants.ts';

const row = (over: Partial<RowFacts> = {}): RowFacts => ({
  id: 'd1',
  name: 'shop/prod',
  generation: 3,
  observedGeneration: 3,
  currentStatus: 'healthy',
  currentImageRef: 'shop:3',
  desiredStatus: 'active',
  ...over,
});

const t = (seq: number, from: string | null, to: string, generation = 1, deploymentId = 'd1'): TransitionFacts => ({ deploymentId, seq, from, to, generation, at: seq * 1000 });

describe('unsettledRows', () => {
  it.each([
    ['healthy at its generation', row(), 0],
    ['failed at its generation', row({ currentStatus: 'failed' }), 0],
    ['stopped at its generation', row({ currentStatus: 'stopped' }), 0],
    ['observed behind generation', row({ observedGeneration: 2, currentStatus: 'verifying' }), 1],
    ['observed = generation but still syncing (a stale journal write)', row({ currentStatus: 'syncing' }), 1],
    ['idle at generation 0 never acted on', row({ generation: 1, observedGeneration: 0, currentStatus: 'idle' }), 1],
  ])('%s', (_name, r, expected) => {
    expect(unsettledRows([r])).toHaveLength(expected);
  });
});

describe('imageMismatches', () => {
  const w = (image: string | undefined, replicas = 1): WorkloadFacts => ({ image, replicas });
  it.each<[string, RowFacts, WorkloadFacts | undefined, number]>([
    ['healthy, same image', row(), w('shop:3'), 0],
    ['healthy, cluster runs another image (split brain)', row(), w('shop:2'), 1],
    ['healthy, but scaled to zero', row(), w('shop:3', 0), 1],
    ['stopped, scaled to zero with the same image', row({ currentStatus: 'stopped' }), w('shop:3', 0), 0],
    ['stopped, but replicas still running', row({ currentStatus: 'stopped' }), w('shop:3', 2), 1],
    ['stopped, image differs (a stop that cut a verification short)', row({ currentStatus: 'stopped' }), w('shop:4', 0), 1],
    ['healthy, no workload at all', row(), undefined, 1],
    ['failed: not compared (the failed image stays applied)', row({ currentStatus: 'failed' }), w('shop:crashloop'), 0],
    ['in flight: not compared', row({ currentStatus: 'verifying' }), w('shop:4'), 0],
  ])('%s', (_name, r, workload, expected) => {
    expect(imageMismatches([r], new Map([[r.id, workload]]))).toHaveLength(expected);
  });
});

describe('brokenChains', () => {
  it.each<[string, TransitionFacts[], number | undefined, number, number]>([
    ['one unbroken chain', [t(1, null, 'idle'), t(2, 'idle', 'syncing.fetching.running'), t(3, 'syncing.fetching.running', 'healthy')], 3, 0, 0],
    ['a gap in seq alone is no break', [t(1, null, 'idle'), t(3, 'idle', 'healthy')], 3, 0, 1],
    ['a stale actor wrote from another state', [t(1, null, 'idle'), t(2, 'idle', 'verifying'), t(3, 'applying', 'verifying')], 3, 1, 0],
    ['a start from null in the middle (snapshot lost)', [t(1, null, 'idle'), t(2, 'idle', 'healthy'), t(3, null, 'idle')], 3, 1, 0],
    ['snapshot behind the newest transition', [t(1, null, 'idle'), t(2, 'idle', 'healthy')], 1, 1, 0],
    ['no snapshot row: nothing to compare', [t(1, null, 'idle')], undefined, 0, 0],
  ])('%s', (_name, transitions, snapshot, broken, gaps) => {
    const result = brokenChains(transitions, new Map(snapshot === undefined ? [] : [['d1', snapshot]]));
    expect(result.broken).toHaveLength(broken);
    expect(result.gaps).toBe(gaps);
  });

  it('judges each deployment on its own chain', () => {
    const result = brokenChains([t(1, null, 'idle', 1, 'a'), t(1, null, 'idle', 1, 'b'), t(2, 'idle', 'healthy', 1, 'b')], new Map([['a', 1], ['b', 2]]));
    expect(result.broken).toEqual([]);
  });
});

describe('snapshotRegressions', () => {
  it.each([
    ['increasing', [1, 2, 2, 5], 0],
    ['moved backwards once', [5, 6, 5, 7], 1],
    ['single sample', [4], 0],
  ])('%s', (_name, seqs, expected) => {
    const samples = seqs.map((seq, i) => ({ deploymentId: 'd1', seq, at: i }));
    expect(snapshotRegressions(samples)).toHaveLength(expected);
  });
});

describe('historyViolations', () => {
  const h = (generation: number, action: string, status = 'succeeded', deploymentId = 'd1'): HistoryFacts => ({ deploymentId, generation, action, status });
  const deployOf = (g: number, startSeq: number): TransitionFacts[] => [
    t(startSeq, 'healthy', 'syncing.fetching.running', g),
    t(startSeq + 1, 'syncing.fetching.running', 'verifying', g),
    t(startSeq + 2, 'verifying', 'healthy', g),
  ];
  it.each<[string, TransitionFacts[], HistoryFacts[], number, number]>([
    ['one action, one row', deployOf(2, 2), [h(2, 'deploy')], 0, 0],
    ['one action, two rows of it', deployOf(2, 2), [h(2, 'deploy'), h(2, 'deploy')], 1, 0],
    ['deploy failed and auto-rollback at one generation: two actions, no duplicate', deployOf(2, 2), [h(2, 'deploy', 'failed'), h(2, 'auto-rollback')], 0, 0],
    ['an action came to rest without a history row', deployOf(2, 2), [], 0, 1],
    [
      'a superseded generation (never came to rest) needs no row',
      [t(2, 'healthy', 'syncing.fetching.running', 2), t(3, 'syncing.fetching.running', 'syncing.fetching.running', 3), t(4, 'syncing.fetching.running', 'healthy', 3)],
      [h(3, 'deploy')],
      0,
      0,
    ],
    ['a stop runs to stopped.idle', [t(2, 'healthy', 'stopped.scaling.running', 4), t(3, 'stopped.scaling.running', 'stopped.idle', 4)], [], 0, 1],
    ['nothing acted: nothing required', [t(1, null, 'idle', 0)], [], 0, 0],
  ])('%s', (_name, transitions, history, duplicated, lost) => {
    const result = historyViolations(transitions, history);
    expect(result.duplicated).toHaveLength(duplicated);
    expect(result.lost).toHaveLength(lost);
  });
});

describe('orphanedLeases', () => {
  const leases = (instance: string, n: number) => Array.from({ length: n }, (_, i) => ({ deploymentId: `${instance}-${i}`, instanceId: instance }));
  it.each<[string, ReturnType<typeof leases>, [string, number][], number]>([
    ['every lease hosted', leases('a', 3), [['a', 3]], 0],
    ['a lease without its actor', leases('a', 3), [['a', 2]], 1],
    ['leases of a process that is not running', leases('x', 2), [['a', 0]], 1],
    ['more actors than leases is no orphan (gauge from an older tick)', leases('a', 2), [['a', 3]], 0],
    ['no leases', [], [['a', 0]], 0],
  ])('%s', (_name, held, hosted, expected) => {
    expect(orphanedLeases(held, new Map(hosted))).toHaveLength(expected);
  });
});

describe('writesAfterLeaseExpiry', () => {
  const write = (at: number, client = 'a') => ({ at, client, verb: 'patch', resource: 'deployments', namespace: 'shop-prod', name: 'shop' });
  const window = { client: 'a', from: 10_000, until: 60_000 };
  it.each<[string, ReturnType<typeof write>[], number]>([
    ['writes before the cut', [write(5_000)], 0],
    ['a write within TTL + margin of the cut', [write(20_500)], 0],
    ['a write after TTL + margin', [write(21_500)], 1],
    ['several late writes: one violation naming the count', [write(25_000), write(30_000)], 1],
    ['a write after the heal', [write(61_000)], 0],
    ['another client writing during the cut', [write(30_000, 'b')], 0],
  ])('%s', (_name, writes, expected) => {
    expect(writesAfterLeaseExpiry(writes, [window], 10_000, 1_000)).toHaveLength(expected);
  });
});

describe('fatalLines and slowExits', () => {
  it.each([
    ['info and error', [{ level: 30, msg: 'x' }, { level: 50, msg: 'y' }], 0],
    ['fatal', [{ level: 60, msg: 'uncaught exception' }], 1],
    ['not JSON-levelled', [{ level: 'fatal', msg: 'z' }], 0],
  ])('%s', (_name, lines, expected) => {
    expect(fatalLines(lines, 'a')).toHaveLength(expected);
  });

  it.each<[string, number | null, number]>([
    ['exits in 2 s', 2_000, 0],
    ['exits in 25 s', 25_000, 1],
    ['never exits', null, 1],
  ])('%s', (_name, ms, expected) => {
    expect(slowExits([{ label: 'a', ms, code: 0 }], 20_000)).toHaveLength(expected);
  });
});

describe('percentile', () => {
  it.each<[number[], number, number | null]>([
    [[], 50, null],
    [[3, 1, 2], 50, 2],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9],
    [[5], 90, 5],
  ])('%j p%d = %s', (values, p, expected) => {
    expect(percentile(values, p)).toBe(expected);
  });
});
