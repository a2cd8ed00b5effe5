// Live health after healthy end to end (issue #13 item 5): the healthy actor follows the live
// health of what it deployed (from the shared cluster cache). The real kubectl switches the image
// to one the simulator crash-loops, with drift 'detect' so the drift check does not undo it:
// the deployment goes failed naming the pod and reason, recovers on its own when fixed, and with
// auto_rollback is rolled back once the degraded grace is over.
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sleepUntil } from '../helpers.ts';
import { kubectl, type Kubectl } from '../sim/kubectl.ts';
import { createOpsRepo, history, insertRow, simDeployment, startE2e, waitRow, waitStatus, WEB_TEMPLATE, type E2e, type OpsRepo } from './support.ts';

let e2e: E2e;
let repo: OpsRepo;
let run: Kubectl;

beforeAll(async () => {
  e2e = await startE2e();
  repo = await createOpsRepo(e2e, 'platform', { 'values.yaml': 'replicas: 2\n', 'web/deployment.yaml': WEB_TEMPLATE });
  run = await kubectl(e2e.sim, e2e.dir, 'health');
  await e2e.startRuntime({ machineConfig: { driftIntervalMs: 300, degradedGraceMs: 1_500 } });
});

afterAll(async () => {
  await e2e?.stop();
});

async function ok(args: string[]): Promise<void> {
  const result = await run(args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

const Event = z.object({ type: z.string(), action_id: z.string(), seq: z.number(), data: z.record(z.string(), z.unknown()) });
async function events(id: string) {
  return await e2e.db.any(sql.type(Event)`select type, action_id, seq, data from deployment_events where deployment_id = ${id} order by position`);
}

async function detecting(id: string): Promise<void> {
  await e2e.db.query(sql.unsafe`update deployments set drift = 'detect' where id = ${id}`);
}

describe('live health after healthy', () => {
  it('a crash loop set outside keelson fails the deployment naming the pod and reason; fixed, it is healthy again', async () => {
    const id = await insertRow(e2e.db, { project: 'ail', image: 'registry.example/ail:1', opsRepoId: repo.id, manifestPath: 'web' });
    await detecting(id);
    await waitStatus(e2e.db, id, 'healthy');

    await ok(['-n', 'ail-prod', 'set', 'image', 'deployment/ail', 'web=registry.example/crashloop:1']);
    const degraded = await waitRow(e2e.db, id, (r) => r.current_status === 'failed', 'degraded', 20_000);
    expect(degraded.last_error).toMatch(/^degraded: Deployment ail-prod\/ail: pod ail-\S+: container web is waiting: CrashLoopBackOff/);
    // not an action: no history row, the generation is acted on
    expect(await history(e2e.db, id)).toHaveLength(1);
    expect(degraded.observed_generation).toBe(degraded.generation);

    await ok(['-n', 'ail-prod', 'set', 'image', 'deployment/ail', 'web=registry.example/ail:1']);
    const recovered = await waitStatus(e2e.db, id, 'healthy');
    expect(recovered.last_error).toBeNull();
    expect(await history(e2e.db, id)).toHaveLength(1);

    // the outbox (written with the journal entry): degraded, then recovered, exactly once each
    const all = await events(id);
    expect(all.map((e) => e.type)).toEqual(['deploy.started', 'deploy.succeeded', 'health.degraded', 'health.recovered']);
    const [down, up] = all.slice(2);
    expect(down).toMatchObject({ action_id: `health-${down!.seq}`, data: { outcome: 'degraded', action: null, image_ref: 'registry.example/ail:1', project: 'ail' } });
    expect(String(down!.data.error)).toMatch(/^degraded: Deployment ail-prod\/ail: pod ail-\S+: container web is waiting: CrashLoopBackOff/);
    expect(up).toMatchObject({ data: { outcome: 'recovered', error: null, image_ref: 'registry.example/ail:1' } });
    expect(up!.seq).toBeGreaterThan(down!.seq);
  });

  it('with auto_rollback, still degraded after the grace, it rolls back to the previous release', async () => {
    const id = await insertRow(e2e.db, { project: 'sag', image: 'registry.example/sag:1', opsRepoId: repo.id, manifestPath: 'web', autoRollback: true });
    await detecting(id);
    await waitStatus(e2e.db, id, 'healthy');
    await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/sag:2' where id = ${id}`);
    await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/sag:2', 'second release');

    await ok(['-n', 'sag-prod', 'set', 'image', 'deployment/sag', 'web=registry.example/crashloop:2']);
    await waitRow(e2e.db, id, (r) => r.current_status === 'failed' && (r.last_error ?? '').includes('CrashLoopBackOff'), 'degraded', 20_000);
    const back = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/sag:1', 'rolled back', 20_000);
    expect(back).toMatchObject({ image_ref: 'registry.example/sag:1', last_error: null });
    const records = await history(e2e.db, id);
    expect(records.map((r) => [r.action, r.status])).toEqual([['deploy', 'succeeded'], ['deploy', 'succeeded'], ['auto-rollback', 'succeeded']]);
    expect(records[2]?.triggered_by).toBe('auto-rollback of registry.example/sag:2: degraded for 2 s');
    await sleepUntil(() => simDeployment(e2e.sim, 'sag-prod', 'sag')?.image === 'registry.example/sag:1', { message: 'image rolled back' });
    // degraded, never recovered: the auto-rollback follows it
    const types = (await events(id)).map((e) => e.type).filter((t) => t.startsWith('health.') || t.startsWith('rollback.'));
    expect(types).toEqual(['health.degraded', 'rollback.started', 'rollback.succeeded']);
  });
});
