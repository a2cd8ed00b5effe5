// deploy/kustomize as `kubectl kustomize` builds it: the base, the namespaced component (through
// its example overlay), the quickstart overlay and the migrate Job; the Deployment's probes,
// security context and configuration; and RBAC that covers what src/kube asks the API server for.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { STATUS_KINDS, WORKLOAD_KINDS } from '../../src/kube/kubeClient.ts';
import { DEPLOYMENT_KIND, HTTPROUTE_KIND, SERVICE_KIND } from '../../src/targets/kubernetes/plan.ts';
import { REPO_ROOT } from './support.ts';

const exec = promisify(execFile);

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [key: string]: unknown;
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const built: Record<string, Obj[]> = {};

async function kustomize(dir: string): Promise<Obj[]> {
  const { stdout } = await exec('kubectl', ['kustomize', path.join(REPO_ROOT, 'deploy', 'kustomize', dir)]);
  return parseAllDocuments(stdout).map((doc) => doc.toJS() as Obj);
}

function find(objects: Obj[], kind: string, name: string): Obj {
  const found = objects.find((o) => o.kind === kind && o.metadata.name.startsWith(name));
  if (!found) throw new Error(`no ${kind} ${name} in ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** Every (group, resource, verb) a set of rules grants. */
function grants(rules: Rule[]): Set<string> {
  return new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))));
}

/** Kubernetes' resource name of a kind (all the kinds below pluralise regularly). */
function resourceOf(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? (apiVersion.split('/')[0] as string) : '';
  const lower = kind.toLowerCase();
  return `${group}/${lower.endsWith('s') ? `${lower}es` : `${lower}s`}`;
}

beforeAll(async () => {
  for (const dir of ['base', 'overlays/quickstart', 'overlays/namespaced-example', 'migrate']) built[dir] = await kustomize(dir);
});

describe('deploy/kustomize', () => {
  it.each(['base', 'overlays/quickstart'])('%s: the Deployment runs the image as documented, probed and locked down', (dir) => {
    const deployment = find(built[dir] as Obj[], 'Deployment', 'keelson') as Obj & { spec: { template: { spec: Record<string, unknown> } } };
    expect(deployment.metadata.namespace).toBe('keelson');
    const pod = deployment.spec.template.spec as {
      serviceAccountName: string;
      terminationGracePeriodSeconds: number;
      securityContext: Record<string, unknown>;
      containers: Array<Record<string, unknown>>;
      volumes: Array<{ name: string; emptyDir?: unknown }>;
    };
    expect(pod.serviceAccountName).toBe('keelson');
    // room for KEELSON_SHUTDOWN_TIMEOUT's default of 20 s
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(20);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    const container = pod.containers[0] as {
      image: string;
      env: Array<{ name: string; value?: string; valueFrom?: Record<string, Record<string, string>> }>;
      livenessProbe: { httpGet: { path: string } };
      readinessProbe: { httpGet: { path: string } };
      resources: { requests: Record<string, string>; limits: Record<string, string> };
      securityContext: Record<string, unknown>;
      volumeMounts: Array<{ name: string; mountPath: string }>;
    };
    expect(container.image).toBe('ghcr.io/keelson/keelson:0.1.0');
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(Object.keys(container.resources.requests).sort()).toEqual(['cpu', 'memory']);
    expect(container.resources.limits.memory).toBeDefined();
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env.DATABASE_URL).toEqual({ secretKeyRef: { name: expect.stringMatching(/^keelson-database/), key: 'url' } });
    expect(env.KEELSON_INSTANCE_ID).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.KEELSON_CLUSTER).toBe('in-cluster');
    // the two places a read-only root leaves writable
    expect(container.volumeMounts.map((m) => m.mountPath).sort()).toEqual(['/data', '/tmp']);
    expect(pod.volumes.every((v) => v.emptyDir !== undefined)).toBe(true);
  });

  it('quickstart: its generated Secret is the one the Deployment reads, and PostgreSQL comes with it', () => {
    const objects = built['overlays/quickstart'] as Obj[];
    const secret = find(objects, 'Secret', 'keelson-database') as Obj & { data: { url: string } };
    expect(Buffer.from(secret.data.url, 'base64').toString()).toBe('postgresql://keelson:keelson-quickstart@keelson-postgres:5432/keelson');
    const deployment = JSON.stringify(find(objects, 'Deployment', 'keelson'));
    expect(deployment).toContain(`"name":"${secret.metadata.name}"`);
    expect(find(objects, 'StatefulSet', 'keelson-postgres').metadata.namespace).toBe('keelson');
    expect(find(objects, 'Service', 'keelson-postgres').metadata.namespace).toBe('keelson');
  });

  it('base: the ClusterRole grants what src/kube does with every kind it manages, bound to keelson\'s ServiceAccount', () => {
    const objects = built.base as Obj[];
    const role = find(objects, 'ClusterRole', 'keelson') as Obj & { rules: Rule[] };
    const granted = grants(role.rules);
    const missing: string[] = [];
    // what templates commonly render and live status shows, the workloads keelson scales, what
    // verification watches, and the cluster-scoped kinds templates may hold
    const kinds = [
      ...STATUS_KINDS,
      ...WORKLOAD_KINDS,
      { apiVersion: 'v1', kind: 'Pod' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole' },
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding' },
      { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' },
    ];
    for (const { apiVersion, kind } of kinds) {
      const resource = resourceOf(apiVersion, kind);
      // cached (list, watch), read before it is applied over or deleted (get), applied (create,
      // patch), pruned or torn down (delete)
      for (const verb of ['get', 'list', 'watch', 'create', 'patch', 'delete']) {
        if (!granted.has(`${resource}:${verb}`)) missing.push(`${resource}:${verb}`);
      }
    }
    for (const { apiVersion, kind } of WORKLOAD_KINDS) {
      if (kind === 'DaemonSet') continue; // has no scale subresource
      const needed = `${resourceOf(apiVersion, kind)}/scale:patch`;
      if (!granted.has(needed)) missing.push(needed);
    }
    // the kubernetes-events sink records Events on the workloads (create only)
    if (!granted.has('/events:create')) missing.push('/events:create');
    expect(missing).toEqual([]);
    // nothing beyond: no wildcard, no escalate/bind/impersonate
    expect([...granted].filter((g) => /\*|:(escalate|bind|impersonate|deletecollection|update)$/.test(g))).toEqual([]);
    const binding = find(objects, 'ClusterRoleBinding', 'keelson') as Obj & { roleRef: { name: string }; subjects: unknown[] };
    expect(binding.roleRef.name).toBe('keelson');
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'keelson', namespace: 'keelson' }]);
  });

  it('canaries: the base role covers a revision\'s objects and sizing; the extra role docs/install.md shows grants HTTPRoute for splits', async () => {
    const granted = grants((find(built.base as Obj[], 'ClusterRole', 'keelson') as Obj & { rules: Rule[] }).rules);
    const needed = (kind: { apiVersion: string; kind: string }) => ['get', 'list', 'watch', 'create', 'patch', 'delete'].map((verb) => `${resourceOf(kind.apiVersion, kind.kind)}:${verb}`);
    // a revision is a Deployment and a Service of its own, sized through the scale subresource
    const canary = [...needed(DEPLOYMENT_KIND), ...needed(SERVICE_KIND), `${resourceOf(DEPLOYMENT_KIND.apiVersion, DEPLOYMENT_KIND.kind)}/scale:patch`];
    expect(canary.filter((g) => !granted.has(g))).toEqual([]);
    // HTTPRoute is no built-in kind: the documented extra ClusterRole grants what a split needs
    const text = await readFile(path.join(REPO_ROOT, 'docs', 'install.md'), 'utf8');
    const block = [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '').find((yaml) => yaml.includes('name: keelson-extra'));
    const extra = parseAllDocuments(block ?? '').map((doc) => doc.toJS() as Obj).find((o) => o.kind === 'ClusterRole') as (Obj & { rules: Rule[] }) | undefined;
    const routes = grants(extra?.rules ?? []);
    expect(needed(HTTPROUTE_KIND).filter((g) => !routes.has(g))).toEqual([]);
  });

  it('namespaced component: no cluster-wide binding; the listed namespaces get the namespaced subset of the base rules', () => {
    const objects = built['overlays/namespaced-example'] as Obj[];
    expect(objects.filter((o) => o.kind === 'ClusterRoleBinding')).toEqual([]);
    const bindings = objects.filter((o) => o.kind === 'RoleBinding') as Array<Obj & { roleRef: { kind: string; name: string } }>;
    expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual(['shop-prod', 'shop-staging']);
    expect(bindings.every((b) => b.roleRef.kind === 'ClusterRole' && b.roleRef.name === 'keelson')).toBe(true);

    const namespaced = grants((find(objects, 'ClusterRole', 'keelson') as Obj & { rules: Rule[] }).rules);
    const base = grants((find(built.base as Obj[], 'ClusterRole', 'keelson') as Obj & { rules: Rule[] }).rules);
    const clusterScoped = /^(\/namespaces|apiextensions\.k8s\.io\/customresourcedefinitions|rbac\.authorization\.k8s\.io\/clusterrole(binding)?s):/;
    const expected = [...base].filter((g) => !clusterScoped.test(g)).concat('/namespaces:get').sort();
    expect([...namespaced].sort()).toEqual(expected);
  });

  it('namespaced component: keelson is told the same namespaces the RoleBindings list (KEELSON_NAMESPACES from a ConfigMap)', () => {
    const objects = built['overlays/namespaced-example'] as Obj[];
    const configMap = find(objects, 'ConfigMap', 'keelson-namespaces') as Obj & { data: { namespaces: string } };
    expect(configMap.metadata).toMatchObject({ name: 'keelson-namespaces', namespace: 'keelson' });
    const deployment = find(objects, 'Deployment', 'keelson') as Obj & {
      spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; valueFrom?: unknown }> }> } } };
    };
    const env = deployment.spec.template.spec.containers[0]?.env.find((e) => e.name === 'KEELSON_NAMESPACES');
    expect(env?.valueFrom).toEqual({ configMapKeyRef: { name: configMap.metadata.name, key: 'namespaces' } });
    // what keelson parses is exactly the RoleBindings' namespaces
    const config = loadConfig({ KEELSON_NAMESPACES: configMap.data.namespaces }, {}, false);
    const bound = objects.filter((o) => o.kind === 'RoleBinding').map((o) => o.metadata.namespace);
    expect([...(config.namespaces ?? [])].sort()).toEqual(bound.sort());
    // the base stays cluster-wide
    expect(JSON.stringify(find(built.base as Obj[], 'Deployment', 'keelson'))).not.toContain('KEELSON_NAMESPACES');
  });

  it('namespaced component: an overlay that lists no namespaces gets a keelson that refuses to start, naming the setting', async () => {
    const { stdout } = await exec('kubectl', ['kustomize', path.join(REPO_ROOT, 'deploy', 'kustomize', 'components', 'namespaced', '..', '..', 'overlays', 'namespaced-example')]);
    expect(stdout).not.toContain('LIST-YOUR-NAMESPACES');
    const component = await readFile(path.join(REPO_ROOT, 'deploy', 'kustomize', 'components', 'namespaced', 'kustomization.yaml'), 'utf8');
    const placeholder = /namespaces=(\S+)/.exec(component)?.[1] ?? '';
    expect(placeholder).not.toBe('');
    expect(() => loadConfig({ KEELSON_NAMESPACES: placeholder }, {}, false)).toThrow(/KEELSON_NAMESPACES \/ --namespaces: expected a comma-separated list of namespace names/);
  });

  it('migrate: a Job running `keelson migrate` with the database Secret and the same lock-down', () => {
    const job = find(built.migrate as Obj[], 'Job', 'keelson-migrate') as Obj & {
      spec: { template: { spec: { containers: Array<{ args: string[]; securityContext: Record<string, unknown> }> } } };
    };
    expect(job.metadata.namespace).toBe('keelson');
    const container = job.spec.template.spec.containers[0];
    expect(container?.args).toEqual(['migrate']);
    expect(container?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
  });
});
