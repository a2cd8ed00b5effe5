// keelson in in-cluster mode holding only the rights of deploy/kustomize/components/namespaced, as
// overlays/namespaced-example builds them: no ClusterRoleBinding; the namespaced ClusterRole bound
// by RoleBindings in shop-staging and shop-prod, which exist beforehand; KEELSON_NAMESPACES read
// from the overlay's ConfigMap. Deploy, update, rollback, stop, resume, prune and drift repair all
// succeed on those rights, with one watch per kind and namespace (never a LIST or WATCH across
// the cluster) and no request refused; a deployment into another namespace, or of a
// cluster-scoped object, is refused before anything is applied.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/api/tokens.ts';
import { typeOf } from '../../src/sim/resources.ts';
import { createOpsRepo, history, insertRow, simDeployment, simObject, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from '../e2e/support.ts';
import { sleepUntil } from '../helpers.ts';
import { kustomize, rbacYaml, startInCluster, type InCluster, type KustomizedObject } from './inClusterSupport.ts';

const LISTED = ['shop-staging', 'shop-prod'];
let cluster: InCluster;
let e2e: E2e;
let repo: OpsRepo;
let overlay: KustomizedObject[];

/** Requests by keelson that read or watched a collection across namespaces, or anything cluster-scoped but its own namespaces. */
function clusterWideReads(): string[] {
  return cluster.requests
    .filter((r) => r.resource !== '' && !r.namespace && ['list', 'watch'].includes(r.verb))
    .map((r) => `${r.verb} ${r.apiGroup}/${r.resource}`);
}

function refused(): string[] {
  return cluster.requests.filter((r) => r.code === 403).map((r) => `${r.verb} ${r.apiGroup}/${r.resource} ${r.namespace ?? ''}/${r.name ?? ''}`);
}

beforeAll(async () => {
  overlay = await kustomize('overlays/namespaced-example');
  const configMap = overlay.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'keelson-namespaces');
  const namespaces = configMap?.data?.namespaces ?? '';
  expect(namespaces.split(',').sort()).toEqual([...LISTED].sort());
  expect(overlay.filter((o) => o.kind === 'ClusterRoleBinding')).toEqual([]);
  cluster = await startInCluster({ rbac: rbacYaml(overlay), namespaces: LISTED, env: { KEELSON_NAMESPACES: namespaces } });
  e2e = cluster.e2e;
  repo = await createOpsRepo(e2e, 'shop-ops', {
    'web/deployment.yaml': WEB_TEMPLATE,
    'web/values.yaml': 'replicas: 2\nkeelson:\n  prune: true\n',
    'web/config.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ project }}-config\ndata:\n  greeting: hello\n',
  });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('in-cluster keelson with the namespaced component', () => {
  let id: string;

  it('deploys into a listed namespace, watching per namespace, every request allowed', async () => {
    id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:1', readyReplicas: 2 });
    // the cache's watches, one per listed namespace
    const watched = new Set(cluster.requests.filter((r) => r.verb === 'watch' && r.resource === 'deployments').map((r) => r.namespace));
    expect([...watched].sort()).toEqual([...LISTED].sort());
    expect(clusterWideReads()).toEqual([]);
    expect(refused()).toEqual([]);
  });

  it('updates, rolls back, stops and resumes', async () => {
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:2' && r.observed_generation === r.generation, 'shop:2 healthy', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:1' && r.observed_generation === r.generation, 'rolled back', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    await waitStatus(e2e.db, id, 'stopped', 60_000);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')?.replicas).toBe(0);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'active' where id = ${id}`);
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect((await history(e2e.db, id)).map((h) => `${h.action}:${h.status}`)).toEqual([
      'deploy:succeeded', 'deploy:succeeded', 'rollback:succeeded', 'stop:succeeded', 'resume:succeeded',
    ]);
    expect(clusterWideReads()).toEqual([]);
    expect(refused()).toEqual([]);
  });

  it('prunes what the ops repo no longer renders, and repairs drift', async () => {
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-config')).toBeDefined();
    await repo.commit({ 'web/config.yaml': null }, 'drop the config map');
    await sleepUntil(() => simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-config') === undefined, { timeoutMs: 90_000, message: 'ConfigMap pruned' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);

    // someone runs `kubectl delete deployment shop`
    e2e.sim.store.remove(typeOf('Deployment'), 'shop-prod', 'shop');
    await sleepUntil(() => simDeployment(e2e.sim, 'shop-prod', 'shop')?.readyReplicas === 2, { timeoutMs: 90_000, message: 'Deployment re-created' });
    expect(clusterWideReads()).toEqual([]);
    expect(refused()).toEqual([]);
  });

  it("the API's live status comes from the per-namespace cache", async () => {
    const { token } = await createToken(e2e.db, { name: 'reader', permissions: ['deploy:read'] });
    type Body = { live: { available: boolean; error?: string; resources?: Array<{ kind: string; name: string; status: string }> } };
    let body: Body | undefined;
    // the API gives up on the cache after its live timeout (a loaded machine can take that long to
    // start a per-namespace watch): ask again until it answers, then judge what it says
    await sleepUntil(
      async () => {
        const response = await fetch(`${cluster.server.url}/api/projects/shop/deployments/prod`, { headers: { authorization: `Bearer ${token}` } });
        expect(response.status).toBe(200);
        body = (await response.json()) as Body;
        return body.live.available;
      },
      { timeoutMs: 30_000, message: 'the API never answered with the live status' },
    );
    if (!body) throw new Error('no answer');
    expect(body.live.resources?.map((r) => `${r.kind}/${r.name}:${r.status}`).sort()).toEqual(['Deployment/shop:Current', 'Service/shop:Current']);
    expect(clusterWideReads()).toEqual([]);
    expect(refused()).toEqual([]);
  });

  it('deploys into a second listed namespace alongside', async () => {
    const staging = await insertRow(e2e.db, { project: 'shop', environment: 'staging', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, staging, 'healthy', 60_000);
    expect(simDeployment(e2e.sim, 'shop-staging', 'shop')).toMatchObject({ readyReplicas: 2 });
    expect(refused()).toEqual([]);
  });

  it('refuses a deployment into an unlisted namespace, naming the object, the namespace and the setting; nothing is applied', async () => {
    const before = cluster.requests.length;
    const dev = await insertRow(e2e.db, { project: 'shop', environment: 'dev', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'web' });
    const failed = await waitStatus(e2e.db, dev, 'failed', 60_000);
    expect(failed.last_error).toContain('Deployment shop is in namespace shop-dev, which is not one of the namespaces keelson may deploy into (KEELSON_NAMESPACES=shop-staging,shop-prod)');
    expect(failed.last_error).toContain('Nothing was applied.');
    expect(cluster.requests.slice(before).filter((r) => r.namespace === 'shop-dev')).toEqual([]);
    expect(e2e.sim.store.get(typeOf('Namespace'), undefined, 'shop-dev')).toBeUndefined();
  });

  it('refuses a cluster-scoped object before applying anything', async () => {
    // the project's policy allows it, so it is keelson's namespaced mode that refuses
    await e2e.db.query(sql.unsafe`update projects set cluster_resource_whitelist = array['rbac.authorization.k8s.io/ClusterRole'], namespaces = array['shop-*'] where name = 'shop'`);
    const crRepo = await createOpsRepo(e2e, 'cr-ops', {
      'shop/config.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shop-extra\ndata:\n  a: b\n',
      'shop/role.yaml': 'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: shop-reader\nrules: []\n',
    });
    const qa = await insertRow(e2e.db, { project: 'shop', environment: 'qa', image: 'registry.example/shop:1', opsRepoId: crRepo.id });
    await e2e.db.query(sql.unsafe`update deployments set namespace = 'shop-staging' where id = ${qa}`);
    const failed = await waitRow(e2e.db, qa, (r) => r.current_status === 'failed' && r.observed_generation === r.generation, 'failed', 60_000);
    expect(failed.last_error).toContain('ClusterRole shop-reader is cluster-scoped; keelson runs limited to the namespaces KEELSON_NAMESPACES=shop-staging,shop-prod and may not create cluster-scoped objects');
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-staging', 'shop-extra')).toBeUndefined();
    expect(refused()).toEqual([]);
    expect(clusterWideReads()).toEqual([]);
  });
});
