// End to end: desired_status = 'stopped' scales the deployment's workloads to 0 in the cluster;
// 'active' again brings them back.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpsRepo, history, insertRow, simDeployment, simPods, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
  await e2e.startRuntime({ machineConfig: { driftIntervalMs: 500 }, failFastGraceMs: 1_000 });
});

afterAll(async () => {
  await e2e?.stop();
});

describe('stop', () => {
  it('scales to 0 and back to the rendered replicas', async () => {
    const id = await insertRow(e2e.db, { project: 'jobs', image: 'registry.example/jobs:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    expect(simDeployment(e2e.sim, 'jobs-prod', 'jobs')).toMatchObject({ replicas: 2, readyReplicas: 2 });

    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    const stopped = await waitStatus(e2e.db, id, 'stopped');
    expect(stopped.last_error).toBeNull();
    expect(simDeployment(e2e.sim, 'jobs-prod', 'jobs')).toMatchObject({ replicas: 0, readyReplicas: 0 });
    expect(simPods(e2e.sim, 'jobs-prod', 'jobs').filter((p) => p.ready)).toEqual([]);

    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'active' where id = ${id}`);
    const back = await waitStatus(e2e.db, id, 'healthy');
    expect(back.current_image_ref).toBe('registry.example/jobs:1');
    expect(simDeployment(e2e.sim, 'jobs-prod', 'jobs')).toMatchObject({ replicas: 2, readyReplicas: 2 });
    expect(simPods(e2e.sim, 'jobs-prod', 'jobs').filter((p) => p.ready && p.image === 'registry.example/jobs:1')).toHaveLength(2);
    expect((await history(e2e.db, id)).map((r) => [r.action, r.status])).toEqual([
      ['deploy', 'succeeded'],
      ['stop', 'succeeded'],
      ['resume', 'succeeded'],
    ]);
  });

  // The row says what the cluster runs: a stop that cuts a verification short leaves the applied
  // (new) image in the scaled-to-zero workload, so current_image_ref must name it too.
  it('a stop that cuts a verification short records the applied image as current', async () => {
    const id = await insertRow(e2e.db, { project: 'cut', image: 'registry.example/cut:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    // simulated time nearly stands still: the new pods stay ContainerCreating while verifying
    e2e.sim.setTimeScale(0.01);
    try {
      await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/cut:2' where id = ${id}`);
      await waitRow(e2e.db, id, (r) => r.current_status === 'verifying', 'verifying cut:2');
      expect(simDeployment(e2e.sim, 'cut-prod', 'cut')?.image).toBe('registry.example/cut:2');
      await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
      // the stop is under way (the verification was aborted): time may run again
      await waitRow(e2e.db, id, (r) => r.current_status === 'stopped', 'stopping');
    } finally {
      e2e.sim.setTimeScale(50);
    }
    const stopped = await waitStatus(e2e.db, id, 'stopped');
    expect(simDeployment(e2e.sim, 'cut-prod', 'cut')).toMatchObject({ image: 'registry.example/cut:2', replicas: 0 });
    expect(stopped).toMatchObject({ current_image_ref: 'registry.example/cut:2', last_error: null });
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/cut:1'],
      ['deploy', 'superseded', 'registry.example/cut:2'],
      ['stop', 'succeeded', 'registry.example/cut:2'],
    ]);
    expect(records[1]?.error).toMatch(/^stopped by generation 3 \(stop\) before verification finished: registry\.example\/cut:2 was applied but not verified/);

    // resuming brings back what the row says runs
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'active' where id = ${id}`);
    const back = await waitStatus(e2e.db, id, 'healthy');
    expect(back.current_image_ref).toBe('registry.example/cut:2');
    expect(simDeployment(e2e.sim, 'cut-prod', 'cut')).toMatchObject({ image: 'registry.example/cut:2', replicas: 2, readyReplicas: 2 });
  });

  // A failed deploy leaves its image applied while current_image_ref names the last good one; a
  // stop then scales the failed image to zero, so the stopped row must name that image (the chaos
  // suite found the same after a kill -9 in the middle of an apply).
  it('a stop after a failed deploy records the image its workload runs', async () => {
    const id = await insertRow(e2e.db, { project: 'after', image: 'registry.example/after:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/after:doesnotexist' where id = ${id}`);
    const failed = await waitRow(e2e.db, id, (r) => r.current_status === 'failed' && r.observed_generation === r.generation, 'failed deploy');
    expect(failed.current_image_ref).toBe('registry.example/after:1');
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    const stopped = await waitStatus(e2e.db, id, 'stopped');
    expect(simDeployment(e2e.sim, 'after-prod', 'after')).toMatchObject({ image: 'registry.example/after:doesnotexist', replicas: 0 });
    expect(stopped.current_image_ref).toBe('registry.example/after:doesnotexist');
    expect((await history(e2e.db, id)).map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/after:1'],
      ['deploy', 'failed', 'registry.example/after:doesnotexist'],
      ['stop', 'succeeded', 'registry.example/after:doesnotexist'],
    ]);
  });
});
