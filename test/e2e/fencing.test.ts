// End to end on the simulator: a process that cannot renew its leases stops writing to the
// cluster (self-fencing), checked in the simulator's request log by the process's client id.
import pg from 'pg';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isWrite } from '../../src/sim/index.ts';
import { sleepUntil } from '../helpers.ts';
import { history, insertRow, simDeployment, startE2e, waitRow, type E2e } from './support.ts';

let e2e: E2e;

beforeAll(async () => {
  // pods take 2 s (simulated 20 s) to start: a verification is in flight long enough
  e2e = await startE2e({ sim: { timeScale: 10, podStartupDelayMs: 20_000 } });
});

afterAll(async () => {
  await e2e?.stop();
});

describe('self-fencing', () => {
  it('a process whose heartbeat fails aborts its rollout and writes nothing to the cluster until it holds its leases again', async () => {
    const runtime = await e2e.startRuntime({ leaseTtlMs: 1500 });
    const id = await insertRow(e2e.db, { project: 'fenced', image: 'registry.example/fenced:1' });
    await waitRow(e2e.db, id, (r) => r.current_status === 'verifying', 'verifying');
    const writes = () => e2e.sim.requests.records({ client: runtime.instanceId }).filter(isWrite);
    expect(writes().length).toBeGreaterThan(0);

    // heartbeats wait on this row lock until their deadline: the process cannot renew
    // a loaded machine may have fenced it before (event-loop lag past the validity): count from here
    const fencesBefore = runtime.stats().selfFences;
    const locker = new pg.Client({ connectionString: e2e.t.url });
    await locker.connect();
    try {
      await locker.query('begin');
      await locker.query('select 1 from keelson_instances where id = $1 for update', [runtime.instanceId]);
      await sleepUntil(() => runtime.stats().selfFences > fencesBefore, { message: 'self-fenced' });
      const fencedAt = Date.now();
      expect(runtime.hosted()).toEqual([]);
      // a new image while fenced: an unfenced process would apply it at once
      await e2e.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/fenced:2' where id = ${id}`);
      await sleepUntil(() => Date.now() - fencedAt > 2000, { intervalMs: 100, message: 'two seconds fenced' });
      expect(writes().filter((w) => w.at >= fencedAt).map((w) => `${w.verb} ${w.resource} ${w.name ?? ''} ${w.at - fencedAt}ms`)).toEqual([]);
      expect(simDeployment(e2e.sim, 'fenced-prod', 'fenced')?.image).toBe('registry.example/fenced:1');
    } finally {
      await locker.query('rollback').catch(() => undefined);
      await locker.end();
    }

    // holding its leases again, it resumes and rolls out the new image
    const done = await waitRow(e2e.db, id, (r) => r.current_status === 'healthy' && r.current_image_ref === 'registry.example/fenced:2' && r.observed_generation === r.generation, 'fenced:2 healthy', 30_000);
    expect(done.last_error).toBeNull();
    expect(simDeployment(e2e.sim, 'fenced-prod', 'fenced')?.image).toBe('registry.example/fenced:2');
    const rows = await history(e2e.db, id);
    expect(rows.map((h) => [h.action, h.status, h.image_ref]).at(-1)).toEqual(['deploy', 'succeeded', 'registry.example/fenced:2']);
    // nothing failed; fenced:1, applied but not verified when fenced:2 arrived, may have been cut short
    expect(rows.filter((h) => h.status === 'failed').map((h) => [h.action, h.image_ref, h.error])).toEqual([]);
  });
});
