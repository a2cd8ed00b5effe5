import { describe, expect, it } from 'vitest';
import { decideOwnership, refusalMessage, stampLabels } from '../../src/kube/ownership.ts';
import type { KubeObject } from '../../src/kube/types.ts';

function cm(labels?: Record<string, string>, extra: { annotations?: Record<string, string>; managers?: string[] } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'settings',
      namespace: 'shop',
      ...(labels ? { labels } : {}),
      ...(extra.annotations ? { annotations: extra.annotations } : {}),
      ...(extra.managers ? { managedFields: extra.managers.map((manager) => ({ manager, operation: 'Update' })) } : {}),
    },
  };
}

const ours = { 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': 'd1' };
const theirs = { 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': 'd2' };
const adopt = { annotations: { 'keelson.dev/adopt': 'true' } };

describe('decideOwnership', () => {
  const cases: Array<{ name: string; desired: KubeObject; live: KubeObject | undefined; allowAdopt: boolean; expected: ReturnType<typeof decideOwnership> }> = [
    { name: 'absent: create', desired: cm(), live: undefined, allowAdopt: false, expected: { verdict: 'create' } },
    { name: 'labelled for this deployment: owned', desired: cm(), live: cm(ours), allowAdopt: false, expected: { verdict: 'owned' } },
    {
      name: 'managed by keelson for no deployment (a namespace it created): owned',
      desired: cm(),
      live: cm({ 'app.kubernetes.io/managed-by': 'keelson' }),
      allowAdopt: false,
      expected: { verdict: 'owned' },
    },
    { name: "another deployment's: refused, naming it", desired: cm(), live: cm(theirs), allowAdopt: false, expected: { verdict: 'refused', owner: 'keelson deployment d2' } },
    {
      name: 'not created by keelson: refused, naming the field managers',
      desired: cm(),
      live: cm({ app: 'x' }, { managers: ['kubectl-client-side-apply', 'helm', 'helm'] }),
      allowAdopt: false,
      expected: { verdict: 'refused', owner: 'field managers kubectl-client-side-apply, helm' },
    },
    { name: 'no labels, no managers', desired: cm(), live: cm(), allowAdopt: false, expected: { verdict: 'refused', owner: 'no recorded field manager' } },
    { name: 'adoption asked but not allowed', desired: cm(undefined, adopt), live: cm(theirs), allowAdopt: false, expected: { verdict: 'refused', owner: 'keelson deployment d2' } },
    { name: 'adoption allowed but not asked', desired: cm(), live: cm(theirs), allowAdopt: true, expected: { verdict: 'refused', owner: 'keelson deployment d2' } },
    { name: 'adoption asked and allowed', desired: cm(undefined, adopt), live: cm({}, { managers: ['kubectl-edit'] }), allowAdopt: true, expected: { verdict: 'adopt', owner: 'field manager kubectl-edit' } },
    { name: 'adopt annotation must be exactly "true"', desired: cm(undefined, { annotations: { 'keelson.dev/adopt': 'yes' } }), live: cm(theirs), allowAdopt: true, expected: { verdict: 'refused', owner: 'keelson deployment d2' } },
  ];
  for (const c of cases) {
    it(c.name, () => expect(decideOwnership(c.desired, c.live, 'd1', c.allowAdopt)).toEqual(c.expected));
  }

  it('refusals name every object and its owner in one sentence that says what to do', () => {
    const message = refusalMessage(
      [
        { what: 'ConfigMap shop/settings', owner: 'keelson deployment d2' },
        { what: 'Service shop/web', owner: 'field manager helm' },
      ],
      'd1',
    );
    expect(message).toBe(
      'keelson applies only over objects it owns for deployment d1, and nothing was applied: ConfigMap shop/settings belongs to keelson deployment d2; ' +
        'Service shop/web belongs to field manager helm. Rename the object in the manifest, remove it from its owner, or annotate it with keelson.dev/adopt: "true" where the project\'s policy allows adoption.',
    );
  });
});

describe('stampLabels', () => {
  const labels = { 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': 'd1' };
  function workload(kind: string, template: Record<string, unknown>): KubeObject {
    return { apiVersion: 'apps/v1', kind, metadata: { name: 'w', labels: { app: 'w' } }, spec: { selector: { matchLabels: { app: 'w' } }, ...template } };
  }
  const podTemplate = { template: { metadata: { labels: { app: 'w' } }, spec: {} } };

  for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']) {
    it(`${kind}: labels the object and its pod template, never the selector`, () => {
      const stamped = stampLabels(workload(kind, podTemplate), 'd1');
      expect(stamped.metadata.labels).toEqual({ app: 'w', ...labels });
      expect((stamped.spec as { template: { metadata: { labels: unknown } } }).template.metadata.labels).toEqual({ app: 'w', ...labels });
      expect((stamped.spec as { selector: unknown }).selector).toEqual({ matchLabels: { app: 'w' } });
    });
  }

  it('a template without metadata gets some', () => {
    const stamped = stampLabels(workload('Deployment', { template: { spec: {} } }), 'd1');
    expect((stamped.spec as { template: { metadata: { labels: unknown } } }).template.metadata.labels).toEqual(labels);
  });

  it('does not change its input', () => {
    const input = workload('Deployment', podTemplate);
    const before = structuredClone(input);
    stampLabels(input, 'd1');
    expect(input).toEqual(before);
  });

  it('CronJob: the job template and its pod template', () => {
    const cron: KubeObject = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { jobTemplate: { spec: { template: { spec: {} } } } } };
    const spec = stampLabels(cron, 'd1').spec as { jobTemplate: { metadata: { labels: unknown }; spec: { template: { metadata: { labels: unknown } } } } };
    expect(spec.jobTemplate.metadata.labels).toEqual(labels);
    expect(spec.jobTemplate.spec.template.metadata.labels).toEqual(labels);
  });

  // A Job's pod template is immutable: labelling an existing Job's template would be refused.
  const job = (templateLabels?: Record<string, string>): KubeObject => ({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'j' },
    spec: { template: { metadata: { labels: templateLabels ?? {} }, spec: {} } },
  });
  const templateLabels = (obj: KubeObject) => (obj.spec as { template: { metadata: { labels: unknown } } }).template.metadata.labels;
  it('Job being created: template labelled', () => expect(templateLabels(stampLabels(job(), 'd1'))).toEqual(labels));
  it('existing Job without the labels: template left alone', () => expect(templateLabels(stampLabels(job(), 'd1', job()))).toEqual({}));
  it('existing Job labelled for this deployment: template labelled as before', () =>
    expect(templateLabels(stampLabels(job(), 'd1', job(labels)))).toEqual(labels));
  it('other kinds: metadata only', () => expect(stampLabels(cm(), 'd1').metadata.labels).toEqual(labels));
});
