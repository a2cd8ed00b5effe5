// src/plans: the plan cache's handles, hashes and bounds, and the Secret redaction helpers,
// table-driven where the logic is pure.
import { describe, expect, it } from 'vitest';
import { createPlanCache, planHash } from '../../src/plans/planCache.ts';
import { REDACTED, redactSecretObjects, scrubText, secretValues } from '../../src/plans/secrets.ts';
import type { KubeObject } from '../../src/kube/types.ts';

const cm = (name: string, data: Record<string, string> = { a: 'b' }): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'shop-prod' }, data });
const secret = (fields: { data?: Record<string, string>; stringData?: Record<string, string> }): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'db', namespace: 'shop-prod' },
  ...fields,
});
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('plan cache', () => {
  it('hands out a handle with the content hash, refs and count, and the objects by that handle', () => {
    const plans = createPlanCache();
    const objects = [cm('one'), secret({ stringData: { password: 'hunter2-hunter2' } })];
    const handle = plans.put(objects);
    expect(handle).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      hash: planHash(objects),
      refs: [
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'one', namespace: 'shop-prod' },
        { apiVersion: 'v1', kind: 'Secret', name: 'db', namespace: 'shop-prod' },
      ],
      count: 2,
    });
    expect(JSON.stringify(handle)).not.toContain('hunter2');
    expect(plans.get(handle)).toBe(objects);
    // same content, same hash; other content, another
    expect(planHash(structuredClone(objects))).toBe(handle.hash);
    expect(planHash([cm('one', { a: 'c' })])).not.toBe(planHash([cm('one')]));
    plans.delete(handle);
    expect(plans.get(handle)).toBeUndefined();
    expect(plans.size()).toEqual({ plans: 0, bytes: 0 });
  });

  it.each([
    ['no handle', null],
    ['an unknown id (another process rendered it)', { id: 'elsewhere', hash: 'x', refs: [], count: 0 }],
  ])('misses for %s', (_name, handle) => {
    expect(createPlanCache().get(handle)).toBeUndefined();
  });

  it('misses when the handle\'s hash is not the held content\'s', () => {
    const plans = createPlanCache();
    const handle = plans.put([cm('one')]);
    expect(plans.get({ ...handle, hash: planHash([cm('two')]) })).toBeUndefined();
  });

  it('evicts the oldest plans beyond its plan bound', () => {
    const plans = createPlanCache({ maxPlans: 2 });
    const [a, b, c] = [plans.put([cm('a')]), plans.put([cm('b')]), plans.put([cm('c')])];
    expect([plans.get(a), plans.get(b), plans.get(c)].map((o) => o?.[0]?.metadata.name)).toEqual([undefined, 'b', 'c']);
  });

  it('evicts the oldest plans beyond its byte bound, but always keeps the newest', () => {
    const size = JSON.stringify([cm('a', { x: 'y'.repeat(1000) })]).length;
    const plans = createPlanCache({ maxBytes: size * 2 + 10 });
    const handles = ['a', 'b', 'c'].map((name) => plans.put([cm(name, { x: 'y'.repeat(1000) })]));
    expect(handles.map((h) => plans.get(h) !== undefined)).toEqual([false, true, true]);
    expect(plans.size().bytes).toBeLessThanOrEqual(size * 2 + 10);
    const huge = plans.put([cm('huge', { x: 'y'.repeat(100_000) })]);
    expect(plans.get(huge)).toBeDefined();
    expect(plans.size().plans).toBe(1);
  });
});

describe('secret values and scrubbing', () => {
  it.each([
    ['stringData: plain and base64', [secret({ stringData: { password: 'p4ssw0rd!' } })], ['p4ssw0rd!', b64('p4ssw0rd!')]],
    ['data: base64 and decoded', [secret({ data: { token: b64('t0k3n-value') } })], [b64('t0k3n-value'), 't0k3n-value']],
    ['short values are left alone', [secret({ stringData: { a: 'x' } })], [b64('x')]],
    ['not a Secret', [cm('c', { password: 'visible-config' })], []],
    ['non-string values are skipped', [{ kind: 'Secret', stringData: { n: 5 } }], []],
  ] as Array<[string, unknown[], string[]]>)('%s', (_name, objects, expected) => {
    expect(secretValues(objects).sort()).toEqual([...expected].sort());
  });

  it('scrubs every value from a message, longest first', () => {
    const values = secretValues([secret({ stringData: { password: 'p4ssw0rd!' } })]);
    const message = `Secret "db" is invalid: stringData[password]: Invalid value: "p4ssw0rd!" (${b64('p4ssw0rd!')})`;
    const scrubbed = scrubText(message, values);
    expect(scrubbed).toBe(`Secret "db" is invalid: stringData[password]: Invalid value: "${REDACTED}" (${REDACTED})`);
    expect(scrubText('nothing to hide', values)).toBe('nothing to hide');
  });
});

describe('redactSecretObjects', () => {
  it('replaces each Secret value by a content hash, anywhere in a JSON value, and leaves the rest', () => {
    const input = {
      context: { work: { rendered: [cm('c'), secret({ data: { token: b64('t0k3n-value') }, stringData: { password: 'p4ssw0rd!' } })] } },
      other: { kind: 'Secret', data: 'not an object' },
    };
    const out = redactSecretObjects(input) as typeof input;
    const text = JSON.stringify(out);
    expect(text).not.toContain('p4ssw0rd!');
    expect(text).not.toContain(b64('t0k3n-value'));
    const redacted = out.context.work.rendered[1] as unknown as { data: Record<string, string>; stringData: Record<string, string> };
    expect(redacted.data.token).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(redacted.stringData.password).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(out.context.work.rendered[0]).toEqual(cm('c'));
    expect(out.other).toEqual({ kind: 'Secret', data: 'not an object' });
    // same value, same hash: a reader can tell which keys changed
    expect((redactSecretObjects(secret({ stringData: { password: 'p4ssw0rd!' } })) as typeof redacted).stringData.password).toBe(redacted.stringData.password);
  });
});
