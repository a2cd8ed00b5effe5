import { describe, expect, it } from 'vitest';
import { maxScaleDown, newReplicaSetReplicas, resolveFenceposts, scaleDownOld } from '../../src/sim/rollout.ts';

describe('resolveFenceposts', () => {
  const cases: [number | string | undefined, number | string | undefined, number, { surge: number; unavailable: number }][] = [
    [undefined, undefined, 4, { surge: 1, unavailable: 1 }],
    [undefined, undefined, 10, { surge: 3, unavailable: 2 }], // 2.5 up, 2.5 down
    [undefined, undefined, 1, { surge: 1, unavailable: 0 }],
    ['0%', '0%', 3, { surge: 0, unavailable: 1 }], // both zero → unavailable 1
    [2, 0, 5, { surge: 2, unavailable: 0 }],
    ['50%', '50%', 3, { surge: 2, unavailable: 1 }],
  ];
  it.each(cases)('surge %j unavailable %j of %i', (surge, unavailable, replicas, expected) => {
    expect(resolveFenceposts(surge, unavailable, replicas)).toEqual(expected);
  });
});

describe('newReplicaSetReplicas', () => {
  const cases: [string, number, number, { replicas: number; available: number }, { replicas: number; available: number }[], number][] = [
    ['first step with surge 1', 4, 1, { replicas: 0, available: 0 }, [{ replicas: 4, available: 4 }], 1],
    ['at max total waits', 4, 1, { replicas: 1, available: 0 }, [{ replicas: 4, available: 4 }], 1],
    ['room after old scaled down', 4, 1, { replicas: 1, available: 1 }, [{ replicas: 3, available: 3 }], 2],
    ['never beyond spec', 4, 10, { replicas: 3, available: 3 }, [], 4],
    ['fresh deployment', 3, 1, { replicas: 0, available: 0 }, [], 3],
  ];
  it.each(cases)('%s', (_name, spec, surge, newRs, old, expected) => {
    expect(newReplicaSetReplicas(spec, surge, newRs, [newRs, ...old])).toBe(expected);
  });
});

describe('old ReplicaSet scale-down', () => {
  it('keeps availability at spec − maxUnavailable', () => {
    // 4 replicas, maxUnavailable 1: new RS has 1 (not yet available), old has 4 available: one old may go.
    expect(maxScaleDown(4, 1, { replicas: 1, available: 0 }, [{ replicas: 1, available: 0 }, { replicas: 4, available: 4 }])).toBe(1);
    expect(scaleDownOld(4, 1, { replicas: 1, available: 0 }, [{ replicas: 4, available: 4 }])).toEqual([3]);
    // Old already at 3 with the new pod unavailable: nothing more may go.
    expect(scaleDownOld(4, 1, { replicas: 2, available: 0 }, [{ replicas: 3, available: 3 }])).toEqual([3]);
    // The new pod became available: availability 5 ≥ 3 allows two more.
    expect(scaleDownOld(4, 1, { replicas: 1, available: 1 }, [{ replicas: 4, available: 4 }])).toEqual([2]);
  });

  it('removes unhealthy old replicas first', () => {
    // Budget 2: the unhealthy replica goes first, then one available (3 available − min 2).
    expect(scaleDownOld(3, 1, { replicas: 1, available: 1 }, [{ replicas: 3, available: 2 }])).toEqual([1]);
    // Budget 1 is spent on the unhealthy replica alone.
    expect(scaleDownOld(3, 1, { replicas: 1, available: 0 }, [{ replicas: 3, available: 2 }])).toEqual([2]);
  });

  it('scales the oldest ReplicaSet first', () => {
    expect(scaleDownOld(4, 2, { replicas: 4, available: 4 }, [{ replicas: 1, available: 1 }, { replicas: 2, available: 2 }])).toEqual([0, 0]);
    expect(scaleDownOld(4, 0, { replicas: 2, available: 2 }, [{ replicas: 1, available: 1 }, { replicas: 2, available: 2 }])).toEqual([0, 2]);
  });
});
