// keelson in in-cluster mode against the simulator with RBAC and TLS on, holding exactly the rights
// deploy/kustomize/base ships: its ServiceAccount, ClusterRole and ClusterRoleBinding applied with
// kubectl, the pod's service-account files minted by the simulator, and keelson's own startServer
// reading them (KUBERNETES_SERVICE_HOST/PORT, token, ca.crt). Deploy, update, rollback, stop,
// resume, prune and drift repair all succeed on those rights; without one rule, the action it
// serves fails with a last_error naming the verb and resource the API server refused.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { typeOf } from '../../src/sim/resources.ts';
import { createOpsRepo, history, insertRow, simDeployment, simObject, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from '../e2e/support.ts';
import { sleepUntil } from '../helpers.ts';
import { kustomize, rbacYaml, SA_USER, startInCluster, type InCluster, type KustomizedObject, type Rule } from './inClusterSupport.ts';

let cluster: InCluster;
let e2e: E2e;
let repo: OpsRepo;
let base: KustomizedObject[];

/** The base's RBAC objects as kustomize builds them, optionally with one ClusterRole rule changed. */
const shippedRbac = (edit?: (rules: Rule[]) => void) => rbacYaml(base, edit);

beforeAll(async () => {
  base = await kustomize('base');
  cluster = await startInCluster({ rbac: shippedRbac() });
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

describe('in-cluster keelson with the shipped RBAC', () => {
  let id: string;

  it('deploys as its ServiceAccount, over HTTPS, and the API server allowed every request', async () => {
    id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:1', readyReplicas: 2 });
    expect(e2e.sim.requests.count({ user: SA_USER })).toBeGreaterThan(0);
    expect(e2e.sim.requests.count({ user: SA_USER, code: 403 })).toBe(0);
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
    expect(e2e.sim.requests.count({ user: SA_USER, code: 403 })).toBe(0);
  });

  it('prunes what the ops repo no longer renders, and repairs drift', async () => {
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-config')).toBeDefined();
    await repo.commit({ 'web/config.yaml': null }, 'drop the config map');
    await sleepUntil(() => simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-config') === undefined, { timeoutMs: 90_000, message: 'ConfigMap pruned' });
    await waitStatus(e2e.db, id, 'healthy', 60_000);

    // someone runs `kubectl delete deployment shop`
    e2e.sim.store.remove(typeOf('Deployment'), 'shop-prod', 'shop');
    await sleepUntil(() => simDeployment(e2e.sim, 'shop-prod', 'shop')?.readyReplicas === 2, { timeoutMs: 90_000, message: 'Deployment re-created' });
    expect(e2e.sim.requests.count({ user: SA_USER, code: 403 })).toBe(0);
  });

  it('without the rule for deployments/scale, stopping fails naming the refused verb and resource', async () => {
    await cluster.kubectl(['apply', '--server-side', '-f', '-'], shippedRbac((rules) => {
      const index = rules.findIndex((rule) => rule.resources.includes('deployments/scale'));
      rules.splice(index, 1);
    }));
    await waitStatus(e2e.db, id, 'healthy', 60_000);
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    const failed = await waitStatus(e2e.db, id, 'failed', 60_000);
    expect(failed.last_error).toContain(`User "${SA_USER}" cannot patch resource "deployments/scale" in API group "apps" in the namespace "shop-prod"`);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')?.replicas).toBe(2);
  });
});
