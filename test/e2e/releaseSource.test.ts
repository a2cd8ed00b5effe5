// End to end: a rollback renders its release from the ops repo and manifest path the release was
// rendered from (migration 0013), not from where the row points now, and writes them back; a
// release whose ops repo is gone fails the rollback naming the release, the repo and the path.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpsRepo, history, insertRow, simDeployment, simObject, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e } from './support.ts';

// `web2` differs from `web` in what a rollback would get wrong: three replicas, and a ConfigMap
const WEB2_TEMPLATE = `${WEB_TEMPLATE.replace('replicas: {{ values.replicas }}', 'replicas: 3')}---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ project }}-web2
data:
  variant: web2
`;
// prune: what release A does not render leaves the cluster when the rollback applies it
const VALUES = 'replicas: 2\nkeelson:\n  prune: true\n';

let e2e: E2e;

beforeAll(async () => {
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 500 } });
  await e2e.startRuntime({ failFastGraceMs: 1_000 });
});

afterAll(async () => {
  await e2e?.stop();
});

describe('rollback renders from its release\'s ops repo and path', () => {
  it('release A from shop/web, the row moved to shop/web2: the rollback runs A\'s objects from shop/web and writes the path back', async () => {
    // both folders exist in the one commit A renders: rendered from the row's path, A's commit
    // would give web2's objects without any error
    const repo = await createOpsRepo(e2e, 'paths', { 'values.yaml': VALUES, 'shop/web/deployment.yaml': WEB_TEMPLATE, 'shop/web2/deployment.yaml': WEB2_TEMPLATE });
    const id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:1', opsRepoId: repo.id, manifestPath: 'shop/web' });
    await waitStatus(e2e.db, id, 'healthy');
    const [releaseA] = await history(e2e.db, id);
    expect(releaseA).toMatchObject({ action: 'deploy', status: 'succeeded', ops_repo_id: repo.id, manifest_path: 'shop/web' });

    await e2e.db.query(sql.unsafe`update deployments set manifest_path = 'shop/web2', image_ref = 'registry.example/shop:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:2', 'shop:2 from web2 healthy');
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:2', replicas: 3 });
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-web2')).toBeDefined();

    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback', rollback_to = ${releaseA!.id} where id = ${id}`);
    const done = await waitRow(
      e2e.db, id,
      (r) => r.current_status === 'healthy' && r.desired_status === 'active' && r.current_image_ref === 'registry.example/shop:1' && r.observed_generation === r.generation,
      'rolled back to release A',
      30_000,
    );
    // the cluster runs A's objects, from shop/web: two replicas, no web2 ConfigMap
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:1', replicas: 2 });
    expect(simObject(e2e.sim, 'ConfigMap', 'shop-prod', 'shop-web2')).toBeUndefined();
    // the row describes what runs: the path is written back with the image
    expect(done).toMatchObject({ image_ref: 'registry.example/shop:1', manifest_path: 'shop/web', ops_repo_id: repo.id, rollback_to: null, last_error: null, current_sha: releaseA!.sha });

    const records = await history(e2e.db, id);
    // the write-back's generation is adopted as it is: no deploy after the rollback
    expect(records.map((r) => [r.action, r.status, r.manifest_path])).toEqual([
      ['deploy', 'succeeded', 'shop/web'],
      ['deploy', 'succeeded', 'shop/web2'],
      ['rollback', 'succeeded', 'shop/web'],
    ]);
    expect(records[2]).toMatchObject({ sha: releaseA!.sha, ops_repo_id: repo.id });
    expect(records[2]?.phases.find((p) => p.name === 'find-target')?.detail).toMatch(/path shop\/web\)/);

    // and the next image change renders from shop/web, the row's path now
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:3' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:3', 'shop:3 healthy');
    expect(simDeployment(e2e.sim, 'shop-prod', 'shop')).toMatchObject({ image: 'registry.example/shop:3', replicas: 2 });
    expect((await history(e2e.db, id)).at(-1)).toMatchObject({ action: 'deploy', manifest_path: 'shop/web' });
  });

  it('a release whose ops repo was deleted since: the rollback fails naming the release, the repo and the path', async () => {
    const gone = await createOpsRepo(e2e, 'gone', { 'values.yaml': 'replicas: 2\n', 'mover/web/deployment.yaml': WEB_TEMPLATE });
    const next = await createOpsRepo(e2e, 'next', { 'values.yaml': 'replicas: 2\n', 'mover/web/deployment.yaml': WEB_TEMPLATE });
    const id = await insertRow(e2e.db, { project: 'mover', image: 'registry.example/mover:1', opsRepoId: gone.id, manifestPath: 'mover/web' });
    await waitStatus(e2e.db, id, 'healthy');
    const [releaseA] = await history(e2e.db, id);
    expect(releaseA).toMatchObject({ ops_repo_id: gone.id, manifest_path: 'mover/web' });

    await e2e.db.query(sql.unsafe`update deployments set ops_repo_id = ${next.id}, image_ref = 'registry.example/mover:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/mover:2', 'mover:2 from next healthy');
    // no row points at it any more: an admin may delete it; history keeps no hold on it
    await e2e.db.query(sql.unsafe`delete from ops_repos where id = ${gone.id}`);

    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback', rollback_to = ${releaseA!.id} where id = ${id}`);
    const failed = await waitRow(e2e.db, id, (r) => r.current_status === 'failed' && r.observed_generation === r.generation, 'rollback failed');
    expect(failed.last_error).toContain(`Release ${releaseA!.id} was rendered from ops repo ${gone.id}, path mover/web, which is no longer registered`);
    // nothing was applied: the cluster still runs mover:2, and the row is as the pipeline left it
    expect(simDeployment(e2e.sim, 'mover-prod', 'mover')).toMatchObject({ image: 'registry.example/mover:2' });
    expect(failed).toMatchObject({ ops_repo_id: next.id, desired_status: 'rollback', current_image_ref: 'registry.example/mover:2' });
    const records = await history(e2e.db, id);
    expect(records.at(-1)).toMatchObject({ action: 'rollback', status: 'failed' });
  });
});
