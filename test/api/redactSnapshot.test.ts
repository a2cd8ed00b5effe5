// A persisted snapshot as GET …/snapshot serves it: the values_override the actor keeps (to
// render again) redacted like values_redacted — also where it is serialized inside a string
// (the deployed spec) — and its secret strings removed from any other string.
import { describe, expect, it } from 'vitest';
import { redactSnapshotValues } from '../../src/api/redact.ts';

const SECRET = 'canary-9d3f1e77';

describe('redactSnapshotValues', () => {
  it('redacts every values_override in the context, kept whole otherwise', () => {
    const snapshot = {
      value: 'healthy',
      context: {
        desired: { imageRef: 'r/shop:2', valuesOverride: { replicas: 2, db: { password: SECRET, host: 'db2' }, apiKey: 12345678 } },
        deployed: {
          spec: JSON.stringify({ imageRef: 'r/shop:2', valuesOverride: { db: { password: SECRET } } }),
          valuesOverride: { db: { password: SECRET } },
          lastError: `render failed near ${SECRET}`,
        },
        rows: [{ values_override: { token: 'abc' } }],
      },
    };
    const out = redactSnapshotValues(snapshot) as typeof snapshot;
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(JSON.stringify(out)).not.toContain('12345678');
    expect(out.context.desired).toEqual({ imageRef: 'r/shop:2', valuesOverride: { replicas: 2, db: { password: '[redacted]', host: 'db2' }, apiKey: '[redacted]' } });
    expect(JSON.parse(out.context.deployed.spec)).toEqual({ imageRef: 'r/shop:2', valuesOverride: { db: { password: '[redacted]' } } });
    expect(out.context.deployed.lastError).toBe('render failed near [redacted]');
    // short secrets are redacted in structure, not searched for in text (they would mangle it)
    expect(out.context.rows).toEqual([{ values_override: { token: '[redacted]' } }]);
    expect(out.value).toBe('healthy');
  });

  it('leaves a snapshot without values, and strings that are not JSON, as they are', () => {
    const snapshot = { value: { syncing: 'fetching' }, context: { note: '{not json', list: [1, 'a'] } };
    expect(redactSnapshotValues(snapshot)).toEqual(snapshot);
    expect(redactSnapshotValues(null)).toBeNull();
  });
});
