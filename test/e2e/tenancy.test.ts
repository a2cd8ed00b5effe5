// End to end on the simulator: one keelson, two teams. shop's deployment runs; evil tries to take
// it over through the API (refused, 403), and by SQL as a pipeline would: rendering shop's
// manifests into shop-prod, a cluster-scoped object, an object in kube-system and a row aimed at
// kube-system; and, within a policy, a second deployment over the first one's objects
// (owned_by_other). The actor refuses each before applying anything: every object's
// resourceVersion in the cluster is the same afterwards.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { once } from 'node:events';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, type ApiApp } from '../../src/api/app.ts';
import { createToken } from '../../src/api/tokens.ts';
import { createMetrics } from '../../src/metrics.ts';
import { isWrite, type RequestRecord } from '../../src/sim/index.ts';
import { RESOURCE_TYPES } from '../../src/sim/resources.ts';
import {
  createOpsRepo, history, insertRow, log, simDeployment, simList, simObjectsOf, startE2e, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo,
} from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
let api: ApiApp;
let server: Server;
let baseUrl: string;
let shopId: string;

const CLUSTER_ROLE_BINDING = `apiVersion: v1
kind: ConfigMap
metadata:
  name: harmless
data:
  a: b
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: pwn
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: default
    namespace: evil-prod
`;

const IN_KUBE_SYSTEM = `apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  Corefile: ". { forward . 6.6.6.6 }"
`;

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'platform', {
    'values.yaml': 'replicas: 2\n',
    'shop/deployment.yaml': WEB_TEMPLATE,
    'evil/crb.yaml': CLUSTER_ROLE_BINDING,
    'evil/kubesystem/cm.yaml': IN_KUBE_SYSTEM,
  });
  await e2e.startRuntime();
  api = createApp({ db: e2e.db, databaseUrl: e2e.t.url, log, metrics: createMetrics() });
  server = api.app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  shopId = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id });
  await waitStatus(e2e.db, shopId, 'healthy', 60_000);
});

afterAll(async () => {
  await api?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await e2e?.stop();
});

/** Every object of the simulated cluster, by kind/namespace/name, with its resourceVersion. */
function clusterState(): Map<string, string | undefined> {
  const state = new Map<string, string | undefined>();
  for (const type of RESOURCE_TYPES) {
    for (const object of e2e.sim.store.list(type)) state.set(`${type.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`, object.metadata.resourceVersion);
  }
  return state;
}

async function evilToken(): Promise<string> {
  return (await createToken(e2e.db, { name: `evil-${Date.now()}`, permissions: ['deploy:read', 'deploy:promote'], project: 'evil' })).token;
}

describe('tenancy on the simulator', () => {
  it("the takeover through the API is refused: evil cannot render shop's manifests into shop-prod", async () => {
    const token = await evilToken();
    const before = clusterState();
    const request = (body: Record<string, unknown>) =>
      fetch(`${baseUrl}/api/projects/evil/deployments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ environment: 'prod', image_ref: 'registry.example/evil:1', ops_repo: 'platform', ...body }),
      });
    const takeover = await request({ namespace: 'shop-prod', manifest_path: 'shop' });
    expect(takeover.status).toBe(403);
    const refusal = (await takeover.json()) as { error: { code: string; details: Array<{ field: string }>; message: string } };
    expect(refusal.error.code).toBe('policy_violation');
    expect(refusal.error.details.map((d) => d.field)).toEqual(['namespace', 'manifest_path']);
    expect(refusal.error.message).toContain('Namespace shop-prod is outside the policy: project evil may deploy only into namespaces matching evil-*.');
    // nor can it touch shop's row
    const patch = await fetch(`${baseUrl}/api/projects/shop/deployments/prod`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ image_ref: 'registry.example/evil:1' }),
    });
    expect(patch.status).toBe(404);
    expect(await e2e.db.any(sql.unsafe`select 1 from deployments where project = 'evil'`)).toEqual([]);
    expect(clusterState()).toEqual(before);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')?.image).toBe('registry.example/shop:1');
  });

  it.each([
    [
      "shop's manifests into shop-prod",
      { environment: 'takeover', namespace: 'shop-prod', manifestPath: 'shop' },
      /Namespace shop-prod is outside the policy: project evil may deploy only into namespaces matching evil-\*.*Manifest path shop is outside the policy/,
    ],
    ['a cluster-scoped object', { environment: 'prod', manifestPath: 'evil' }, /ClusterRoleBinding pwn is cluster-scoped; project evil may not create cluster-scoped objects/],
    [
      'an object in kube-system',
      { environment: 'ks', manifestPath: 'evil/kubesystem' },
      /ConfigMap kube-system\/coredns is in namespace kube-system; project evil may deploy only into namespaces matching evil-\* \(a wildcard never matches kube-system/,
    ],
    ['a row aimed at kube-system (the built-in template)', { environment: 'kube', namespace: 'kube-system', opsRepo: false }, /Namespace kube-system is outside the policy/],
  ])('by SQL, the actor refuses %s before applying anything', async (_label, row, message) => {
    const before = clusterState();
    // every write request the cluster receives meanwhile (the simulator's request log)
    const writes: RequestRecord[] = [];
    const unsubscribe = e2e.sim.requests.on('request', (record) => {
      if (isWrite(record)) writes.push(record);
    });
    const id = await insertEvilRow(row);
    const failed = await waitStatus(e2e.db, id, 'failed', 30_000);
    unsubscribe();
    expect(writes).toEqual([]);
    expect(failed.last_error).toMatch(/^The rendered manifests break project evil's policy, so nothing was applied: /);
    expect(failed.last_error).toMatch(message);
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'failed']]);
    expect(records[0]?.phases.map((p) => [p.name, p.error ? 'error' : 'ok']).at(-1)).toEqual(['render', 'error']);
    expect(simObjectsOf(e2e.sim, id)).toEqual([]);
    expect(simList(e2e.sim, 'Namespace').map((ns) => ns.metadata.name)).not.toContain('evil-prod');
    expect(clusterState()).toEqual(before);
  });

  it("by SQL, a deployment whose manifests name another deployment's objects is refused with owned_by_other naming the owner; nothing changes", async () => {
    const before = clusterState();
    const writes: RequestRecord[] = [];
    const unsubscribe = e2e.sim.requests.on('request', (record) => {
      if (isWrite(record)) writes.push(record);
    });
    // within shop's own policy (shop-* namespaces, its own folder), but over shop/prod's objects
    const id = await e2e.db.oneFirst(sql.type(z.object({ id: z.string() }))`
      insert into deployments (project, environment, image_ref, ops_repo_id, namespace)
      values ('shop', 'copy', 'registry.example/shop:evil', ${repo.id}, 'shop-prod') returning id`);
    const failed = await waitStatus(e2e.db, id, 'failed', 30_000);
    unsubscribe();
    expect(writes).toEqual([]);
    expect(failed.last_error).toContain(`keelson applies only over objects it owns for deployment ${id}, and nothing was applied`);
    expect(failed.last_error).toContain(`Deployment shop-prod/shop belongs to keelson deployment shop/prod (${shopId})`);
    expect(failed.last_error).toContain(`Service shop-prod/shop belongs to keelson deployment shop/prod (${shopId})`);
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'failed']]);
    expect(records[0]?.phases.map((p) => [p.name, p.error ? 'error' : 'ok']).at(-1)).toEqual(['apply', 'error']);
    expect(clusterState()).toEqual(before);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')?.image).toBe('registry.example/shop:1');
  });

  it('within its policy, the same project deploys into its own namespace', async () => {
    const id = await insertRow(e2e.db, { project: 'evil', environment: 'fine', image: 'registry.example/evil:1' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(simDeployment(e2e.sim, 'evil-fine', 'evil')?.image).toBe('registry.example/evil:1');
  });
});

// ---- helpers ----

async function insertEvilRow(row: { environment: string; namespace?: string; manifestPath?: string; opsRepo?: boolean }): Promise<string> {
  // as a pipeline would: plain SQL, no API, no policy row needed for the project
  return await e2e.db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into deployments (project, environment, image_ref, ops_repo_id, manifest_path, namespace)
    values ('evil', ${row.environment}, 'registry.example/evil:1', ${row.opsRepo === false ? null : repo.id}, ${row.manifestPath ?? null}, ${row.namespace ?? null})
    returning id`);
}
