import { describe, expect, it } from 'vitest';
import { applyConfiguration, ApplyConflictError, FieldSet, fieldSetOf, recordUpdate, type JsonObject, type ManagedFieldsEntry } from '../../src/sim/ssa.ts';

const T = '2025-01-01T00:00:00Z';
const base = (replicas: number, image: string, labels: Record<string, string> = { app: 'web' }): JsonObject => ({
  metadata: { labels },
  spec: { replicas, template: { spec: { containers: [{ name: 'web', image }] } } },
});

function apply(live: JsonObject | undefined, applied: JsonObject, managedFields: ManagedFieldsEntry[], manager: string, force = false) {
  return applyConfiguration({ live, applied, managedFields, manager, apiVersion: 'apps/v1', force, time: T });
}

describe('fieldSetOf', () => {
  it('keys lists by merge key and marks items with "."', () => {
    expect(fieldSetOf(base(1, 'nginx')).toFieldsV1()).toEqual({
      'f:metadata': { 'f:labels': { 'f:app': {} } },
      'f:spec': {
        'f:replicas': {},
        'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {}, 'f:name': {} } } } },
      },
    });
  });

  it('round-trips FieldsV1', () => {
    const set = fieldSetOf(base(1, 'nginx'));
    expect(FieldSet.fromFieldsV1(set.toFieldsV1()).toFieldsV1()).toEqual(set.toFieldsV1());
  });
});

describe('applyConfiguration', () => {
  const cases: { name: string; steps: { manager: string; applied: JsonObject; force?: boolean; conflict?: string }[]; expect: JsonObject }[] = [
    {
      name: 'the same manager changes its own fields',
      steps: [{ manager: 'a', applied: base(1, 'v1') }, { manager: 'a', applied: base(2, 'v2') }],
      expect: base(2, 'v2'),
    },
    {
      name: 'a dropped field is removed',
      steps: [{ manager: 'a', applied: base(1, 'v1', { app: 'web', team: 'x' }) }, { manager: 'a', applied: base(1, 'v1') }],
      expect: base(1, 'v1'),
    },
    {
      name: 'a dropped field co-owned by another manager stays',
      steps: [
        { manager: 'a', applied: base(1, 'v1', { app: 'web', team: 'x' }) },
        { manager: 'b', applied: { metadata: { labels: { team: 'x' } } } },
        { manager: 'a', applied: base(1, 'v1') },
      ],
      expect: base(1, 'v1', { app: 'web', team: 'x' }),
    },
    {
      name: 'another manager changing an owned field conflicts',
      steps: [{ manager: 'a', applied: base(1, 'v1') }, { manager: 'b', applied: { spec: { replicas: 3 } }, conflict: 'Apply failed with 1 conflict: conflict with "a": .spec.replicas' }],
      expect: base(1, 'v1'),
    },
    {
      name: 'force takes ownership',
      steps: [{ manager: 'a', applied: base(1, 'v1') }, { manager: 'b', applied: { spec: { replicas: 3 } }, force: true }],
      expect: base(3, 'v1'),
    },
    {
      name: 'the same value is shared without conflict',
      steps: [{ manager: 'a', applied: base(1, 'v1') }, { manager: 'b', applied: { spec: { replicas: 1 } } }],
      expect: base(1, 'v1'),
    },
    {
      name: 'container conflicts name the keyed item',
      steps: [
        { manager: 'a', applied: base(1, 'v1') },
        { manager: 'b', applied: { spec: { template: { spec: { containers: [{ name: 'web', image: 'v9' }] } } } }, conflict: '.spec.template.spec.containers[name="web"].image' },
      ],
      expect: base(1, 'v1'),
    },
    {
      name: 'keyed list items merge across managers',
      steps: [
        { manager: 'a', applied: base(1, 'v1') },
        { manager: 'b', applied: { spec: { template: { spec: { containers: [{ name: 'sidecar', image: 's' }] } } } } },
      ],
      expect: { metadata: { labels: { app: 'web' } }, spec: { replicas: 1, template: { spec: { containers: [{ name: 'web', image: 'v1' }, { name: 'sidecar', image: 's' }] } } } },
    },
  ];
  it.each(cases)('$name', ({ steps, expect: expected }) => {
    let live: JsonObject | undefined;
    let managed: ManagedFieldsEntry[] = [];
    for (const step of steps) {
      if (step.conflict) {
        expect(() => apply(live, step.applied, managed, step.manager, step.force)).toThrow(ApplyConflictError);
        expect(() => apply(live, step.applied, managed, step.manager, step.force)).toThrow(step.conflict);
        continue;
      }
      const result = apply(live, step.applied, managed, step.manager, step.force);
      live = result.object;
      managed = result.managedFields;
    }
    expect(live).toEqual(expected);
  });

  it('an Update takes ownership from the applier, who then conflicts', () => {
    const first = apply(undefined, base(1, 'v1'), [], 'a');
    const scaled = { ...first.object, spec: { ...(first.object.spec as JsonObject), replicas: 5 } };
    const managed = recordUpdate({ before: first.object, after: scaled, managedFields: first.managedFields, manager: 'kubectl', apiVersion: 'apps/v1', time: T, subresource: 'scale' });
    expect(managed.find((m) => m.manager === 'kubectl')?.fieldsV1).toEqual({ 'f:spec': { 'f:replicas': {} } });
    expect(() => apply(scaled, base(1, 'v1'), managed, 'a')).toThrow('conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas');
  });
});
