// The injection corpus: values a SQL writer could put in values_override (or a deployment row),
// each pushed through the demo's templates and through the built-in template, applied with
// keelson's kube client to the simulator, and read back from the simulator's store. Every value
// must leave the manifest's structure alone (the same objects, no more) and read back exactly.
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_FILES } from '../../src/demo.ts';
import { createKubeClient, type KubeClient } from '../../src/kube/kubeClient.ts';
import { createLogger } from '../../src/logger.ts';
import { createRenderer } from '../../src/render/renderer.ts';
import { startSimulator, type Simulator } from '../../src/sim/index.ts';
import { findByKind } from '../../src/sim/resources.ts';
import { cleanupRepos, DEPLOYMENT_ID, makeRepo, renderInput } from './fixtures.ts';

const MiB = 1024 * 1024;

export const INJECTION_CORPUS: readonly string[] = [
  'plain words',
  '',
  ' leading space',
  'trailing space ',
  '\t tabs and spaces \t',
  'line1\nline2',
  '\n',
  'ends with a newline\n',
  'windows\r\nline end',
  'carriage\rreturn',
  '---',
  'x\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn\nroleRef: { kind: ClusterRole, name: cluster-admin }',
  '...\n---\n',
  'key: value',
  'a: b: c',
  ': leading colon',
  'x\nENVIRONMENT: overwritten',
  '# a comment',
  'value # trailing comment',
  '{ a: 1 }',
  '[1, 2]',
  '}{][,',
  '&anchor value',
  '*alias',
  '<<: *alias',
  '!!binary aGVsbG8=',
  '!!python/object/apply:os.system ["id"]',
  '!local tag',
  '%YAML 1.2',
  '? complex key',
  '- list item',
  '| literal',
  '> folded',
  "'single quoted'",
  '"double quoted"',
  '"unterminated',
  'back\\slash \\n \\" \\u0041',
  '@at `backtick` $dollar',
  '{{ values.greeting }} {% raw %} {# comment #}',
  'kvdeadbeef00120z',
  'true',
  'False',
  'yes',
  'no',
  'on',
  'null',
  '~',
  '1e3',
  '0x1F',
  '0o17',
  '.inf',
  '-.Inf',
  '.nan',
  '123',
  '1.50',
  '-0',
  '2024-01-01T00:00:00Z',
  'line\u2028separator',
  'paragraph\u2029separator',
  'next line\u0085(NEL)',
  'nul\u0000byte',
  'bell\u0007 escape\u001b[31m red',
  'del\u007f c1\u0080\u009f',
  '\ufeffbyte order mark',
  'zero\u200bwidth and bidi\u202eoverride',
  'emoji 🚀 and 日本語 and é',
  'lone surrogate \ud800 here',
  '${HOME} $(id) `id`',
  'a'.repeat(1024),
  `one MiB of lines: ${'key: value\n---\n'.repeat(MiB / 16)}`,
];

const log = createLogger({ level: 'silent', format: 'json' });
const renderer = createRenderer();
let sim: Simulator;
let kube: KubeClient;
let demoRepo: string;

beforeAll(async () => {
  sim = await startSimulator();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(sim.kubeconfigYaml());
  kube = createKubeClient({ kubeConfig, log, requestTimeoutMs: 30_000 });
  demoRepo = makeRepo(DEMO_FILES);
});

afterAll(async () => {
  await renderer.close();
  await sim?.close();
  cleanupRepos();
});

function stored(apiVersion: string, kind: string, namespace: string, name: string): Record<string, unknown> {
  const type = findByKind(apiVersion, kind);
  if (!type) throw new Error(`the simulator has no ${kind}`);
  const object = sim.store.get(type, namespace, name);
  if (!object) throw new Error(`${kind} ${namespace}/${name} was not applied`);
  return object as unknown as Record<string, unknown>;
}

const cases = INJECTION_CORPUS.map((value, index) => ({ index, value, shown: JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value) }));

describe('the injection corpus', () => {
  it('holds at least 50 values', () => {
    expect(new Set(INJECTION_CORPUS).size).toBeGreaterThanOrEqual(50);
  });

  // one namespace per template: each value's objects replace the previous value's
  it.each(cases)('through the demo templates: $shown', async ({ index, value }) => {
    const namespace = 'injection-demo';
    const { objects } = await renderer.render(
      renderInput(demoRepo, { manifestPath: 'demo', project: 'demo', environment: 'local', namespace, imageRef: `registry.example/demo:${index}`, valuesOverride: { greeting: value } }),
    );
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['ConfigMap/demo-config', 'Deployment/demo', 'Service/demo']);
    await kube.apply(objects, { namespace, deploymentId: DEPLOYMENT_ID, signal: AbortSignal.timeout(30_000) });
    const configMap = stored('v1', 'ConfigMap', namespace, 'demo-config');
    expect(configMap.data).toEqual({ GREETING: value, ENVIRONMENT: 'local' });
  });

  it.each(cases)('through the built-in template: $shown', async ({ value }) => {
    const namespace = 'injection-builtin';
    // no replicas: the simulator need not copy a megabyte of env into pods
    const { objects } = await renderer.render(renderInput(null, { project: 'web', namespace, valuesOverride: { replicas: 0, env: { GREETING: value } } }));
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Deployment/web', 'Service/web']);
    await kube.apply(objects, { namespace, deploymentId: DEPLOYMENT_ID, signal: AbortSignal.timeout(30_000) });
    const deployment = stored('apps/v1', 'Deployment', namespace, 'web') as { spec: { template: { spec: { containers: { env: unknown }[] } } } };
    expect(deployment.spec.template.spec.containers[0]?.env).toEqual([{ name: 'GREETING', value }]);
  });
});
