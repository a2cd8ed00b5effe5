// The actor host on real PostgreSQL, with effects supplied by the test (the host is under test).
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sql } from 'slonik';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime/runtime.ts';
import { MACHINE_VERSION } from '../../machines/deployment.machine.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';
import { createGatedEffects, createGateTables, failEffect, hold, unhold } from './fixtures/gatedEffects.ts';
import { effectRuns, history, insertDeployment, row, transitions, waitFor, waitStatus } from './support.ts';

let t: TestDatabase;
const running: Runtime[] = [];
const log = createLogger({ level: 'silent', format: 'json' });

beforeAll(async () => {
  t = await createTestDatabase();
  await createGateTables(t.db);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  // leave no deployment behind for the next test's runtime to pick up
  await t.db.query(sql.unsafe`delete from deployments`);
});

afterAll(async () => {
  await t.drop();
});

async function startRuntime(overrides: Partial<RuntimeOptions> = {}): Promise<Runtime> {
  const instanceId = randomUUID();
  const runtime = createRuntime({
    db: t.db,
    databaseUrl: t.url,
    log,
    instanceId,
    effects: createGatedEffects(t.db, instanceId),
    tickIntervalMs: 100,
    leaseTtlMs: 2000,
    machineConfig: { retryBaseMs: 50, retryMaxMs: 200 },
    ...overrides,
  });
  running.push(runtime);
  await runtime.start();
  return runtime;
}

describe('runtime', () => {
  it('takes a row inserted with SQL through every state to healthy, journaling transitions and history', async () => {
    await startRuntime();
    const id = await insertDeployment(t.db, 'shop');
    const done = await waitStatus(t.db, id, 'healthy');
    expect(done).toMatchObject({ current_image_ref: 'registry.example/shop:1', observed_generation: 1, last_error: null });
    expect(done.deployed_at).not.toBeNull();
    const steps = await transitions(t.db, id);
    expect(steps.map((s) => s.to_state)).toEqual([
      'idle',
      'syncing.fetching.running',
      'syncing.rendering.running',
      'applying.running',
      'verifying.running',
      'healthy',
    ]);
    expect(steps.map((s) => s.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(steps[1]).toMatchObject({ from_state: 'idle', event: 'DESIRED_CHANGED', generation: 1 });
    expect(steps[5]?.event).toBe('xstate.done.actor.verify');
    const [record, ...rest] = await history(t.db, id);
    expect(rest).toEqual([]);
    expect(record).toMatchObject({ action: 'deploy', status: 'succeeded', image_ref: 'registry.example/shop:1', generation: 1, error: null });
    expect(record?.phases.map((p) => p.name)).toEqual(['sync', 'render', 'apply', 'verify']);
    expect(record?.phases.every((p) => typeof p.duration_ms === 'number' && p.duration_ms >= 0)).toBe(true);
    const snapshot = await t.db.one(sql.unsafe`select state, seq, machine_version from deployment_snapshots where deployment_id = ${id}`);
    expect(snapshot).toMatchObject({ state: 'healthy.idle', seq: 6, machine_version: MACHINE_VERSION });
  });

  it('supersedes an apply in flight when a newer generation arrives, aborting the old effect', async () => {
    await startRuntime();
    const id = await insertDeployment(t.db, 'cart');
    await hold(t.db, id, 'apply');
    await sleepUntil(async () => (await effectRuns(t.db, id, 'apply')).length === 1, { message: 'first apply started' });
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/cart:2' where id = ${id}`);
    await sleepUntil(async () => (await effectRuns(t.db, id, 'apply')).length === 2, { message: 'second apply started' });
    expect((await effectRuns(t.db, id, 'apply'))[0]?.outcome).toBe('aborted');
    await unhold(t.db, id, 'apply');
    const done = await waitStatus(t.db, id, 'healthy');
    expect(done).toMatchObject({ current_image_ref: 'registry.example/cart:2', generation: 2, observed_generation: 2 });
    const steps = await transitions(t.db, id);
    expect(steps).toContainEqual(expect.objectContaining({ from_state: 'applying.running', to_state: 'syncing.fetching.running', event: 'DESIRED_CHANGED', generation: 2 }));
    const records = await history(t.db, id);
    expect(records.map((r) => [r.action, r.status, r.generation])).toEqual([['deploy', 'succeeded', 2]]);
  });

  it('retries transient failures with backoff and records terminal ones as failed', async () => {
    await startRuntime();
    const flaky = await insertDeployment(t.db, 'flaky');
    await failEffect(t.db, flaky, 'apply', 'transient', 2);
    const broken = await insertDeployment(t.db, 'broken');
    await failEffect(t.db, broken, 'render', 'terminal');
    const ok = await waitStatus(t.db, flaky, 'healthy');
    expect(ok.last_error).toBeNull();
    expect((await effectRuns(t.db, flaky, 'apply')).map((r) => r.outcome)).toEqual(['failed:transient', 'failed:transient', 'ok']);
    const failed = await waitStatus(t.db, broken, 'failed');
    expect(failed.last_error).toBe('render failed on purpose (terminal)');
    const [record] = await history(t.db, broken);
    expect(record).toMatchObject({ action: 'deploy', status: 'failed', error: 'render failed on purpose (terminal)' });
    expect(record?.phases.map((p) => [p.name, p.error])).toEqual([['sync', null], ['render', 'render failed on purpose (terminal)']]);
    // terminal: nothing is retried until the desired state changes
    const renders = (await effectRuns(t.db, broken, 'render')).length;
    await t.db.query(sql.unsafe`delete from test_failures where deployment_id = ${broken}`);
    await sleepUntil(async () => (await row(t.db, flaky)).current_status === 'healthy' && (await effectRuns(t.db, flaky, 'apply')).length === 3);
    expect((await effectRuns(t.db, broken, 'render')).length).toBe(renders);
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/broken:2' where id = ${broken}`);
    await waitStatus(t.db, broken, 'healthy');
  });

  it('stops, resumes, rolls back and writes the rolled-back image back as desired state', async () => {
    await startRuntime();
    const id = await insertDeployment(t.db, 'api');
    await waitStatus(t.db, id, 'healthy');
    await t.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    const nothing = await waitStatus(t.db, id, 'failed');
    expect(nothing.last_error).toMatch(/no previous healthy image to roll back to/);

    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/api:2', desired_status = 'active' where id = ${id}`);
    await waitFor(t.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/api:2', 'api:2 healthy');
    await t.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    await waitStatus(t.db, id, 'stopped');
    await t.db.query(sql.unsafe`update deployments set desired_status = 'active' where id = ${id}`);
    await waitStatus(t.db, id, 'healthy');

    await t.db.query(sql.unsafe`update deployments set desired_status = 'rollback' where id = ${id}`);
    const back = await waitFor(t.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/api:1', 'rolled back');
    // the row tells the truth, and the write-back is not deployed a second time
    expect(back).toMatchObject({ image_ref: 'registry.example/api:1', desired_status: 'active' });
    expect(back.observed_generation).toBe(back.generation);
    const actions = (await history(t.db, id)).map((r) => `${r.action}:${r.status}:${r.image_ref.split(':')[1]}`);
    expect(actions).toEqual(['deploy:succeeded:1', 'rollback:failed:1', 'deploy:succeeded:2', 'stop:succeeded:2', 'resume:succeeded:2', 'rollback:succeeded:1']);
    // deploy 1, deploy 2, resume, rollback: four verifications, none for the write-back
    expect((await effectRuns(t.db, id, 'verify')).length).toBe(4);
  });

  it('moves observed_generation only when an action has finished, so pipelines can wait on it', async () => {
    await startRuntime();
    const id = await insertDeployment(t.db, 'settle');
    await waitStatus(t.db, id, 'healthy');
    await hold(t.db, id, 'scale');
    await t.db.query(sql.unsafe`update deployments set desired_status = 'stopped' where id = ${id}`);
    await sleepUntil(async () => (await effectRuns(t.db, id, 'scale')).length === 1, { message: 'scale running' });
    // current_status mirrors the top-level state (stopped) while the stop is still under way
    // (the effect may start a moment before its state's journal entry commits)
    const during = await waitFor(t.db, id, (r) => r.current_status === 'stopped', 'stopping journaled');
    expect(during).toMatchObject({ current_status: 'stopped', generation: 2, observed_generation: 1 });
    await unhold(t.db, id, 'scale');
    const done = await waitFor(t.db, id, (r) => r.observed_generation === 2, 'stop finished');
    expect(done.current_status).toBe('stopped');
    expect((await history(t.db, id)).map((r) => r.action)).toEqual(['deploy', 'stop']);
  });

  it('picks up a change after its LISTEN connection was killed', async () => {
    const runtime = await startRuntime({ tickIntervalMs: 60_000 });
    const id = await insertDeployment(t.db, 'listen');
    await waitStatus(t.db, id, 'healthy');
    const admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
    try {
      const killed = await admin.query(
        `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'keelson-listen' and datname = current_database()`,
      );
      expect(killed.rowCount).toBeGreaterThanOrEqual(1);
    } finally {
      await admin.end();
    }
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/listen:2' where id = ${id}`);
    // the tick is a minute away: only the reconnect (and its rescan) can deliver this in time
    await waitFor(t.db, id, (r) => r.current_image_ref === 'registry.example/listen:2' && r.current_status === 'healthy', 'change after reconnect', 10_000);
    await sleepUntil(() => runtime.isListening(), { message: 'listening again' });
  });

  it('persists on graceful stop; another runtime resumes the actor where it stopped', async () => {
    const first = await startRuntime();
    const id = await insertDeployment(t.db, 'resume');
    await hold(t.db, id, 'verify');
    await waitFor(t.db, id, (r) => r.current_status === 'verifying', 'verifying');
    await first.stop();
    expect(await t.db.oneFirst(sql.unsafe`select count(*)::int from deployment_leases where expires_at > now()`)).toBe(0);
    await startRuntime();
    await sleepUntil(async () => (await effectRuns(t.db, id, 'verify')).length === 2, { message: 'verify re-run after restore' });
    await unhold(t.db, id, 'verify');
    await waitStatus(t.db, id, 'healthy');
    expect((await history(t.db, id)).length).toBe(1);
    // the restored actor did not start over: sync and apply ran once
    expect((await effectRuns(t.db, id, 'apply')).length).toBe(1);
  });

  it('runs at most maxConcurrentRollouts effects at once', async () => {
    await startRuntime({ maxConcurrentRollouts: 2 });
    const ids = await Promise.all(['a', 'b', 'c', 'd', 'e'].map(async (p) => {
      const id = await insertDeployment(t.db, `limit-${p}`);
      await hold(t.db, id, 'verify');
      return id;
    }));
    // two rollouts hold the two slots in verify; the other three wait for a slot before syncing
    const statuses = async () => (await Promise.all(ids.map(async (id) => (await row(t.db, id)).current_status))).sort();
    await sleepUntil(async () => JSON.stringify(await statuses()) === JSON.stringify(['syncing', 'syncing', 'syncing', 'verifying', 'verifying']), {
      message: 'two verifying, three waiting',
    });
    const started = await t.db.oneFirst(sql.unsafe`
      select count(distinct deployment_id)::int from test_effect_runs where deployment_id = any(${sql.array(ids, 'uuid')})`);
    expect(started).toBe(2);
    await Promise.all(ids.map((id) => unhold(t.db, id, 'verify')));
    for (const id of ids) await waitStatus(t.db, id, 'healthy');
    // no more than two deployments were ever between their first and last effect at once
    const overlap = await t.db.oneFirst(sql.unsafe`
      with spans as (
        select deployment_id, min(started_at) as s, max(finished_at) as f from test_effect_runs
        where deployment_id = any(${sql.array(ids, 'uuid')}) group by deployment_id)
      select max((select count(*) from spans b where b.s <= a.s and b.f > a.s))::int from spans a`);
    expect(overlap).toBeLessThanOrEqual(2);
  });

  // The tick visits only the actors its schedule says are due (tickSchedule.ts): every healthy
  // actor must still get its drift check each interval, restored ones included.
  it('checks every healthy deployment for drift each interval, through the tick schedule', async () => {
    const instanceId = randomUUID();
    const effects = createGatedEffects(t.db, instanceId);
    const checks = new Map<string, number>();
    const options = {
      instanceId,
      effects: {
        ...effects,
        checkDrift: async (input: Parameters<typeof effects.checkDrift>[0], signal: AbortSignal) => {
          checks.set(input.deploymentId, (checks.get(input.deploymentId) ?? 0) + 1);
          return await effects.checkDrift(input, signal);
        },
      },
      machineConfig: { retryBaseMs: 50, retryMaxMs: 200, driftIntervalMs: 300 },
    };
    const first = await startRuntime(options);
    const ids = await Promise.all(['d1', 'd2', 'd3'].map((name) => insertDeployment(t.db, name)));
    for (const id of ids) await waitStatus(t.db, id, 'healthy');
    await sleepUntil(() => ids.every((id) => (checks.get(id) ?? 0) >= 3), { timeoutMs: 20_000 });
    // restored by another process: scheduled at their first snapshot, checked again
    await first.stop();
    running.splice(running.indexOf(first), 1);
    checks.clear();
    const metrics = createMetrics();
    await startRuntime({ ...options, metrics });
    await sleepUntil(() => ids.every((id) => (checks.get(id) ?? 0) >= 3), { timeoutMs: 20_000 });
    for (const id of ids) expect(checks.get(id)).toBeGreaterThanOrEqual(3);
    // the tick's per-state gauge counts every hosted actor, though it visits only the due ones
    const gauge = await metrics.deploymentsByState.get();
    expect(gauge.values.find((v) => v.labels.state === 'healthy')?.value).toBe(3);
    expect(gauge.values.reduce((sum, v) => sum + v.value, 0)).toBe(3);
  });

  // A resting deployment's drift check runs outside its actor (restingDriftCheck): the actor
  // hears only of drift. Only the third check here reports drift, so a repair proves the actor
  // acted on that finding rather than checking again (a second check would find none).
  it('repairs drift that a routine check at rest found, without checking a second time', async () => {
    const instanceId = randomUUID();
    const effects = createGatedEffects(t.db, instanceId);
    let calls = 0;
    await startRuntime({
      instanceId,
      effects: {
        ...effects,
        checkDrift: async (input) => {
          calls += 1;
          return calls === 3 ? { drifted: true, reason: 'Deployment/app image changed by hand', pin: input.deployed.sha } : { drifted: false, reason: null };
        },
      },
      machineConfig: { retryBaseMs: 50, retryMaxMs: 200, driftIntervalMs: 150 },
    });
    const id = await insertDeployment(t.db, 'drifted');
    await waitStatus(t.db, id, 'healthy');
    const repair = await sleepUntil(async () => (await history(t.db, id)).find((h) => h.triggered_by.startsWith('drift:')), { timeoutMs: 20_000, message: 'a drift repair' });
    expect(repair.triggered_by).toBe('drift: Deployment/app image changed by hand');
    expect(repair.image_ref).toBe('registry.example/drifted:1');
    expect(repair.status).toBe('succeeded');
    // the repaired release rests again and is checked on, in sync
    await sleepUntil(() => calls >= 5, { timeoutMs: 20_000, message: 'checks after the repair' });
    expect((await history(t.db, id)).filter((h) => h.triggered_by.startsWith('drift:'))).toHaveLength(1);
    expect((await row(t.db, id)).current_status).toBe('healthy');
  });

  // A routine check in flight when the row changes is about a release on its way out: it is
  // aborted, and what it reports afterwards (drift, here) is not acted on.
  it('abandons a routine drift check when a new generation takes the deployment out of rest', async () => {
    const instanceId = randomUUID();
    const effects = createGatedEffects(t.db, instanceId);
    let calls = 0;
    let held: { signal: AbortSignal; release: () => void } | undefined;
    await startRuntime({
      instanceId,
      effects: {
        ...effects,
        checkDrift: async (input, signal) => {
          calls += 1;
          if (calls !== 2) return { drifted: false, reason: null };
          await new Promise<void>((resolve) => (held = { signal, release: resolve }));
          return { drifted: true, reason: 'late finding', pin: input.deployed.sha };
        },
      },
      machineConfig: { retryBaseMs: 50, retryMaxMs: 200, driftIntervalMs: 150 },
    });
    const id = await insertDeployment(t.db, 'moving');
    await waitStatus(t.db, id, 'healthy');
    const check = await sleepUntil(() => held, { timeoutMs: 20_000, message: 'the second drift check in flight' });
    expect(check.signal.aborted).toBe(false);
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/moving:2' where id = ${id}`);
    await sleepUntil(() => check.signal.aborted, { message: 'the check aborted by the rollout' });
    await waitFor(t.db, id, (r) => r.current_status === 'healthy' && r.observed_generation === 2, 'the new generation healthy');
    check.release();
    // checks go on for the new release; the late finding started nothing
    await sleepUntil(() => calls >= 4, { timeoutMs: 20_000, message: 'checks of the new release' });
    const rows = await history(t.db, id);
    expect(rows.map((h) => h.image_ref)).toEqual(['registry.example/moving:1', 'registry.example/moving:2']);
    expect(rows.map((h) => h.triggered_by)).toEqual(['desired-state', 'desired-state']);
  });

  it('stops the actor of a deleted row', async () => {
    const runtime = await startRuntime();
    const id = await insertDeployment(t.db, 'gone');
    await waitStatus(t.db, id, 'healthy');
    expect(runtime.hosted()).toContain(id);
    await t.db.query(sql.unsafe`delete from deployments where id = ${id}`);
    await sleepUntil(() => !runtime.hosted().includes(id), { message: 'actor stopped' });
  });
});
