// The rollback target choice is pure: table-tested on history rows (newest first).
import { describe, expect, it } from 'vitest';
import { selectRollbackTarget, type ReleaseCandidate } from '../../src/releases/selectTarget.ts';
import { redactValues, valuesHash } from '../../src/releases/values.ts';

type Row = [id: number, action: string, status: string, image: string, sha: string | null, values: string | null];
const rows = (...list: Row[]): ReleaseCandidate[] =>
  list.reverse().map(([id, action, status, imageRef, sha, valuesHash]) => ({ id, action, status, imageRef, sha, valuesHash }));

describe('selectRollbackTarget (default)', () => {
  it.each<[string, Row[], number | null]>([
    ['nothing deployed', [], null],
    ['a single healthy deploy', [[1, 'deploy', 'succeeded', 'a:1', 'c1', 'v1']], null],
    ['healthy z:1 then healthy a:2 → z:1', [[1, 'deploy', 'succeeded', 'z:1', 'c1', 'v1'], [2, 'deploy', 'succeeded', 'a:2', 'c1', 'v1']], 1],
    ['a failed deploy after a healthy one → the healthy one', [[1, 'deploy', 'succeeded', 'a:1', 'c1', 'v1'], [2, 'deploy', 'failed', 'a:2', 'c1', 'v1']], 1],
    [
      'z:1 ok, a:2 ok, a:2 failed after a config change (new commit) → a:2 ok, not z:1',
      [[1, 'deploy', 'succeeded', 'z:1', 'c1', 'v1'], [2, 'deploy', 'succeeded', 'a:2', 'c1', 'v1'], [3, 'deploy', 'failed', 'a:2', 'c2', 'v2']],
      2,
    ],
    [
      'the same image and commit with other values (values_override changed) → differs',
      [[1, 'deploy', 'succeeded', 'z:1', 'c1', 'v1'], [2, 'deploy', 'succeeded', 'a:2', 'c1', 'v1'], [3, 'deploy', 'failed', 'a:2', 'c1', 'v2']],
      2,
    ],
    [
      'an identical healthy release is skipped (rolling back to it would change nothing)',
      [[1, 'deploy', 'succeeded', 'z:1', 'c1', 'v1'], [2, 'deploy', 'succeeded', 'a:2', 'c1', 'v1'], [3, 'deploy', 'failed', 'a:2', 'c1', 'v1']],
      1,
    ],
    ['stops are not releases: the current one is the deploy before it', [[1, 'deploy', 'succeeded', 'a:1', 'c1', 'v1'], [2, 'deploy', 'succeeded', 'a:2', 'c1', 'v1'], [3, 'stop', 'succeeded', 'a:2', 'c1', null]], 1],
    ['a superseded release is current but never a target', [[1, 'deploy', 'succeeded', 'a:1', 'c1', 'v1'], [2, 'deploy', 'superseded', 'a:2', 'c1', 'v1'], [3, 'deploy', 'failed', 'a:3', 'c1', 'v1']], 1],
    ['rows from before migration 0007 (no values hash) compare by image and commit', [[1, 'deploy', 'succeeded', 'a:1', 'c1', null], [2, 'deploy', 'failed', 'a:1', 'c1', 'v2']], null],
    ['a rollback\'s own release counts: rolling back twice goes forward again', [[1, 'deploy', 'succeeded', 'a:1', 'c1', 'v1'], [2, 'deploy', 'succeeded', 'a:2', 'c1', 'v1'], [3, 'rollback', 'succeeded', 'a:1', 'c1', 'v1']], 2],
  ])('%s', (_name, history, expected) => {
    const choice = selectRollbackTarget(rows(...history), null);
    if (expected === null) expect(choice.kind).toBe('none');
    else expect(choice).toMatchObject({ kind: 'target', release: { id: expected } });
  });
});

describe('selectRollbackTarget (explicit release)', () => {
  const history = rows([1, 'deploy', 'succeeded', 'a:1', 'c1', 'v1'], [2, 'deploy', 'failed', 'a:2', 'c1', 'v1'], [3, 'stop', 'succeeded', 'a:1', 'c1', null], [4, 'deploy', 'succeeded', 'a:3', 'c2', 'v1']);
  it.each<[string, number, ReturnType<typeof selectRollbackTarget>['kind'], number | null, RegExp | null]>([
    ['an earlier healthy release', 1, 'target', null, null],
    ['even the current one (re-render it exactly)', 4, 'target', null, null],
    ['a failed release is refused with 409', 2, 'refused', 409, /Release 2 of shop\/prod failed; only a release that went healthy/],
    ['a stop is not a release: 404', 3, 'refused', 404, /History entry 3 is not a release of shop\/prod/],
    ['an id not in this deployment\'s history (another deployment\'s): 404', 99, 'refused', 404, /History entry 99 is not a release of shop\/prod/],
  ])('%s', (_name, id, kind, status, reason) => {
    const choice = selectRollbackTarget(history, id, 'shop/prod');
    expect(choice.kind).toBe(kind);
    if (choice.kind === 'target') expect(choice.release.id).toBe(id);
    if (choice.kind === 'refused') {
      expect(choice.status).toBe(status);
      expect(choice.reason).toMatch(reason!);
    }
  });
});

describe('release values', () => {
  it('hash ignores key order and sees any change', () => {
    expect(valuesHash({ a: 1, b: { c: [1, 2] } })).toBe(valuesHash({ b: { c: [1, 2] }, a: 1 }));
    expect(valuesHash({ a: 1 })).not.toBe(valuesHash({ a: 2 }));
    expect(valuesHash({ a: 1 })).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('redacts secret-looking keys (and everything under them) and values that went into a Secret', () => {
    expect(
      redactValues({ replicas: 2, dbPassword: 'hunter2', secrets: { db: 'x', n: 3 }, env: [{ name: 'A', value: 's3cr3t-value' }], image: { tag: '1' } }, ['s3cr3t-value']),
    ).toEqual({ replicas: 2, dbPassword: '[redacted]', secrets: { db: '[redacted]', n: '[redacted]' }, env: [{ name: 'A', value: '[redacted]' }], image: { tag: '1' } });
  });
});
