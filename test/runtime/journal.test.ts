// The journal's statements on real PostgreSQL: an entry's transition row, observed columns and
// single outbox event go in one statement, committed without BEGIN/COMMIT; a refused one writes
// nothing; entries with several events keep their order.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createDb, type Db } from '../../src/db/pool.ts';
import { JournalConflictError, LostOwnershipError, StaleEpochError, writeJournal, type JournalEntry } from '../../src/runtime/journal.ts';
import { claim } from '../../src/runtime/leases.ts';
import type { ActionRef } from '../../src/runtime/projection.ts';
import { createTestDatabase, sleepUntil, type TestDatabase } from '../helpers.ts';
import { insertDeployment, transitions } from './support.ts';

let t: TestDatabase;
let listener: pg.Client;
const notified: string[] = [];
const me = `test-${randomUUID()}`;

beforeAll(async () => {
  t = await createTestDatabase();
  await t.db.query(sql.unsafe`insert into notification_sinks (name, kind, url, projects) values ('chat', 'slack', 'https://hooks.example/x', ${sql.array(['outbox'], 'text')})`);
  listener = new pg.Client({ connectionString: t.url });
  await listener.connect();
  listener.on('notification', (message) => notified.push(message.channel));
  await listener.query('listen keelson_notify');
});

afterAll(async () => {
  await listener.end();
  await t.drop();
});

const action = (generation: number): ActionRef => ({ actionId: `${generation}-1-deploy`, action: 'deploy', generation, imageRef: `registry.example/outbox:${generation}`, triggeredBy: 'test' });

function entry(id: string, epoch: number, seq: number, changes: Partial<JournalEntry>): JournalEntry {
  return {
    deploymentId: id,
    instanceId: me,
    epoch,
    seq,
    snapshot: { status: 'active', value: { syncing: { fetching: 'running' } }, context: {} },
    machineVersion: '5',
    state: 'syncing.fetching.running',
    status: 'syncing',
    transition: { from: 'healthy', to: 'syncing.fetching.running', event: 'DESIRED_CHANGED' },
    generation: seq,
    observedGeneration: 0,
    completed: null,
    deployed: null,
    lastError: null,
    ...changes,
  };
}

const Event = z.object({ type: z.string(), action_id: z.string(), deliveries: z.number() });
const events = async (id: string) =>
  await t.db.any(sql.type(Event)`
    select e.type, e.action_id, (select count(*)::int from notification_deliveries n where n.event_id = e.id) as deliveries
    from deployment_events e where e.deployment_id = ${id} order by e.position`);

describe('journal', () => {
  it('writes the transition, the observed columns and an action start with its delivery, and wakes the dispatcher', async () => {
    const id = await insertDeployment(t.db, 'outbox');
    const epoch = (await claim(t.db, me, randomUUID(), 60_000, { ids: [id] })).get(id) ?? 0;
    notified.length = 0;
    await writeJournal(t.db, entry(id, epoch, 2, { started: action(2), lastError: 'retrying' }));
    expect(await events(id)).toEqual([{ type: 'deploy.started', action_id: '2-1-deploy', deliveries: 1 }]);
    expect((await transitions(t.db, id)).map((row) => row.to_state)).toEqual(['syncing.fetching.running']);
    const row = await t.db.one(sql.type(z.object({ current_status: z.string(), last_error: z.string().nullable() }))`select current_status, last_error from deployments where id = ${id}`);
    expect(row).toEqual({ current_status: 'syncing', last_error: 'retrying' });
    await sleepUntil(() => notified.includes('keelson_notify'), { message: 'the dispatcher woken' });
  });

  it("writes a wake-up's entry in one statement, no transaction around it (one round trip)", async () => {
    const id = await insertDeployment(t.db, 'alone');
    const epoch = (await claim(t.db, me, randomUUID(), 60_000, { ids: [id] })).get(id) ?? 0;
    const calls: string[] = [];
    const counted = new Proxy(t.db, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls.push(String(key));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Db;
    await writeJournal(counted, entry(id, epoch, 2, { started: action(2) }));
    expect(calls).toEqual(['one']);
    expect(await events(id)).toEqual([{ type: 'deploy.started', action_id: '2-1-deploy', deliveries: 0 }]);
    expect((await transitions(t.db, id)).map((row) => row.seq)).toEqual([2]);
  });

  it('prepares the statement once per connection and shape: PostgreSQL plans it once, not at every write', async () => {
    const id = await insertDeployment(t.db, 'prepared');
    const epoch = (await claim(t.db, me, randomUUID(), 60_000, { ids: [id] })).get(id) ?? 0;
    // one connection: the session whose prepared statements are looked at
    const single = await createDb(t.url, { maxPoolSize: 1 });
    try {
      await writeJournal(single, entry(id, epoch, 2, { started: action(2) }));
      await writeJournal(single, entry(id, epoch, 3, { started: action(3) }));
      await writeJournal(single, entry(id, epoch, 4, { transition: null, status: 'healthy', state: 'healthy.idle', observedGeneration: 3 }));
      const Prepared = z.object({ name: z.string(), calls: z.number() });
      const statements = await single.any(sql.type(Prepared)`
        select name, (generic_plans + custom_plans)::int as calls from pg_prepared_statements where name like 'keelson_%' order by calls desc`);
      // the wake-up shape twice, the resting one once: two statements
      expect(statements.map((s) => s.calls)).toEqual([2, 1]);
    } finally {
      await single.end();
    }
    expect((await transitions(t.db, id)).map((row) => row.seq)).toEqual([2, 3]);
  });

  it('writes nothing of a refused entry: another holder, a stale epoch, a seq not ahead of the snapshot', async () => {
    const id = await insertDeployment(t.db, 'outbox', 'refused');
    const epoch = (await claim(t.db, me, randomUUID(), 60_000, { ids: [id] })).get(id) ?? 0;
    await writeJournal(t.db, entry(id, epoch, 5, { transition: null, status: 'healthy', state: 'healthy.idle', observedGeneration: 1 }));
    const Observed = z.object({ current_status: z.string(), last_error: z.string().nullable(), observed_generation: z.number(), seq: z.number() });
    const observed = async () =>
      await t.db.one(sql.type(Observed)`
        select d.current_status, d.last_error, d.observed_generation, s.seq
        from deployments d join deployment_snapshots s on s.deployment_id = d.id where d.id = ${id}`);
    const before = await observed();
    expect(before).toEqual({ current_status: 'healthy', last_error: null, observed_generation: 1, seq: 5 });
    const wakeUp = (changes: Partial<JournalEntry>) => entry(id, epoch, 6, { started: action(6), lastError: 'must not be written', observedGeneration: 6, ...changes });
    await expect(writeJournal(t.db, wakeUp({ instanceId: `other-${randomUUID()}` }))).rejects.toBeInstanceOf(LostOwnershipError);
    await expect(writeJournal(t.db, wakeUp({ epoch: epoch - 1 }))).rejects.toBeInstanceOf(StaleEpochError);
    await expect(writeJournal(t.db, wakeUp({ seq: 5 }))).rejects.toBeInstanceOf(JournalConflictError);
    expect(await observed()).toEqual(before);
    expect(await transitions(t.db, id)).toEqual([]);
    expect(await events(id)).toEqual([]);
  });

  it('writes several events of one entry in their order (the one cut short, then the new one)', async () => {
    const id = await insertDeployment(t.db, 'outbox', 'staging');
    const epoch = (await claim(t.db, me, randomUUID(), 60_000, { ids: [id] })).get(id) ?? 0;
    await writeJournal(t.db, entry(id, epoch, 3, { abandoned: action(2), started: action(3) }));
    expect((await events(id)).map((e) => [e.type, e.action_id])).toEqual([
      ['deploy.superseded', '2-1-deploy'],
      ['deploy.started', '3-1-deploy'],
    ]);
  });

  it('writes no event and wakes nobody for an entry that starts nothing', async () => {
    const id = await insertDeployment(t.db, 'quiet');
    const epoch = (await claim(t.db, me, randomUUID(), 60_000, { ids: [id] })).get(id) ?? 0;
    await writeJournal(t.db, entry(id, epoch, 2, { transition: null, status: 'healthy', state: 'healthy.idle', observedGeneration: 2 }));
    expect(await events(id)).toEqual([]);
    const row = await t.db.one(sql.type(z.object({ current_status: z.string(), observed_generation: z.number() }))`select current_status, observed_generation from deployments where id = ${id}`);
    expect(row).toEqual({ current_status: 'healthy', observed_generation: 2 });
  });
});
