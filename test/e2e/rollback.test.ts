// End to end: desired_status = 'rollback' written by a pipeline restores the previous healthy
// image in the cluster and writes it back to the row; without one the deployment fails clearly.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpsRepo, history, insertRow, simDeployment, simPods, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;

beforeAll(async () => {
  // fast enough for the kubelet to reach ImagePullBackOff within the short fail-fast grace
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 1000 } });
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
  await e2e.startRuntime({ failFastGraceMs: 1_000 });
});

afterAll(async () => {
  await e2e?.stop();
});

describe('rollback', () => {
  it('restores the previous healthy image and writes it back to the row', async () => {
    const id = await insertRow(e2e.db, { project: 'api', image: 'registry.example/api:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/api:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/api:2', 'api:2 healthy');
    expect(simDeployment(e2e.sim, 'api-prod', 'api')?.image).toBe('registry.example/api:2');

    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    const done = await waitRow(
      e2e.db, id,
      (r) => r.current_status === 'healthy' && r.desired_status === 'active' && r.current_image_ref === 'registry.example/api:1',
      'rolled back to api:1',
    );
    // the row tells the truth: the rolled-back image is the desired one again
    expect(done).toMatchObject({ image_ref: 'registry.example/api:1', last_error: null });
    expect(done.observed_generation).toBe(done.generation);
    expect(simDeployment(e2e.sim, 'api-prod', 'api')).toMatchObject({ image: 'registry.example/api:1', readyReplicas: 2, updatedReplicas: 2 });
    const pods = simPods(e2e.sim, 'api-prod', 'api').filter((p) => p.ready);
    expect(pods.length).toBeGreaterThanOrEqual(2);
    expect(pods.every((p) => p.image === 'registry.example/api:1')).toBe(true);

    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/api:1'],
      ['deploy', 'succeeded', 'registry.example/api:2'],
      ['rollback', 'succeeded', 'registry.example/api:1'],
    ]);
    expect(records[2]?.phases.map((p) => p.name)).toEqual(['find-target', 'sync', 'render', 'apply', 'verify']);
  });

  it('with no previous healthy image ends failed with a clear last_error and leaves the cluster alone', async () => {
    const id = await insertRow(e2e.db, { project: 'lonely', image: 'registry.example/lonely:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    const failed = await waitStatus(e2e.db, id, 'failed');
    expect(failed.last_error).toMatch(/no previous healthy image to roll back to/);
    expect(failed.desired_status).toBe('rollback');
    expect(simDeployment(e2e.sim, 'lonely-prod', 'lonely')).toMatchObject({ image: 'registry.example/lonely:1', readyReplicas: 2 });
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded'], ['rollback', 'failed']]);
    expect(records[1]?.error).toMatch(/no previous healthy image/);

    // a pipeline fixes it by asking for active again
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'active' where id = ${id}`);
    const back = await waitStatus(e2e.db, id, 'healthy');
    expect(back.last_error).toBeNull();
  });

  it('a row that asks for a rollback before any deploy fails with the same message', async () => {
    const id = await e2e.db.oneFirst(sql.unsafe`
      insert into deployments (project, environment, image_ref, desired_status) values ('fresh', 'prod', 'registry.example/fresh:1', 'rollback') returning id`);
    const failed = await waitStatus(e2e.db, String(id), 'failed');
    expect(failed.last_error).toMatch(/no previous healthy image to roll back to/);
    expect(simDeployment(e2e.sim, 'fresh-prod', 'fresh')).toBeUndefined();
  });
});

describe('rollback after a failed deploy', () => {
  it('restores the last healthy image after a deploy of an unpullable image failed', async () => {
    const id = await insertRow(e2e.db, { project: 'after', image: 'registry.example/after:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/after:doesnotexist' where id = ${id}`);
    const failed = await waitStatus(e2e.db, id, 'failed', 30_000);
    expect(failed.last_error).toMatch(/ImagePullBackOff|ErrImagePull/);

    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.desired_status === 'active', 'rolled back', 30_000);
    expect(done).toMatchObject({ image_ref: 'registry.example/after:1', current_image_ref: 'registry.example/after:1', last_error: null });
    expect(simDeployment(e2e.sim, 'after-prod', 'after')).toMatchObject({ image: 'registry.example/after:1', readyReplicas: 2, updatedReplicas: 2 });
    expect((await history(e2e.db, id)).map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/after:1'],
      ['deploy', 'failed', 'registry.example/after:doesnotexist'],
      ['rollback', 'succeeded', 'registry.example/after:1'],
    ]);
  });
});
