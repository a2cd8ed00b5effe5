// The deployment page's pure release helpers, table-tested as the browser loads them
// (src/ui/static/*.js): the values diff between two releases, which rows are the current and
// previous release, the inventory by namespace, the marks of a history row and the rollback
// command (quoted: names reach the page from SQL writers).
import { describe, expect, it } from 'vitest';
import { currentAndPrevious, groupInventory, historyMarks, rollbackCommand, shellWord, transitionMarks } from '../../src/ui/static/release.js';
import { diffValues, joinPath, showValue } from '../../src/ui/static/valuesDiff.js';

describe('diffValues', () => {
  const cases: Array<[string, unknown, unknown, ReturnType<typeof diffValues>]> = [
    ['equal values', { a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 2] } }, []],
    ['a changed scalar', { replicas: 2 }, { replicas: 3 }, [{ path: 'replicas', change: 'changed', before: 2, after: 3 }]],
    ['added and removed keys, sorted by path', { old: 'x', keep: 1 }, { keep: 1, fresh: true },
      [{ path: 'fresh', change: 'added', after: true }, { path: 'old', change: 'removed', before: 'x' }]],
    ['nested paths', { image: { tag: '1', repo: 'r' } }, { image: { tag: '2', repo: 'r' } },
      [{ path: 'image.tag', change: 'changed', before: '1', after: '2' }]],
    ['a whole branch added is one change', { a: 1 }, { a: 1, ingress: { host: 'h', tls: true } },
      [{ path: 'ingress', change: 'added', after: { host: 'h', tls: true } }]],
    ['arrays index by index', { hosts: ['a', 'b'] }, { hosts: ['a', 'c', 'd'] },
      [{ path: 'hosts[1]', change: 'changed', before: 'b', after: 'c' }, { path: 'hosts[2]', change: 'added', after: 'd' }]],
    ['a shrinking array', { hosts: ['a', 'b'] }, { hosts: ['a'] }, [{ path: 'hosts[1]', change: 'removed', before: 'b' }]],
    ['a type change is one change', { r: { x: 1 } }, { r: 'flat' }, [{ path: 'r', change: 'changed', before: { x: 1 }, after: 'flat' }]],
    ['object to array', { r: {} }, { r: [] }, [{ path: 'r', change: 'changed', before: {}, after: [] }]],
    ['null to a value', { r: null }, { r: 0 }, [{ path: 'r', change: 'changed', before: null, after: 0 }]],
    ['keys that are not names are quoted', { annotations: { 'team.example/owner': 'a' } }, { annotations: { 'team.example/owner': 'b' } },
      [{ path: 'annotations["team.example/owner"]', change: 'changed', before: 'a', after: 'b' }]],
    ['a redacted secret reads the same on both sides', { db: { password: '[redacted]' } }, { db: { password: '[redacted]' } }, []],
    ['no previous values: everything added', null, { a: 1 }, [{ path: 'a', change: 'added', after: 1 }]],
    ['values gone: everything removed', { a: 1 }, undefined, [{ path: 'a', change: 'removed', before: 1 }]],
    ['non-object roots', 1, 2, [{ path: '(all values)', change: 'changed', before: 1, after: 2 }]],
  ];
  it.each(cases)('%s', (_name, before, after, expected) => {
    expect(diffValues(before, after)).toEqual(expected);
  });

  it('joins paths so that different keys never read the same', () => {
    expect(joinPath('', 'a')).toBe('a');
    expect(joinPath('a', 'b')).toBe('a.b');
    expect(joinPath('a', 0)).toBe('a[0]');
    expect(joinPath('a', 'b.c')).toBe('a["b.c"]');
    expect(joinPath('a', '0')).toBe('a["0"]');
    expect(joinPath('', '')).toBe('[""]');
  });

  it('shows a value on one short line', () => {
    expect(showValue('x')).toBe('"x"');
    expect(showValue(undefined)).toBe('–');
    expect(showValue({ a: 'y'.repeat(500) }, 20)).toHaveLength(20);
  });
});

describe('release rows', () => {
  const row = (id: number, action: string, status: string, triggered_by = 'keelson') => ({ id, action, status, triggered_by });

  it('the current release is the newest succeeded release; the previous the next one', () => {
    const items = [row(9, 'stop', 'succeeded'), row(8, 'deploy', 'failed'), row(7, 'deploy', 'superseded'), row(6, 'rollback', 'succeeded'), row(5, 'teardown', 'succeeded'), row(4, 'deploy', 'succeeded')];
    const { current, previous } = currentAndPrevious(items);
    expect(current?.id).toBe(6);
    expect(previous?.id).toBe(4);
    expect(currentAndPrevious([row(1, 'deploy', 'succeeded')])).toEqual({ current: row(1, 'deploy', 'succeeded'), previous: null });
    expect(currentAndPrevious([])).toEqual({ current: null, previous: null });
  });

  it.each([
    [row(1, 'deploy', 'succeeded', 'drift: ops repo moved to abc'), ['drift-repair']],
    [row(1, 'deploy', 'failed', 'drift'), ['drift-repair']],
    [row(1, 'deploy', 'succeeded', 'keelson'), []],
    [row(1, 'deploy', 'succeeded', 'api: token ci'), []],
    [row(1, 'teardown', 'succeeded'), ['teardown']],
    [row(1, 'deploy', 'superseded'), ['superseded']],
    [row(1, 'auto-rollback', 'superseded'), ['rollback', 'superseded']],
    [row(1, 'stop', 'succeeded', 'drift: x'), []],
  ])('marks %j with %j', (item, marks) => {
    expect(historyMarks(item)).toEqual(marks);
  });

  it('offers the rollback command only for a succeeded release, quoted for the shell', () => {
    expect(rollbackCommand('shop', 'prod', row(42, 'deploy', 'succeeded'))).toBe('keelson rollback shop prod --release 42');
    expect(rollbackCommand('shop', 'prod', row(42, 'rollback', 'succeeded'))).toBe('keelson rollback shop prod --release 42');
    expect(rollbackCommand('shop', 'prod', row(42, 'deploy', 'failed'))).toBeNull();
    expect(rollbackCommand('shop', 'prod', row(42, 'deploy', 'superseded'))).toBeNull();
    expect(rollbackCommand('shop', 'prod', row(42, 'stop', 'succeeded'))).toBeNull();
    expect(rollbackCommand('shop', 'prod', row(42, 'teardown', 'succeeded'))).toBeNull();
    expect(rollbackCommand('shop', "x'; rm -rf ~", row(1, 'deploy', 'succeeded'))).toBe("keelson rollback shop 'x'\\''; rm -rf ~' --release 1");
    expect(shellWord('$(id)')).toBe("'$(id)'");
    expect(shellWord('')).toBe("''");
  });

  it('groups the inventory by namespace, cluster-scoped first', () => {
    const groups = groupInventory([
      { apiVersion: 'v1', kind: 'Service', name: 'web', namespace: 'shop-prod' },
      { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: 'shop-prod' },
      { apiVersion: 'v1', kind: 'Namespace', name: 'shop-prod' },
      { apiVersion: 'v1', kind: 'ConfigMap', name: 'a', namespace: 'monitoring' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: 'shop', namespace: '' },
    ]);
    expect(groups.map((g) => g.namespace)).toEqual([null, 'monitoring', 'shop-prod']);
    expect(groups[0]?.objects.map((o) => o.kind)).toEqual(['ClusterRole', 'Namespace']);
    expect(groups[2]?.objects.map((o) => o.kind)).toEqual(['Deployment', 'Service']);
    expect(groupInventory(null)).toEqual([]);
  });

  it('marks a transition by its action\'s history row, or by the step while in flight', () => {
    const byAction = new Map([['a1', row(1, 'deploy', 'succeeded', 'drift: ops repo at abc')], ['a2', row(2, 'deploy', 'superseded')], ['a3', row(3, 'rollback', 'succeeded')]]);
    const step = (action_id: string | null, from_state: string | null, to_state: string) => ({ action_id, from_state, to_state });
    expect(transitionMarks(step('a1', 'syncing.fetching', 'applying.running'), byAction)).toEqual(['drift-repair']);
    expect(transitionMarks(step('a2', 'applying', 'syncing'), byAction)).toEqual(['superseded']);
    expect(transitionMarks(step('a3', 'rolling-back', 'healthy'), byAction)).toEqual([]);
    expect(transitionMarks(step('a9', 'healthy.checking', 'syncing.fetching.running'), byAction)).toEqual(['drift-repair']);
    expect(transitionMarks(step('a9', 'healthy.waiting', 'syncing.fetching.running'), byAction)).toEqual([]);
    expect(transitionMarks(step('a9', 'healthy.waiting', 'tearing-down.running'), byAction)).toEqual(['teardown']);
    expect(transitionMarks(step(null, null, 'idle'), byAction)).toEqual([]);
  });
});
