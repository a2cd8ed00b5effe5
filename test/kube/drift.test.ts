import { describe, expect, it } from 'vitest';
import { assessDrift, changedPaths, fieldsV1Paths, ownChangedPaths } from '../../src/kube/drift.ts';
import type { KubeObject } from '../../src/kube/types.ts';

function deployment(patch: { image?: string; replicas?: number; labels?: Record<string, string>; env?: Array<{ name: string; value: string }>; managedFields?: unknown[]; args?: string[]; status?: unknown }): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'shop', resourceVersion: '7', labels: patch.labels ?? { app: 'web' }, ...(patch.managedFields ? { managedFields: patch.managedFields } : {}) },
    spec: {
      replicas: patch.replicas ?? 2,
      template: {
        spec: {
          containers: [
            { name: 'web', image: patch.image ?? 'shop:1', env: patch.env ?? [{ name: 'A', value: '1' }], ports: [{ containerPort: 8080, protocol: 'TCP' }], args: patch.args ?? ['--serve'] },
            { name: 'sidecar', image: 'proxy:1' },
          ],
        },
      },
    },
    status: patch.status ?? { replicas: 2 },
  };
}

describe('changedPaths', () => {
  const cases: Array<{ name: string; intended: KubeObject; live: KubeObject; paths: string[] }> = [
    { name: 'equal objects', intended: deployment({}), live: deployment({}), paths: [] },
    { name: 'status and server metadata are not compared', intended: deployment({ status: { replicas: 9 } }), live: { ...deployment({}), metadata: { ...deployment({}).metadata, resourceVersion: '99', generation: 4 } }, paths: [] },
    { name: 'an image in a keyed list', intended: deployment({ image: 'shop:2' }), live: deployment({}), paths: ['.spec.template.spec.containers[name="web"].image'] },
    { name: 'replicas', intended: deployment({ replicas: 3 }), live: deployment({}), paths: ['.spec.replicas'] },
    { name: 'a label added', intended: deployment({ labels: { app: 'web', tier: 'front' } }), live: deployment({}), paths: ['.metadata.labels.tier'] },
    { name: 'an env var changed, by name', intended: deployment({ env: [{ name: 'A', value: '2' }] }), live: deployment({}), paths: ['.spec.template.spec.containers[name="web"].env[name="A"].value'] },
    { name: 'an env var removed', intended: deployment({ env: [] }), live: deployment({}), paths: ['.spec.template.spec.containers[name="web"].env[name="A"]'] },
    { name: 'an env var added', intended: deployment({ env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }), live: deployment({}), paths: ['.spec.template.spec.containers[name="web"].env[name="B"]'] },
    { name: 'an atomic list changes as a whole', intended: deployment({ args: ['--serve', '--debug'] }), live: deployment({}), paths: ['.spec.template.spec.containers[name="web"].args'] },
    {
      name: 'apiVersion alone is no change (one object, two versions)',
      intended: { ...deployment({}), apiVersion: 'apps/v1beta2' },
      live: deployment({}),
      paths: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(changedPaths(c.intended, c.live)).toEqual(c.paths));
  }
});

describe('ownChangedPaths (keelson\'s own object, not a dry-run)', () => {
  // what the server adds to keelson's object: defaults and foreign fields
  const defaulted = (obj: KubeObject): KubeObject => {
    const spec = obj.spec as { template: { spec: { containers: Array<Record<string, unknown>> } } } & Record<string, unknown>;
    return {
      ...obj,
      metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, 'added-by': 'someone' }, uid: 'u-1' },
      spec: {
        ...spec,
        progressDeadlineSeconds: 600,
        template: { spec: { ...spec.template.spec, containers: spec.template.spec.containers.map((c) => ({ ...c, imagePullPolicy: 'IfNotPresent' })) } },
      },
    };
  };
  const cases: Array<{ name: string; own: KubeObject; live: KubeObject; paths: string[] }> = [
    { name: 'server defaults and foreign labels are no change', own: deployment({}), live: defaulted(deployment({})), paths: [] },
    { name: 'an image in a keyed list', own: deployment({ image: 'shop:2' }), live: defaulted(deployment({})), paths: ['.spec.template.spec.containers[name="web"].image'] },
    { name: 'a label keelson sets', own: deployment({ labels: { app: 'web', tier: 'front' } }), live: defaulted(deployment({})), paths: ['.metadata.labels.tier'] },
    { name: 'an env var added', own: deployment({ env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }), live: defaulted(deployment({})), paths: ['.spec.template.spec.containers[name="web"].env[name="B"]'] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(ownChangedPaths(c.own, c.live)).toEqual(c.paths));
  }
});

describe('fieldsV1Paths', () => {
  const cases: Array<{ name: string; fields: unknown; paths: string[] }> = [
    { name: 'a leaf', fields: { 'f:spec': { 'f:replicas': {} } }, paths: ['.spec.replicas'] },
    {
      name: 'keyed list items and the item itself',
      fields: { 'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:image': {} } } } },
      paths: ['.spec.containers[name="web"]', '.spec.containers[name="web"].image'],
    },
    { name: 'multi-key items', fields: { 'f:ports': { 'k:{"containerPort":8080,"protocol":"TCP"}': {} } }, paths: ['.ports[containerPort=8080,protocol="TCP"]'] },
    { name: 'set values', fields: { 'f:finalizers': { 'v:"x"': {} } }, paths: ['.finalizers[="x"]'] },
    { name: 'nothing', fields: undefined, paths: [] },
  ];
  for (const c of cases) {
    it(c.name, () => expect(fieldsV1Paths(c.fields)).toEqual(c.paths));
  }
});

describe('assessDrift', () => {
  const hpa = [{ manager: 'horizontal-pod-autoscaler', operation: 'Update', subresource: 'scale', fieldsV1: { 'f:spec': { 'f:replicas': {} } } }];
  const kubectlSet = [{ manager: 'kubectl-set', operation: 'Update', fieldsV1: { 'f:spec': { 'f:replicas': {} } } }];
  const cases: Array<{ name: string; dryRun: KubeObject; live: KubeObject; changed: string[]; drifted: string[] }> = [
    {
      name: 'replicas set by an autoscaler through scale are not drift',
      dryRun: deployment({ replicas: 2 }),
      live: deployment({ replicas: 5, managedFields: hpa }),
      changed: ['.spec.replicas'],
      drifted: [],
    },
    {
      name: 'replicas set by kubectl edit are drift',
      dryRun: deployment({ replicas: 2 }),
      live: deployment({ replicas: 5, managedFields: kubectlSet }),
      changed: ['.spec.replicas'],
      drifted: ['.spec.replicas'],
    },
    {
      name: 'an autoscaler does not hide an image change',
      dryRun: deployment({ replicas: 2, image: 'shop:1' }),
      live: deployment({ replicas: 5, image: 'shop:evil', managedFields: hpa }),
      changed: ['.spec.replicas', '.spec.template.spec.containers[name="web"].image'],
      drifted: ['.spec.template.spec.containers[name="web"].image'],
    },
    {
      name: "keelson's own scale writes are not an autoscaler's",
      dryRun: deployment({ replicas: 2 }),
      live: deployment({ replicas: 0, managedFields: [{ ...hpa[0], manager: 'keelson' }] }),
      changed: ['.spec.replicas'],
      drifted: ['.spec.replicas'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(assessDrift(c.dryRun, c.live, 'keelson')).toEqual({ changed: c.changed, drifted: c.drifted }));
  }
});
