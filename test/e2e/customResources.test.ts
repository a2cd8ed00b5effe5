// End to end (real PostgreSQL, a real git ops repo, the simulator serving Gateway API's CRDs,
// installed after keelson started): a release renders a ConfigMap and an HTTPRoute; the next
// commit drops the HTTPRoute and keelson prunes it from the cluster, history's inventory listing
// it in the first release only (issue #13); teardown deletes a custom resource too.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';
import { GATEWAY_API_VERSION, httpRouteBackends, installGatewayApi } from '../sim/gatewayApi.ts';
import { createOpsRepo, history, insertRow, simObject, startE2e, waitRow, waitStatus, type E2e, type OpsRepo } from './support.ts';

const CONFIG = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}-settings
data:
  mode: fast
`;

const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ project }}
spec:
  parentRefs:
    - name: edge
      namespace: gateways
  rules:
    - backendRefs:
        - name: {{ project }}
          port: 80
          weight: {{ values.weight }}
`;

let e2e: E2e;

beforeAll(async () => {
  e2e = await startE2e();
  await e2e.startRuntime({ machineConfig: { driftIntervalMs: 300 } });
  // The platform team installs the CRDs; keelson is already running and discovers them on use.
  await installGatewayApi(e2e.sim);
});

afterAll(async () => {
  await e2e?.stop();
});

/** A project whose policy admits HTTPRoutes: a kind keelson does not know passes only as if cluster-scoped. */
async function insertRouteRow(project: string, repo: OpsRepo): Promise<string> {
  await e2e.db.query(sql.unsafe`
    insert into projects (name, cluster_resource_whitelist) values (${project}, ${sql.array(['gateway.networking.k8s.io/HTTPRoute'], 'text')})`);
  return await insertRow(e2e.db, { project, image: `registry.example/${project}:1`, opsRepoId: repo.id, manifestPath: 'web' });
}

/** An ops repo of the test's own whose `web` folder renders a ConfigMap and an HTTPRoute, pruning on. */
const routeRepo = (name: string) =>
  createOpsRepo(e2e, name, { 'values.yaml': 'weight: 100\nkeelson:\n  prune: true\n', 'web/config.yaml': CONFIG, 'web/route.yaml': ROUTE });

const routeOf = (project: string) => httpRouteBackends(e2e.sim, `${project}-prod`, project);
const kinds = (refs: readonly { kind: string }[] | null | undefined) => (refs ?? []).map((ref) => ref.kind).sort();

describe('custom resources', () => {
  it('a release that no longer renders an HTTPRoute prunes it; only the first release lists it', async () => {
    const repo = await routeRepo('shop-ops');
    const id = await insertRouteRow('shop', repo);
    const first = await waitStatus(e2e.db, id, 'healthy', 30_000);
    expect(routeOf('shop')).toEqual([[{ name: 'shop', port: 80, weight: 100 }]]);
    const live = e2e.sim.store.get(e2e.sim.resources.findByKind(GATEWAY_API_VERSION, 'HTTPRoute')!, 'shop-prod', 'shop');
    expect(live?.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'keelson', 'keelson.dev/deployment': id });

    const sha = await repo.commit({ 'web/route.yaml': null }, 'drop the route');
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_sha === sha, 'the commit without the route deployed', 30_000);
    await sleepUntil(() => routeOf('shop') === undefined, { message: 'the HTTPRoute pruned' });
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-settings')).toBeDefined();

    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.sha])).toEqual([
      ['deploy', 'succeeded', first.current_sha],
      ['deploy', 'succeeded', sha],
    ]);
    expect(kinds(records[0]?.inventory)).toEqual(['ConfigMap', 'HTTPRoute']);
    expect(records[0]?.inventory).toContainEqual({ apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute', name: 'shop', namespace: 'shop-prod' });
    expect(kinds(records[1]?.inventory)).toEqual(['ConfigMap']);
  });

  it('teardown deletes the custom resource with the rest', async () => {
    const id = await insertRouteRow('gone', await routeRepo('gone-ops'));
    await waitStatus(e2e.db, id, 'healthy', 30_000);
    expect(routeOf('gone')).toEqual([[{ name: 'gone', port: 80, weight: 100 }]]);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'deleted' where id = ${id}`);
    await sleepUntil(async () => !(await e2e.db.exists(sql.unsafe`select 1 from deployments where id = ${id}`)), { timeoutMs: 30_000, message: 'row deleted' });
    expect(routeOf('gone')).toBeUndefined();
    expect(simObject(e2e.sim, 'Namespace', undefined, 'gone-prod')).toBeUndefined();
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded'], ['teardown', 'succeeded']]);
    expect(kinds(records[1]?.inventory)).toEqual(['ConfigMap', 'HTTPRoute']);
  });
});
