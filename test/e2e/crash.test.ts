// End to end: the runtime (real effects, in a child process) is killed with SIGKILL mid-rollout;
// a new process takes the lease over, resumes from the persisted snapshot, and the rollout
// completes once, against the in-process simulator reached through a kubeconfig file.
import { sql } from 'slonik';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sleepUntil } from '../helpers.ts';
import {
  createOpsRepo, history, insertRow, row, simDeployment, simPods, spawnRealRuntime, startE2e, waitRow, waitStatus, WEB_TEMPLATE,
  type E2e, type OpsRepo, type RuntimeProcess,
} from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
const processes: RuntimeProcess[] = [];

beforeAll(async () => {
  e2e = await startE2e({ sim: { timeScale: 50, podStartupDelayMs: 1000 } });
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill('SIGKILL')));
  e2e.sim.faults.reset();
  e2e.sim.setTimeScale(50);
});

afterAll(async () => {
  await e2e?.stop();
});

async function start(): Promise<RuntimeProcess> {
  const p = await spawnRealRuntime(e2e, { LEASE_TTL_MS: '1500', TICK_MS: '200' });
  processes.push(p);
  return p;
}

const leaseHolder = async (id: string) =>
  await e2e.db.maybeOneFirst(sql.type(z.object({ instance_id: z.string() }))`
    select instance_id::text from deployment_leases where deployment_id = ${id} and expires_at > now()`);

const transitionTargets = async (id: string) =>
  await e2e.db.anyFirst(sql.type(z.object({ to_state: z.string() }))`
    select to_state from deployment_transitions where deployment_id = ${id} order by seq`);

async function expectCompletedOnce(id: string, image: string): Promise<void> {
  const records = await history(e2e.db, id);
  expect(records.map((r) => [r.action, r.status, r.image_ref])).toEqual([['deploy', 'succeeded', image]]);
  expect(records[0]?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
  // resumed from the snapshot, not started over: the sync was journaled once
  expect((await transitionTargets(id)).filter((s) => s.startsWith('syncing.fetching'))).toHaveLength(1);
}

describe('SIGKILL mid-rollout', () => {
  it('killed in applying: the next process re-applies and the rollout completes once', async () => {
    const first = await start();
    // every API answer waits 2 s: apply (namespace, discovery, two objects) takes many seconds
    e2e.sim.faults.setLatency(2_000);
    const id = await insertRow(e2e.db, { project: 'apply', image: 'registry.example/apply:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitRow(e2e.db, id, (r) => r.current_status === 'applying', 'applying');
    await first.kill('SIGKILL');
    // killed before its apply reached the Deployment: whoever applies it now is the second process
    expect(simDeployment(e2e.sim, 'apply-prod', 'apply')).toBeUndefined();
    expect((await row(e2e.db, id)).current_status).toBe('applying');
    e2e.sim.faults.setLatency(0);

    const second = await start();
    await sleepUntil(async () => (await leaseHolder(id)) === second.instanceId, { message: 'second process took the lease' });
    const done = await waitStatus(e2e.db, id, 'healthy', 30_000);
    expect(done.current_image_ref).toBe('registry.example/apply:1');
    expect(simDeployment(e2e.sim, 'apply-prod', 'apply')).toMatchObject({ image: 'registry.example/apply:1', readyReplicas: 2 });
    await expectCompletedOnce(id, 'registry.example/apply:1');
  });

  it('killed in verifying: the next process verifies again and the rollout completes once', async () => {
    const first = await start();
    // simulated time nearly stands still: the pods stay ContainerCreating while verifying
    e2e.sim.setTimeScale(0.01);
    const id = await insertRow(e2e.db, { project: 'verify', image: 'registry.example/verify:1', opsRepoId: repo.id, manifestPath: 'web' });
    await waitRow(e2e.db, id, (r) => r.current_status === 'verifying', 'verifying');
    expect(simPods(e2e.sim, 'verify-prod', 'verify').some((p) => p.ready)).toBe(false);
    await first.kill('SIGKILL');

    const second = await start();
    await sleepUntil(async () => (await leaseHolder(id)) === second.instanceId, { message: 'second process took the lease' });
    // still verifying (nothing could finish it meanwhile); now let the pods start
    expect((await history(e2e.db, id))).toEqual([]);
    e2e.sim.setTimeScale(50);
    const done = await waitStatus(e2e.db, id, 'healthy', 30_000);
    expect(done.current_image_ref).toBe('registry.example/verify:1');
    expect(simDeployment(e2e.sim, 'verify-prod', 'verify')).toMatchObject({ image: 'registry.example/verify:1', readyReplicas: 2 });
    await expectCompletedOnce(id, 'registry.example/verify:1');
  });
});
