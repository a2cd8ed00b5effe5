import { describe, expect, it } from 'vitest';
import type { DriftedObject } from '../../src/kube/kubeClient.ts';
import { describeDrift } from '../../src/runtime/driftReport.ts';

const ref = (kind: string, name: string) => ({ apiVersion: 'v1', kind, name, namespace: 'shop-prod' });
const changed = (name: string, paths: string[]): DriftedObject => ({ ref: ref('Deployment', name), reason: 'changed', paths });

describe('describeDrift', () => {
  it.each<[string, DriftedObject[], string]>([
    ['a changed field', [changed('web', ['.spec.replicas'])], 'Deployment web changed (.spec.replicas)'],
    ['a missing object', [{ ref: ref('Service', 'web'), reason: 'missing', paths: [] }], 'Service web missing from the cluster'],
    ['several objects', [changed('web', ['.a', '.b']), { ref: ref('Service', 'web'), reason: 'missing', paths: [] }], 'Deployment web changed (.a, .b); Service web missing from the cluster'],
    ['many paths', [changed('web', ['.a', '.b', '.c', '.d', '.e', '.f', '.g'])], 'Deployment web changed (.a, .b, .c, .d, .e and 2 more)'],
  ])('%s', (_name, drifted, expected) => {
    expect(describeDrift(drifted)).toBe(expected);
  });

  it('is bounded: many objects are counted, long paths cut', () => {
    const many = Array.from({ length: 12 }, (_, i) => changed(`w${i}`, ['.x']));
    expect(describeDrift(many)).toMatch(/; 2 more object\(s\)$/);
    const long = describeDrift(Array.from({ length: 10 }, (_, i) => changed(`w${i}`, ['.'.padEnd(300, 'x')])));
    expect(long).toHaveLength(1000);
    expect(long.endsWith('…')).toBe(true);
  });
});
