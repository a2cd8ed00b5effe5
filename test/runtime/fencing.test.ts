// Fencing on real PostgreSQL: lease epochs, forward-only journal, self-fencing, orphans,
// outages (through a TCP proxy the test cuts), and fault isolation.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { sql } from 'slonik';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from '../../src/api/app.ts';
import { createDb, type Db } from '../../src/db/pool.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { JournalConflictError, StaleEpochError, writeJournal, type JournalEntry } from '../../src/runtime/journal.ts';
import { claim, DuplicateInstanceError, instanceLockKey } from '../../src/runtime/leases.ts';
import { createRuntime, JournalBacklogError, type Runtime, type RuntimeOptions } from '../../src/runtime/runtime.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';
import { createGatedEffects, createGateTables, hold, unhold } from './fixtures/gatedEffects.ts';
import { effectRuns, history, insertDeployment, row, startCutProxy, transitions, waitFor, waitStatus } from './support.ts';

let t: TestDatabase;
const running: Runtime[] = [];
const cleanups: Array<() => Promise<void>> = [];
const log = createLogger({ level: 'silent', format: 'json' });

beforeAll(async () => {
  t = await createTestDatabase();
  await createGateTables(t.db);
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.stop()));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await t.db.query(sql.unsafe`delete from deployments`);
  await t.db.query(sql.unsafe`delete from test_holds`);
});

afterAll(async () => {
  await t.drop();
});

async function startRuntime(overrides: Partial<RuntimeOptions> = {}, db: Db = t.db): Promise<Runtime> {
  const instanceId = overrides.instanceId ?? randomUUID();
  const runtime = createRuntime({
    db,
    databaseUrl: t.url,
    log,
    instanceId,
    effects: createGatedEffects(db, instanceId),
    tickIntervalMs: 100,
    leaseTtlMs: 2000,
    machineConfig: { retryBaseMs: 50, retryMaxMs: 200 },
    onFatal: (error) => {
      throw error;
    },
    ...overrides,
  });
  running.push(runtime);
  await runtime.start();
  return runtime;
}

async function adminClient(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();
  cleanups.push(async () => {
    await client.end().catch(() => undefined);
  });
  return client;
}

/** Transition seqs are 1..n with no gap, and every row's final seq is the snapshot's. */
async function expectContiguous(id: string): Promise<void> {
  const seqs = (await transitions(t.db, id)).map((s) => s.seq);
  expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  const snapshotSeq = await t.db.oneFirst(sql.type(z.object({ seq: z.number() }))`select seq from deployment_snapshots where deployment_id = ${id}`);
  expect(snapshotSeq).toBeGreaterThanOrEqual(seqs.at(-1) ?? 0);
}

function entry(id: string, instanceId: string, epoch: number, seq: number, to: string | null): JournalEntry {
  return {
    deploymentId: id,
    instanceId,
    epoch,
    seq,
    snapshot: { status: 'active', value: 'idle', context: {} },
    machineVersion: '1',
    state: to ?? 'idle',
    status: 'idle',
    transition: to ? { from: null, to, event: 'TEST' } : null,
    generation: 1,
    observedGeneration: 0,
    completed: null,
    deployed: null,
    lastError: null,
  };
}

describe('journal fence', () => {
  it('refuses a write under a stale epoch, a snapshot that would move backwards and a transition seq that exists', async () => {
    const id = await insertDeployment(t.db, 'fence');
    const me = `test-${randomUUID()}`;
    const incarnation = randomUUID();
    const first = await claim(t.db, me, incarnation, 60_000, { ids: [id] });
    const epoch = first.get(id) ?? 0;
    expect(epoch).toBeGreaterThanOrEqual(1);
    await writeJournal(t.db, entry(id, me, epoch, 6, 'healthy'));

    // the same process re-claims (a restart, a re-hosted orphan): the epoch moves on
    const second = await claim(t.db, me, incarnation, 60_000, { ids: [id] });
    expect(second.get(id)).toBe(epoch + 1);
    await expect(writeJournal(t.db, entry(id, me, epoch, 7, 'verifying'))).rejects.toBeInstanceOf(StaleEpochError);

    // under the current epoch, seq 5 after 6 is refused: the snapshot never moves backwards
    await expect(writeJournal(t.db, entry(id, me, epoch + 1, 5, 'verifying'))).rejects.toBeInstanceOf(JournalConflictError);
    const snapshot = await t.db.one(sql.type(z.object({ seq: z.number(), state: z.string() }))`
      select seq, state from deployment_snapshots where deployment_id = ${id}`);
    expect(snapshot).toEqual({ seq: 6, state: 'healthy' });

    // a transition whose seq exists is an error, not silently dropped
    await t.db.query(sql.unsafe`
      insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq)
      values (${id}, null, 'idle', 'TEST', 1, 7)`);
    await expect(writeJournal(t.db, entry(id, me, epoch + 1, 7, 'syncing.fetching.running'))).rejects.toBeInstanceOf(JournalConflictError);
    expect((await transitions(t.db, id)).map((s) => [s.seq, s.to_state])).toEqual([[6, 'healthy'], [7, 'idle']]);
  });
});

describe('runtime fencing', () => {
  it("discards a dropped actor's queued entries and re-hosts the deployment under a new epoch", async () => {
    const runtime = await startRuntime({ leaseTtlMs: 10_000 });
    const id = await insertDeployment(t.db, 'queued');
    await hold(t.db, id, 'apply');
    await sleepUntil(async () => (await effectRuns(t.db, id, 'apply')).length === 1, { message: 'apply running' });
    const epoch = runtime.epochOf(id) ?? 0;

    // block the journal on the row lock; the apply finishes and its entry (verifying) queues up
    // (the verify effect waits for it: effects never run ahead of their actor's journal)
    const locker = await adminClient();
    await locker.query('begin');
    // no key update: the journal's foreign-key checks pass, its update of the row waits
    await locker.query('select 1 from deployments where id = $1 for no key update', [id]);
    await unhold(t.db, id, 'apply');
    await sleepUntil(async () => (await effectRuns(t.db, id, 'apply')).some((r) => r.outcome === 'ok'), { message: 'apply done' });
    await sleepUntil(() => runtime.stats().queuedEntries >= 1, { message: 'the verifying entry queued' });
    // a re-claim of the lease (what a restart or another process does), queued behind the
    // journal transaction that waits on the row lock
    const bumper = await adminClient();
    const { rows: pids } = await bumper.query('select pg_backend_pid() as pid');
    const bumperPid = (pids[0] as { pid: number }).pid;
    // the journal's one statement: pg_stat_activity shows its first 1,024 bytes
    // (track_activity_query_size), the snapshot's insert, not the row's update further on
    await sleepUntil(async () => {
      const { rows } = await locker.query(`
        select count(*)::int as n from pg_stat_activity
        where wait_event_type = 'Lock' and datname = current_database() and query ilike '%insert into deployment_snapshots%'`);
      return (rows[0] as { n: number }).n >= 1;
    }, { message: 'journal waiting on the row lock' });
    const bumped = bumper.query('update deployment_leases set epoch = epoch + 1 where deployment_id = $1', [id]);
    await sleepUntil(async () => {
      const { rows } = await locker.query(`select wait_event_type from pg_stat_activity where pid = $1`, [bumperPid]);
      return (rows[0] as { wait_event_type: string | null } | undefined)?.wait_event_type === 'Lock';
    }, { message: 're-claim waiting behind the journal' });
    await locker.query('commit');
    await bumped;

    await sleepUntil(() => runtime.stats().discardedEntries >= 1, { message: 'stale entry discarded' });
    const done = await waitStatus(t.db, id, 'healthy');
    expect(done.current_image_ref).toBe('registry.example/queued:1');
    // re-hosted as an orphan of this process: a third epoch at least
    await sleepUntil(() => (runtime.epochOf(id) ?? 0) >= epoch + 2, { message: 're-hosted under a new epoch' });
    await expectContiguous(id);
    expect((await history(t.db, id)).map((h) => [h.action, h.status])).toEqual([['deploy', 'succeeded']]);
    // the verifying entry committed (it held the lease row before the re-claim); the stale
    // healthy entry did not: the re-hosted actor verified again
    expect((await effectRuns(t.db, id, 'verify')).length).toBe(2);
  });

  it('self-fences when its heartbeat cannot succeed: the effect in flight is aborted and nothing more runs until it can', async () => {
    const runtime = await startRuntime({ leaseTtlMs: 1500 });
    const id = await insertDeployment(t.db, 'partitioned');
    await hold(t.db, id, 'apply');
    await sleepUntil(async () => (await effectRuns(t.db, id, 'apply')).length === 1, { message: 'apply running' });
    await sleepUntil(async () => (await transitions(t.db, id)).some((s) => s.to_state === 'applying.running'), { message: 'applying journaled' });
    const before = (await transitions(t.db, id)).length;

    // the heartbeat's statement waits on this lock until its deadline: heartbeats fail
    const fencesBefore = runtime.stats().selfFences;
    const locker = await adminClient();
    await locker.query('begin');
    await locker.query('select 1 from keelson_instances where id = $1 for update', [runtime.instanceId]);
    const started = performance.now();
    await sleepUntil(async () => (await effectRuns(t.db, id, 'apply'))[0]?.outcome === 'aborted', { message: 'apply aborted by the fence' });
    const fencedAfterMs = performance.now() - started;
    await sleepUntil(() => runtime.stats().selfFences > fencesBefore, { message: 'self-fenced' });
    expect(runtime.hosted()).toEqual([]);
    // fenced: no further effect and no journal write, also a few heartbeats later
    await sleepUntil(() => performance.now() - started > 2000, { intervalMs: 100, message: 'two seconds fenced' });
    expect((await effectRuns(t.db, id, 'apply')).length).toBe(1);
    expect((await transitions(t.db, id)).length).toBe(before);
    console.log(`self-fence: the effect in flight was aborted ${Math.round(fencedAfterMs)} ms after heartbeats started failing (TTL 1500 ms)`);

    await locker.query('rollback');
    await unhold(t.db, id, 'apply');
    await waitStatus(t.db, id, 'healthy');
    await expectContiguous(id);
    expect((await history(t.db, id)).length).toBe(1);
  });

  it('is not ready (/readyz 503) while self-fenced, although its LISTEN and the API pool still answer', async () => {
    const runtime = await startRuntime({ leaseTtlMs: 1500 });
    const id = await insertDeployment(t.db, 'readiness');
    await waitStatus(t.db, id, 'healthy');
    // the API on its own pool, straight to the database, as serve wires it
    const api = createApp({ db: t.db, databaseUrl: t.url, log, metrics: createMetrics(), runtime });
    const server = api.app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(async () => {
      await api.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const readyz = async () => {
      const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
      return { status: response.status, body: (await response.json()) as unknown };
    };
    // LISTEN may still be connecting on a loaded machine
    const ready = await sleepUntil(async () => {
      const r = await readyz();
      return r.status === 200 ? r : undefined;
    }, { message: 'ready' });
    expect(ready.body).toEqual({ status: 'ready', checks: { database: 'up', runtime: 'up' } });
    expect(runtime.holdsLeases()).toBe(true);

    // the heartbeat's statement waits on this lock until its deadline: heartbeats fail
    const fencesBefore = runtime.stats().selfFences;
    const locker = await adminClient();
    await locker.query('begin');
    await locker.query('select 1 from keelson_instances where id = $1 for update', [runtime.instanceId]);
    try {
      await sleepUntil(() => runtime.stats().selfFences > fencesBefore, { message: 'self-fenced' });
      expect(runtime.isListening()).toBe(true);
      expect(runtime.holdsLeases()).toBe(false);
      const fenced = await readyz();
      expect(fenced).toEqual({ status: 503, body: { status: 'not_ready', checks: { database: 'up', runtime: 'down' } } });
    } finally {
      await locker.query('rollback');
    }
    await sleepUntil(async () => (await readyz()).status === 200, { message: 'ready again once the heartbeat succeeds' });
    await sleepUntil(() => runtime.hosted().includes(id), { message: 're-hosted' });
  });

  it('refuses to start a second live process with the same instance id, naming it', async () => {
    const id = `pod-${randomUUID().slice(0, 8)}`;
    await startRuntime({ instanceId: id });
    const second = createRuntime({
      db: t.db,
      databaseUrl: t.url,
      log,
      instanceId: id,
      effects: createGatedEffects(t.db, id),
      leaseTtlMs: 2000,
    });
    const refused = await second.start().then(() => undefined, (error: unknown) => error);
    await second.stop();
    expect(refused).toBeInstanceOf(DuplicateInstanceError);
    expect((refused as Error).message).toMatch(new RegExp(`another keelson process is running with instance id "${id}"`));
  });

  it("takes over an instance id whose lock is held by a session that stopped heartbeating (a dead node's)", async () => {
    const id = `pod-${randomUUID().slice(0, 8)}`;
    // a session left behind by a process that died without closing its socket
    const zombie = new pg.Client({ connectionString: t.url });
    await zombie.connect();
    zombie.on('error', () => undefined);
    cleanups.push(async () => {
      await zombie.end().catch(() => undefined);
    });
    await zombie.query('select pg_advisory_lock($1::bigint)', [instanceLockKey(id)]);
    await zombie.query(
      `insert into keelson_instances (id, hostname, pid, incarnation, heartbeat_at) values ($1, 'gone', 1, gen_random_uuid(), now() - interval '1 minute')`,
      [id],
    );
    const runtime = await startRuntime({ instanceId: id });
    const deployment = await insertDeployment(t.db, 'zombie');
    await waitStatus(t.db, deployment, 'healthy');
    expect(runtime.hosted()).toContain(deployment);
    await expect(zombie.query('select 1')).rejects.toThrow();
  });

  it('re-hosts a lease this process holds without an actor (an orphan)', async () => {
    const runtime = await startRuntime();
    const id = await insertDeployment(t.db, 'orphan');
    await waitStatus(t.db, id, 'healthy');
    const epoch = runtime.epochOf(id) ?? 0;
    // the actor vanishes while the lease stays this process's (its journal write was refused)
    await t.db.query(sql.unsafe`update deployment_leases set epoch = epoch + 1 where deployment_id = ${id}`);
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/orphan:2' where id = ${id}`);
    await waitFor(t.db, id, (r) => r.current_image_ref === 'registry.example/orphan:2' && r.current_status === 'healthy', 'orphan:2 healthy');
    expect(runtime.epochOf(id)).toBeGreaterThanOrEqual(epoch + 2);
    await expectContiguous(id);
  });

  it('survives a database outage longer than the lease TTL: actors fenced, then resumed with rows settled', async () => {
    const proxy = await startCutProxy(t.url);
    cleanups.push(() => proxy.close());
    const db = await createDb(proxy.url, { maxPoolSize: 5 });
    cleanups.push(() => db.end());
    const instanceId = randomUUID();
    const runtime = createRuntime({
      db,
      databaseUrl: proxy.url,
      log,
      instanceId,
      effects: createGatedEffects(db, instanceId),
      tickIntervalMs: 100,
      leaseTtlMs: 1500,
      machineConfig: { retryBaseMs: 50, retryMaxMs: 200 },
      onFatal: (error) => {
        throw error;
      },
    });
    running.push(runtime);
    await runtime.start();
    const ids = [await insertDeployment(t.db, 'outage-a'), await insertDeployment(t.db, 'outage-b'), await insertDeployment(t.db, 'outage-c')];
    for (const id of ids) await waitStatus(t.db, id, 'healthy');
    await hold(t.db, ids[0] as string, 'verify');
    for (const id of ids) await t.db.query(sql.unsafe`update deployments set image_ref = replace(image_ref, ':1', ':2') where id = ${id}`);
    await sleepUntil(async () => (await effectRuns(t.db, ids[0] as string, 'verify')).length === 2, { message: 'a verifying :2' });

    const fencesBefore = runtime.stats().selfFences;
    proxy.cut();
    const cutAt = performance.now();
    await sleepUntil(() => !runtime.isListening(), { message: 'listener down' });
    await sleepUntil(() => runtime.stats().selfFences > fencesBefore, { message: 'self-fenced during the outage' });
    await sleepUntil(() => performance.now() - cutAt > 2500, { intervalMs: 100, message: 'outage longer than the TTL' });
    await unhold(t.db, ids[0] as string, 'verify');
    const before = await t.db.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from deployment_transitions`);
    proxy.heal();
    const healedAt = performance.now();
    await sleepUntil(async () => (await t.db.oneFirst(sql.type(z.object({ n: z.number() }))`select count(*)::int as n from deployment_transitions`)) > before, {
      message: 'first transition after the database returned',
    });
    const firstTransitionMs = performance.now() - healedAt;
    for (const id of ids) {
      const done = await waitFor(t.db, id, (r) => r.current_status === 'healthy' && r.observed_generation === r.generation && r.current_image_ref?.endsWith(':2') === true, `${id} settled on :2`);
      expect(done.last_error).toBeNull();
      await expectContiguous(id);
      expect((await history(t.db, id)).map((h) => `${h.action}:${h.status}:${h.image_ref.split(':')[1]}`)).toEqual(['deploy:succeeded:1', 'deploy:succeeded:2']);
    }
    await sleepUntil(() => runtime.isListening(), { message: 'listening again' });
    // no orphaned lease: every lease this process holds has an actor here
    const leased = await t.db.any(sql.type(z.object({ deployment_id: z.string() }))`
      select deployment_id from deployment_leases where instance_id = ${instanceId} and expires_at > now()`);
    await sleepUntil(() => leased.every((l) => runtime.hosted().includes(l.deployment_id)), { message: 'every lease hosted' });
    console.log(`outage > TTL: first transition ${Math.round(firstTransitionMs)} ms after the database returned`);
  });
});

describe('journal backlog', () => {
  // With the default admission (half the bound) rollouts do not reach the bound: each actor has
  // about one entry queued (effects wait for their journal). Here admission lets three actors
  // out of rest for a bound of two, as actors that journal without an effect could be.
  it('stops with a typed error rather than drop an entry when the backlog passes its bound', async () => {
    const proxy = await startCutProxy(t.url);
    cleanups.push(() => proxy.close());
    const db = await createDb(proxy.url, { maxPoolSize: 3 });
    cleanups.push(() => db.end());
    const instanceId = randomUUID();
    const fatal: Error[] = [];
    const runtime = createRuntime({
      db,
      databaseUrl: proxy.url,
      log,
      instanceId,
      // the effects reach the database directly: the applies finish while the journal cannot
      effects: createGatedEffects(t.db, instanceId),
      tickIntervalMs: 100,
      leaseTtlMs: 10_000,
      maxQueuedEntries: 2,
      maxInFlight: 3,
      onFatal: (error) => fatal.push(error),
    });
    running.push(runtime);
    await runtime.start();
    // three rollouts held in apply, one after the other, nothing left queued
    const ids: string[] = [];
    for (const name of ['backlog-a', 'backlog-b', 'backlog-c']) {
      const id = await insertDeployment(t.db, name);
      await hold(t.db, id, 'apply');
      await waitFor(t.db, id, (r) => r.current_status === 'applying', `${name} applying`);
      ids.push(id);
    }
    await sleepUntil(() => runtime.stats().queuedEntries === 0, { message: 'journal idle' });
    expect(fatal).toEqual([]);
    proxy.cut();
    // each finishes apply: three entries for a bound of two
    for (const id of ids) await unhold(t.db, id, 'apply');
    await sleepUntil(() => fatal.length > 0, { message: 'backlog over its bound' });
    expect(fatal[0]).toBeInstanceOf(JournalBacklogError);
    expect(fatal[0]?.message).toBe('2 journal entries are waiting for the database; stopping rather than dropping one');
    expect(runtime.hosted()).toEqual([]);
  });
});

describe('journal admission', () => {
  // The bound is for a database that stopped answering, not for a big change: a fleet-wide
  // UPDATE (or many new rows) waits for room in the backlog instead of reaching the bound.
  it('paces a fleet-wide change to the journal instead of stopping at the bound', { timeout: 150_000 }, async () => {
    const db = await createDb(t.url, { maxPoolSize: 3 });
    cleanups.push(() => db.end());
    const instanceId = randomUUID();
    const fatal: Error[] = [];
    const runtime = createRuntime({
      db,
      databaseUrl: t.url,
      log,
      instanceId,
      effects: createGatedEffects(t.db, instanceId),
      tickIntervalMs: 100,
      leaseTtlMs: 10_000,
      maxQueuedEntries: 8,
      onFatal: (error) => fatal.push(error),
    });
    running.push(runtime);
    await runtime.start();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, runtime.stats().queuedEntries)), 5);
    cleanups.push(async () => clearInterval(sampler));
    const settled = (image: string) =>
      t.db.oneFirst(sql.type(z.object({ n: z.number() }))`
        select count(*)::int as n from deployments
        where project like 'admit-%' and current_status = 'healthy' and observed_generation = generation and current_image_ref = ${image}`);
    // new rows in one statement, then one UPDATE of all of them: five times the bound each
    const ROWS = 40;
    await t.db.query(sql.unsafe`
      insert into deployments (project, environment, image_ref)
      select 'admit-' || i, 'prod', 'registry.example/admit:1' from generate_series(1, ${ROWS}) as i`);
    await sleepUntil(async () => (await settled('registry.example/admit:1')) === ROWS, { timeoutMs: 60_000, message: 'the new rows healthy' });
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/admit:2' where project like 'admit-%'`);
    await sleepUntil(async () => (await settled('registry.example/admit:2')) === ROWS, { timeoutMs: 60_000, message: 'every row healthy on the new image' });
    clearInterval(sampler);
    expect(fatal).toEqual([]);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(8);
  });
});

describe('fault isolation', () => {
  it('quarantines a row whose values_override is nested 3,000 deep, keeps the others deploying, also after a restart', async () => {
    // written by SQL before the depth rule existed (0003 leaves such rows in place)
    await t.db.query(sql.unsafe`alter table deployments drop constraint if exists deployments_values_override_depth`);
    const deep = `${'{"a":'.repeat(3000)}1${'}'.repeat(3000)}`;
    const first = await startRuntime();
    const poison = await insertDeployment(t.db, 'poison');
    const good = await insertDeployment(t.db, 'good');
    await waitStatus(t.db, poison, 'healthy');
    await t.db.query(sql.unsafe`update deployments set values_override = ${deep}::jsonb where id = ${poison}`);
    const failed = await waitStatus(t.db, poison, 'failed');
    expect(failed.last_error).toMatch(/^keelson could not process this deployment: .+; it stays failed until its row changes$/);
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/good:2' where id = ${good}`);
    await waitFor(t.db, good, (r) => r.current_image_ref === 'registry.example/good:2' && r.current_status === 'healthy', 'good:2');

    // a restart meets the same row: the same outcome, the process stays up
    await first.stop();
    await t.db.query(sql.unsafe`update deployments set current_status = 'healthy', last_error = null where id = ${poison}`);
    await startRuntime();
    await waitStatus(t.db, poison, 'failed');
    await t.db.query(sql.unsafe`update deployments set image_ref = 'registry.example/good:3' where id = ${good}`);
    await waitFor(t.db, good, (r) => r.current_image_ref === 'registry.example/good:3' && r.current_status === 'healthy', 'good:3');

    // the row changes: the quarantine ends
    await t.db.query(sql.unsafe`update deployments set values_override = '{"replicas": 2}'::jsonb where id = ${poison}`);
    const fixed = await waitStatus(t.db, poison, 'healthy');
    expect(fixed.last_error).toBeNull();
    expect((await row(t.db, good)).last_error).toBeNull();
  });
});
