// End to end: a pipeline's row → git ops repo → render → server-side apply → verified rollout in
// the simulated cluster; new images and new ops repo commits roll out.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { typeOf } from '../../src/sim/resources.ts';
import { sleepUntil } from '../helpers.ts';
import {
  createOpsRepo, DEPLOYMENT_LABEL, history, insertRow, MANAGED_BY_LABEL, simDeployment, simObject, simPods, startE2e,
  waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo,
} from './support.ts';

let e2e: E2e;
let repo: OpsRepo;

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
  await e2e.startRuntime({ machineConfig: { driftIntervalMs: 500 } });
});

afterAll(async () => {
  await e2e?.stop();
});

describe('deploy', () => {
  it('a new row reaches healthy and the cluster runs the rendered Deployment with its image', async () => {
    const id = await insertRow(e2e.db, { project: 'web', image: 'registry.example/web:1.0.0', opsRepoId: repo.id });
    const done = await waitStatus(e2e.db, id, 'healthy');
    const head = await repo.head();
    expect(done).toMatchObject({ current_image_ref: 'registry.example/web:1.0.0', current_sha: head, last_error: null });
    expect(done.deployed_at).not.toBeNull();

    const deployment = simDeployment(e2e.sim, 'web-prod', 'web');
    expect(deployment).toMatchObject({ image: 'registry.example/web:1.0.0', replicas: 2, readyReplicas: 2 });
    expect(deployment?.labels).toMatchObject({ [DEPLOYMENT_LABEL]: id, [MANAGED_BY_LABEL]: 'keelson' });
    expect(simObject(e2e.sim, 'Service', 'web-prod', 'web')?.metadata.labels?.[DEPLOYMENT_LABEL]).toBe(id);
    const pods = simPods(e2e.sim, 'web-prod', 'web');
    expect(pods.filter((p) => p.ready && p.image === 'registry.example/web:1.0.0')).toHaveLength(2);

    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.image_ref, r.sha])).toEqual([['deploy', 'succeeded', 'registry.example/web:1.0.0', head]]);
    expect(records[0]?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
  });

  it('a row without an ops repo deploys the built-in template', async () => {
    const id = await insertRow(e2e.db, { project: 'plain', image: 'registry.example/plain:1', valuesOverride: { replicas: 3 } });
    await waitStatus(e2e.db, id, 'healthy');
    expect(simDeployment(e2e.sim, 'plain-prod', 'plain')).toMatchObject({ image: 'registry.example/plain:1', replicas: 3, readyReplicas: 3 });
    expect(simDeployment(e2e.sim, 'plain-prod', 'plain')?.labels[DEPLOYMENT_LABEL]).toBe(id);
  });

  it('a new image_ref rolls out new pods with the new image', async () => {
    const id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    const oldPods = new Set(simPods(e2e.sim, 'shop-prod', 'shop').map((p) => p.name));
    expect(oldPods.size).toBe(2);

    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:2' where id = ${id}`);
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:2', 'shop:2 healthy');
    expect(done.observed_generation).toBe(done.generation);
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:2', readyReplicas: 2, updatedReplicas: 2 });
    // verification waited for the new pods: they are ready, and none of the old ones is left
    const pods = await sleepUntil(() => {
      const now = simPods(e2e.sim, 'shop-prod', 'shop');
      return now.length === 2 ? now : undefined;
    }, { message: 'old pods gone' });
    expect(pods.every((p) => p.ready && p.image === 'registry.example/shop:2' && !oldPods.has(p.name))).toBe(true);
    expect((await history(e2e.db, id)).map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/shop:1'],
      ['deploy', 'succeeded', 'registry.example/shop:2'],
    ]);
  });

  it('a new commit in the ops repo rolls out after the next sync of the healthy actor', async () => {
    // a repo of its own: the other tests keep 2 replicas
    const own = await createOpsRepo(e2e, 'cart-ops', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
    const id = await insertRow(e2e.db, { project: 'cart', image: 'registry.example/cart:1', opsRepoId: own.id, manifestPath: 'web' });
    const first = await waitStatus(e2e.db, id, 'healthy');
    expect(simDeployment(e2e.sim, 'cart-prod', 'cart')).toMatchObject({ replicas: 2, readyReplicas: 2 });

    const sha = await own.commit({ 'values.yaml': 'replicas: 4\n' }, 'more replicas');
    expect(sha).not.toBe(first.current_sha);
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_sha === sha, 'new commit deployed');
    expect(done.current_image_ref).toBe('registry.example/cart:1');
    expect(simDeployment(e2e.sim, 'cart-prod', 'cart')).toMatchObject({ replicas: 4, readyReplicas: 4 });
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.sha])).toEqual([
      ['deploy', 'succeeded', first.current_sha],
      ['deploy', 'succeeded', sha],
    ]);
    expect(records[1]?.triggered_by).toMatch(/^drift: ops repo moved/);
  });
});

describe('drift', () => {
  it('a Deployment deleted from the cluster is re-applied by the healthy actor', async () => {
    const id = await insertRow(e2e.db, { project: 'drift', image: 'registry.example/drift:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    const before = simObject(e2e.sim, 'Deployment', 'drift-prod', 'drift')?.metadata.uid;
    expect(before).toBeDefined();
    // someone runs `kubectl delete deployment drift`
    e2e.sim.store.remove(typeOf('Deployment'), 'drift-prod', 'drift');
    await sleepUntil(() => {
      const now = simObject(e2e.sim, 'Deployment', 'drift-prod', 'drift');
      return now && now.metadata.uid !== before;
    }, { timeoutMs: 15_000, message: 'Deployment re-created' });
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy', 'healthy again');
    expect(done.last_error).toBeNull();
    await sleepUntil(() => simDeployment(e2e.sim, 'drift-prod', 'drift')?.readyReplicas === 2, { message: '2 ready again' });
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded'], ['deploy', 'succeeded']]);
    expect(records[1]?.triggered_by).toMatch(/^drift: Deployment drift missing/);
  });
});

describe('superseded rollouts', () => {
  it('a fixed image pushed while a bad one is still verifying wins', async () => {
    const id = await insertRow(e2e.db, { project: 'fix', image: 'registry.example/fix:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/fix:doesnotexist' where id = ${id}`);
    // the pods of the bad image back off; verification has not given up yet (10 s grace)
    await waitRow(e2e.db, id, (r) => r.current_status === 'verifying', 'verifying the bad image');
    await sleepUntil(() => simPods(e2e.sim, 'fix-prod', 'fix').some((p) => p.waitingReason === 'ImagePullBackOff' || p.waitingReason === 'ErrImagePull'), { message: 'bad pods' });
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/fix:2' where id = ${id}`);
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/fix:2', 'fix:2 healthy');
    expect(done.observed_generation).toBe(done.generation);
    expect(done.last_error).toBeNull();
    expect(simDeployment(e2e.sim, 'fix-prod', 'fix')).toMatchObject({ image: 'registry.example/fix:2', readyReplicas: 2, updatedReplicas: 2 });
    await sleepUntil(() => simPods(e2e.sim, 'fix-prod', 'fix').every((p) => p.image === 'registry.example/fix:2'), { message: 'bad pods gone' });
    const records = await history(e2e.db, id);
    expect(records.at(-1)).toMatchObject({ action: 'deploy', status: 'succeeded', image_ref: 'registry.example/fix:2' });
    expect(records.filter((r) => r.status === 'succeeded').map((r) => r.image_ref)).toEqual(['registry.example/fix:1', 'registry.example/fix:2']);
  });
});
