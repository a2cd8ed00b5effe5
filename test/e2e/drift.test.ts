// Drift end to end (issue #13 item 4): the healthy actor dry-runs its current release against the
// live objects each drift interval. The real kubectl changes the simulated cluster the way an
// operator would; keelson repairs (or, with drift 'detect', only reports) and names the fields.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleepUntil } from '../helpers.ts';
import { kubectl, type Kubectl } from '../sim/kubectl.ts';
import { createOpsRepo, history, insertRow, row, simDeployment, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
let run: Kubectl;

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
  run = await kubectl(e2e.sim, e2e.dir, 'drift');
  await e2e.startRuntime({ machineConfig: { driftIntervalMs: 300 } });
});

afterAll(async () => {
  await e2e?.stop();
});

async function ok(args: string[]): Promise<void> {
  const result = await run(args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

/** In-sync drift checks so far (keelson_drift_checks_total). */
const inSyncChecks = async () => (await e2e.metrics.driftChecks.get()).values.find((v) => v.labels.outcome === 'in_sync')?.value ?? 0;

const historyLength = (id: string, n: number) =>
  sleepUntil(async () => {
    const records = await history(e2e.db, id);
    return records.length >= n && records.every((r) => r.status === 'succeeded') ? records : undefined;
  }, { timeoutMs: 15_000, message: `${n} history rows` });

describe('drift: repair', () => {
  it('kubectl set image and a patch of a managed field are re-applied, the history naming the drifted fields', async () => {
    const id = await insertRow(e2e.db, { project: 'mend', image: 'registry.example/mend:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitStatus(e2e.db, id, 'healthy');
    // found in sync more than once (the only row so far): a check of a release found in sync
    // asks the cache whether any of its objects changed instead of rendering it again
    const checked = await inSyncChecks();
    await sleepUntil(async () => (await inSyncChecks()) >= checked + 3, { message: 'in-sync checks' });

    await ok(['-n', 'mend-prod', 'set', 'image', 'deployment/mend', 'web=registry.example/intruder:6']);
    const afterImage = await historyLength(id, 2);
    expect(afterImage[1]).toMatchObject({ action: 'deploy', image_ref: 'registry.example/mend:1' });
    expect(afterImage[1]?.triggered_by).toMatch(/^drift: Deployment mend changed \(.*containers\[name="web"\]\.image/);
    await sleepUntil(() => simDeployment(e2e.sim, 'mend-prod', 'mend')?.image === 'registry.example/mend:1', { message: 'image restored' });

    // replicas through the Deployment itself (not `scale`): a managed field, so drift
    await ok(['-n', 'mend-prod', 'patch', 'deployment/mend', '--type=merge', '-p', '{"spec":{"replicas":5}}']);
    const afterPatch = await historyLength(id, 3);
    expect(afterPatch[2]?.triggered_by).toMatch(/^drift: Deployment mend changed \(\.spec\.replicas\)/);
    await sleepUntil(() => simDeployment(e2e.sim, 'mend-prod', 'mend')?.replicas === 2, { message: 'replicas restored' });
    const done = await waitStatus(e2e.db, id, 'healthy');
    expect(done).toMatchObject({ last_error: null, drift_detected: null });
  });

  it('after a rollback to an older commit, the repair re-applies that commit, not the branch head', async () => {
    const own = await createOpsRepo(e2e, 'pin-ops', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
    const id = await insertRow(e2e.db, { project: 'pin', image: 'registry.example/pin:1', opsRepoId: own.id, manifestPath: 'web' });
    const first = await waitStatus(e2e.db, id, 'healthy');
    const newer = await own.commit({ 'values.yaml': 'replicas: 3\n' }, 'more replicas');
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_sha === newer, 'branch head deployed');
    await e2e.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_sha === first.current_sha && r.desired_status === 'active', 'rolled back');
    await sleepUntil(() => simDeployment(e2e.sim, 'pin-prod', 'pin')?.replicas === 2, { message: 'rolled back to 2 replicas' });

    await ok(['-n', 'pin-prod', 'set', 'image', 'deployment/pin', 'web=registry.example/intruder:8']);
    const records = await historyLength(id, 4);
    expect(records.map((r) => r.action)).toEqual(['deploy', 'deploy', 'rollback', 'deploy']);
    expect(records[3]).toMatchObject({ sha: first.current_sha, image_ref: 'registry.example/pin:1' });
    expect(records[3]?.triggered_by).toMatch(/^drift: Deployment pin changed \(.*image/);
    await sleepUntil(() => simDeployment(e2e.sim, 'pin-prod', 'pin')?.image === 'registry.example/pin:1', { message: 'image restored' });
    expect(simDeployment(e2e.sim, 'pin-prod', 'pin')?.replicas).toBe(2);
    expect((await waitStatus(e2e.db, id, 'healthy')).current_sha).toBe(first.current_sha);
  });
});

describe('drift: detect', () => {
  it('reports drifted fields in drift_detected and changes nothing; scaling through `scale` is not drift', async () => {
    const id = await insertRow(e2e.db, { project: 'watch', image: 'registry.example/watch:1', opsRepoId: repo.id, manifestPath: 'web' });
    const before = await row(e2e.db, id);
    await e2e.db.query(sql.unsafe`update deployments set drift = 'detect' where id = ${id}`);
    // a policy, not desired state: no new generation
    expect((await row(e2e.db, id)).generation).toBe(before.generation);
    await waitStatus(e2e.db, id, 'healthy');

    // an autoscaler's change goes through the scale subresource
    await ok(['-n', 'watch-prod', 'scale', 'deployment/watch', '--replicas=3']);
    await ok(['-n', 'watch-prod', 'set', 'image', 'deployment/watch', 'web=registry.example/intruder:7']);
    const detected = await waitRow(e2e.db, id, (r) => r.drift_detected != null, 'drift detected');
    expect(detected.drift_detected).toMatch(/^Deployment watch changed \(.*containers\[name="web"\]\.image\)$/);
    expect(detected.drift_detected).not.toMatch(/replicas/);
    expect(detected).toMatchObject({ current_status: 'healthy', last_error: null });
    expect(simDeployment(e2e.sim, 'watch-prod', 'watch')).toMatchObject({ image: 'registry.example/intruder:7', replicas: 3 });
    expect(await history(e2e.db, id)).toHaveLength(1);

    // switched to repair: the next check re-applies, and clears the finding
    await e2e.db.query(sql.unsafe`update deployments set drift = 'repair' where id = ${id}`);
    const records = await historyLength(id, 2);
    expect(records[1]?.triggered_by).toMatch(/^drift: Deployment watch changed \(.*image/);
    await sleepUntil(() => simDeployment(e2e.sim, 'watch-prod', 'watch')?.image === 'registry.example/watch:1', { message: 'image restored' });
    expect((await row(e2e.db, id)).drift_detected).toBeNull();
  });
});
