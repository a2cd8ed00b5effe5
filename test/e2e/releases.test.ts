// End to end (real PostgreSQL, a real git ops repo, the simulator): what is rendered, recorded in
// history and shown as current_sha is one commit even when the branch moves between sync and
// render; a rollback goes back to the newest earlier healthy release that differs (image, commit
// or values) and renders exactly that release's commit and values; rollback_to names a release,
// and one that is not this deployment's or did not succeed is refused.
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Source } from '../../src/source/source.ts';
import { sleepUntil } from '../helpers.ts';
import { createOpsRepo, history, insertRow, row, simObject, startE2e, waitRow, waitStatus, type E2e, type OpsRepo } from './support.ts';

/** A Deployment whose sidecar image comes from the ops repo's values: a config change can break it. */
const TEMPLATE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ project }}
spec:
  replicas: {{ values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ project }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ project }}
    spec:
      containers:
        - name: web
          image: {{ image_ref }}
        - name: sidecar
          image: {{ values.sidecar }}
`;

let e2e: E2e;
let repo: OpsRepo;

beforeAll(async () => {
  // fast enough for the kubelet to reach ImagePullBackOff within the short fail-fast grace
  e2e = await startE2e({ sim: { timeScale: 100, podStartupDelayMs: 1000 } });
  repo = await createOpsRepo(e2e, 'releases', {
    'values.yaml': 'replicas: 2\nsidecar: registry.example/sidecar:1\n',
    'web/deployment.yaml': TEMPLATE,
  });
});

afterAll(async () => {
  await e2e?.stop();
});

type Containers = Array<{ name: string; image: string }>;
const containers = (namespace: string, name: string): Containers | undefined =>
  ((simObject(e2e.sim, 'Deployment', namespace, name)?.spec as { template?: { spec?: { containers?: Containers } } } | undefined)?.template?.spec?.containers)
    ?.map((c) => ({ name: c.name, image: c.image }));
const replicas = (namespace: string, name: string): number | undefined =>
  (simObject(e2e.sim, 'Deployment', namespace, name)?.spec as { replicas?: number } | undefined)?.replicas;

describe('sources pinned by commit', () => {
  it('a commit pushed between sync and render is not rendered: rendered, history and current_sha agree', async () => {
    let armed = true;
    let pushed: string | undefined;
    await e2e.startRuntime({
      failFastGraceMs: 1_000,
      // the race made deterministic: right after the sync step learnt the head, the branch moves
      // and the checkout follows it, before the render step starts
      wrapSource: (source: Source): Source => ({
        async head(repoId, options) {
          const head = await source.head(repoId, options);
          if (armed) {
            armed = false;
            pushed = await repo.commit({ 'values.yaml': 'replicas: 3\nsidecar: registry.example/sidecar:1\n' }, 'moved during the rollout');
            expect((await source.head(repoId, { force: true })).sha).toBe(pushed);
          }
          return head;
        },
        tree: (repoId, sha, options) => source.tree(repoId, sha, options),
      }),
    });
    const synced = await repo.head();
    const id = await insertRow(e2e.db, { project: 'race', image: 'registry.example/race:1', opsRepoId: repo.id, manifestPath: 'web' });
    const done = await waitStatus(e2e.db, id, 'healthy');
    expect(pushed).toBeDefined();
    expect(pushed).not.toBe(synced);
    // the checkout is at the pushed commit; what ran is the synced one, everywhere
    const lastSha = await e2e.db.oneFirst(sql.type(z.object({ last_sha: z.string() }))`select last_sha from ops_repos where id = ${repo.id}`);
    expect(lastSha).toBe(pushed);
    expect(replicas('race-prod', 'race')).toBe(2);
    expect(done.current_sha).toBe(synced);
    const [deploy] = await history(e2e.db, id);
    expect(deploy).toMatchObject({ action: 'deploy', status: 'succeeded', sha: synced });
    expect(deploy?.values_redacted).toMatchObject({ replicas: 2 });
    expect(deploy?.phases.find((p) => p.name === 'sync')?.detail).toBe(`ops repo at ${synced}`);
  });
});

describe('releases and exact rollback', () => {
  it('z:1 ok, a:2 ok, config change, a:2 failed: rolls back to a:2 with the previous commit and values; explicit releases', async () => {
    // only this test's deployments from here on: the source's calls are theirs
    await e2e.db.query(sql.unsafe`delete from deployments where project = 'race'`);
    let heads = 0;
    // a short drift interval: the config change is deployed by the healthy actor's drift check
    await e2e.startRuntime({
      failFastGraceMs: 1_000,
      machineConfig: { driftIntervalMs: 300 },
      wrapSource: (source: Source): Source => ({
        head: (repoId, options) => {
          heads += 1;
          return source.head(repoId, options);
        },
        tree: (repoId, sha, options) => source.tree(repoId, sha, options),
      }),
    });
    const good = await repo.head();
    const id = await insertRow(e2e.db, { project: 'shop', image: 'registry.example/shop:z1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/shop:a2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/shop:a2', 'a2 healthy');
    const healthyA2 = containers('shop-prod', 'shop');
    expect(healthyA2).toEqual([{ name: 'web', image: 'registry.example/shop:a2' }, { name: 'sidecar', image: 'registry.example/sidecar:1' }]);

    // the config change: a sidecar image that cannot be pulled
    const broken = await repo.commit({ 'values.yaml': 'replicas: 2\nsidecar: registry.example/sidecar:unpullable\n' }, 'config change');
    await waitRow(e2e.db, id, (r) => r.current_status === 'failed', 'a2 failed after the config change', 30_000);
    const before = await history(e2e.db, id);
    expect(before.map((h) => [h.action, h.status, h.image_ref, h.sha])).toEqual([
      ['deploy', 'succeeded', 'registry.example/shop:z1', good],
      ['deploy', 'succeeded', 'registry.example/shop:a2', good],
      ['deploy', 'failed', 'registry.example/shop:a2', broken],
    ]);
    const [z1, a2] = before as [typeof before[0], typeof before[0]];
    expect(before[2]?.values_hash).not.toBe(a2.values_hash);

    // the default target is a2 (same image, previous commit and values), not z1
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    const back = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.desired_status === 'active', 'rolled back', 30_000);
    expect(back).toMatchObject({ image_ref: 'registry.example/shop:a2', current_image_ref: 'registry.example/shop:a2', current_sha: good, rollback_to: null });
    const rollback = (await history(e2e.db, id))[3];
    expect(rollback).toMatchObject({ action: 'rollback', status: 'succeeded', image_ref: 'registry.example/shop:a2', sha: good, values_hash: a2.values_hash });
    expect(rollback?.phases.find((p) => p.name === 'find-target')?.detail).toBe(`rolling back to registry.example/shop:a2 (release ${a2.id}, commit ${good.slice(0, 12)}, path web)`);
    // the applied objects are that release's render
    expect(containers('shop-prod', 'shop')).toEqual(healthyA2);
    expect(rollback?.inventory).toEqual(a2.inventory);

    // the branch still has the broken commit, but it did not move since the rollback: the drift
    // check leaves the rollback in place (two checks pass without a new action)
    // check (each drift check asks the source for the head)
    const seen = heads;
    await sleepUntil(() => (heads >= seen + 2 ? true : undefined), { timeoutMs: 10_000, message: 'two drift checks after the rollback' });
    expect((await history(e2e.db, id)).length).toBe(4);
    expect((await row(e2e.db, id)).current_sha).toBe(good);

    // an explicit release: z1
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback', rollback_to = ${z1.id} where id = ${id}`);
    const toZ1 = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.desired_status === 'active' && r.current_image_ref === 'registry.example/shop:z1', 'rolled back to z1', 30_000);
    expect(toZ1).toMatchObject({ image_ref: 'registry.example/shop:z1', rollback_to: null, current_sha: good });
    expect(containers('shop-prod', 'shop')?.[0]?.image).toBe('registry.example/shop:z1');

    // refused: a failed release, another deployment's release
    const failedId = before[2]!.id;
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback', rollback_to = ${failedId} where id = ${id}`);
    const refused = await waitStatus(e2e.db, id, 'failed');
    expect(refused.last_error).toBe(`Release ${failedId} of this deployment failed; only a release that went healthy can be rolled back to.`);
    const otherId = await insertRow(e2e.db, { project: 'other', image: 'registry.example/other:1' });
    await waitStatus(e2e.db, otherId, 'healthy');
    const foreign = (await history(e2e.db, otherId))[0]!.id;
    await e2e.db.query(sql.unsafe`update deployments set rollback_to = ${foreign} where id = ${id}`);
    const foreignRefused = await waitRow(e2e.db, id, (r) => r.current_status === 'failed' && r.observed_generation === r.generation && r.last_error !== refused.last_error, 'foreign release refused');
    expect(foreignRefused.last_error).toMatch(new RegExp(`^History entry ${foreign} is not a release of this deployment`));
    // nothing changed in the cluster
    expect(containers('shop-prod', 'shop')?.[0]?.image).toBe('registry.example/shop:z1');
  });
});
