// End to end: what goes wrong ends where it should. An unpullable image fails verification with
// the pod's reason (or rolls back with auto_rollback); a bad template or an escaping manifest path
// fails before anything reaches the cluster; a cluster outage mid-apply is retried.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOpsRepo, history, insertRow, simDeployment, simList, simObjectsOf, simPods, startE2e, waitRow, waitStatus, WEB_TEMPLATE,
  type E2e, type OpsRepo,
} from './support.ts';

let e2e: E2e;
let repo: OpsRepo;

beforeAll(async () => {
  // 100 simulated seconds per second: the kubelet reaches ImagePullBackOff within ~60 ms
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 1000 } });
  repo = await createOpsRepo(e2e, 'platform', {
    'values.yaml': 'replicas: 2\n',
    'web/deployment.yaml': WEB_TEMPLATE,
    'broken/deployment.yaml': WEB_TEMPLATE.replace('replicas: {{ values.replicas }}', 'replicas: {{ values.replicas }}\n  minReadySeconds: {{ ready_seconds }}'),
  });
  await e2e.startRuntime({ failFastGraceMs: 1_000 });
});

afterAll(async () => {
  await e2e?.stop();
});

const namespaces = () => simList(e2e.sim, 'Namespace').map((ns) => ns.metadata.name);

describe('failures', () => {
  it('an image the cluster cannot pull ends failed with the pod reason, history and phase timings', async () => {
    const id = await insertRow(e2e.db, { project: 'pull', image: 'registry.example/pull:doesnotexist', opsRepoId: repo.id, manifestPath: 'web' });
    const failed = await waitStatus(e2e.db, id, 'failed');
    expect(failed.last_error).toMatch(/Deployment pull-prod\/pull failed: pod pull-[a-z0-9-]+: container web is waiting: ImagePullBackOff/);
    expect(failed.current_image_ref).toBeNull();
    // it did reach the cluster: the pods really are backing off
    expect(simPods(e2e.sim, 'pull-prod', 'pull').some((p) => p.waitingReason === 'ImagePullBackOff')).toBe(true);

    const records = await history(e2e.db, id);
    expect(records).toHaveLength(1);
    const record = records[0]!;
    expect(record).toMatchObject({ action: 'deploy', status: 'failed', image_ref: 'registry.example/pull:doesnotexist' });
    expect(record.error).toMatch(/ImagePullBackOff/);
    expect(record.phases.map((p) => [p.name, p.error ? 'error' : 'ok'])).toEqual([
      ['sync', 'ok'], ['render', 'ok'], ['apply', 'ok'], ['verify', 'error'],
    ]);
    for (const p of record.phases) {
      expect(p.duration_ms).toBeGreaterThanOrEqual(0);
      expect(Date.parse(p.finished_at!) - Date.parse(p.started_at)).toBe(p.duration_ms);
    }
    // the verify phase lasted at least the fail-fast grace
    expect(record.phases[3]?.duration_ms).toBeGreaterThanOrEqual(1_000);
    expect(record.phases[3]?.error).toMatch(/ImagePullBackOff/);
  });

  it('with auto_rollback an unpullable image rolls back to the previous healthy image', async () => {
    const id = await insertRow(e2e.db, { project: 'auto', image: 'registry.example/auto:1', opsRepoId: repo.id, manifestPath: 'web', autoRollback: true });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/auto:doesnotexist' where id = ${id}`);
    const done = await waitRow(
      e2e.db, id,
      (r) => r.current_status === 'healthy' && r.image_ref === 'registry.example/auto:1' && r.observed_generation === r.generation,
      'auto-rolled back',
      30_000,
    );
    expect(done.current_image_ref).toBe('registry.example/auto:1');
    expect(simDeployment(e2e.sim, 'auto-prod', 'auto')).toMatchObject({ image: 'registry.example/auto:1', readyReplicas: 2 });
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status, r.image_ref])).toEqual([
      ['deploy', 'succeeded', 'registry.example/auto:1'],
      ['deploy', 'failed', 'registry.example/auto:doesnotexist'],
      ['auto-rollback', 'succeeded', 'registry.example/auto:1'],
    ]);
    expect(records[1]?.error).toMatch(/ImagePullBackOff/);
  });

  it('a template using an undefined variable fails naming it, and applies nothing', async () => {
    const id = await insertRow(e2e.db, { project: 'tmpl', image: 'registry.example/tmpl:1', opsRepoId: repo.id, manifestPath: 'broken' });
    const failed = await waitStatus(e2e.db, id, 'failed');
    expect(failed.last_error).toMatch(/broken\/deployment\.yaml:7:\d+: .*undefined.* in `\{\{ ready_seconds \}\}`/);
    expect(failed.last_error).toMatch(/broken\/deployment\.yaml/);
    expect(simObjectsOf(e2e.sim, id)).toEqual([]);
    expect(namespaces()).not.toContain('tmpl-prod');
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'failed']]);
    expect(records[0]?.phases.map((p) => [p.name, p.error ? 'error' : 'ok'])).toEqual([['sync', 'ok'], ['render', 'error']]);
  });

  it('a manifest_path escaping the ops repo is refused by the database, naming its constraint', async () => {
    // the renderer's own confinement (symlinks included) is tested in test/render
    await expect(
      e2e.db.query(sql.unsafe`insert into deployments (project, environment, image_ref, ops_repo_id, manifest_path)
        values ('escape', 'prod', 'registry.example/escape:1', ${repo.id}, '../../etc')`),
    ).rejects.toMatchObject({ constraint: 'deployments_manifest_path_confined' });
    expect(namespaces()).not.toContain('escape-prod');
  });

  it('a cluster outage during applying is retried and the rollout completes after it ends', async () => {
    e2e.sim.faults.setLatency(300);
    try {
      const id = await insertRow(e2e.db, { project: 'outage', image: 'registry.example/outage:1', opsRepoId: repo.id, manifestPath: 'web' });
      await waitRow(e2e.db, id, (r) => r.current_status === 'applying', 'applying', 20_000);
      await e2e.sim.faults.pause();
      const retrying = await waitRow(e2e.db, id, (r) => r.current_status === 'applying' && /retrying/.test(r.last_error ?? ''), 'apply retrying');
      expect(retrying.last_error).toMatch(/attempt \d+, retrying/);
      e2e.sim.faults.setLatency(0);
      await e2e.sim.faults.resume();
      const done = await waitStatus(e2e.db, id, 'healthy', 30_000);
      expect(done.last_error).toBeNull();
      expect(simDeployment(e2e.sim, 'outage-prod', 'outage')).toMatchObject({ image: 'registry.example/outage:1', readyReplicas: 2 });
      expect((await history(e2e.db, id)).map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded']]);
    } finally {
      e2e.sim.faults.reset();
      await e2e.sim.faults.resume();
    }
  });
});

describe('cluster outage while verifying', () => {
  it('verification retries across the outage and the rollout completes after it', async () => {
    e2e.sim.setTimeScale(0.01);
    try {
      const id = await insertRow(e2e.db, { project: 'blip', image: 'registry.example/blip:1', opsRepoId: repo.id, manifestPath: 'web' });
      await waitRow(e2e.db, id, (r) => r.current_status === 'verifying', 'verifying');
      await e2e.sim.faults.pause();
      const retrying = await waitRow(e2e.db, id, (r) => /retrying/.test(r.last_error ?? ''), 'verify retrying', 30_000);
      expect(retrying.current_status).toBe('verifying');
      e2e.sim.setTimeScale(100);
      await e2e.sim.faults.resume();
      const done = await waitStatus(e2e.db, id, 'healthy', 30_000);
      expect(done.last_error).toBeNull();
      expect(simDeployment(e2e.sim, 'blip-prod', 'blip')).toMatchObject({ image: 'registry.example/blip:1', readyReplicas: 2 });
      expect((await history(e2e.db, id)).map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded']]);
    } finally {
      e2e.sim.setTimeScale(100);
      await e2e.sim.faults.resume();
    }
  });
});
