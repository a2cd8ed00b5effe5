// Retention on real PostgreSQL: expired idempotency keys, audit rows and transitions are deleted
// in small batches; each deployment's newest transitions and all history stay; two pruners at
// once (two replicas) delete each row once and never wait on each other.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/api/tokens.ts';
import { createLogger } from '../../src/logger.ts';
import { createRetention } from '../../src/tenancy/retention.ts';
import { createTestDatabaseClient, sleepUntil, type TestDatabase } from '../helpers.ts';

let t: TestDatabase;
let client: pg.Client;
let close: () => Promise<void>;
const log = createLogger({ level: 'silent', format: 'json' });
const DAY = 86_400_000;

beforeAll(async () => {
  ({ t, client, close } = await createTestDatabaseClient());
});

afterAll(async () => {
  await close();
});

async function count(table: string, where = 'true'): Promise<number> {
  return Number((await client.query(`select count(*) from ${table} where ${where}`)).rows[0].count);
}

async function deployment(project: string): Promise<string> {
  return (await client.query("insert into deployments (project, environment, image_ref) values ($1, 'prod', 'x:1') returning id", [project])).rows[0].id;
}

/** `n` transitions (seq 1..n), the first `old` of them `ageDays` old, the rest fresh. */
async function transitions(id: string, n: number, old: number, ageDays: number): Promise<void> {
  await client.query(
    `insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq, at)
     select $1, 'idle', 'syncing', 'e', 1, s, case when s <= $3 then now() - make_interval(days => $4) else now() end
     from generate_series(1, $2) as s`,
    [id, n, old, ageDays],
  );
}

describe('retention', () => {
  it('prunes what expired, keeps what did not, each deployment\'s newest transitions and all history', async () => {
    const { info } = await createToken(t.db, { name: 'ci', permissions: ['deploy:promote'] });
    await client.query(
      `insert into idempotency_keys (key, token_id, method, path, request_hash, response_status, response_body, created_at)
       select 'k' || s, $1, 'POST', '/x', 'h', 201, 'null', now() - case when s <= 30 then interval '25 hours' else interval '1 hour' end
       from generate_series(1, 40) as s`,
      [info.id],
    );
    await client.query(
      `insert into audit_log (actor, action, target, at)
       select 'a', 'x', 't', now() - case when s <= 25 then interval '400 days' else interval '10 days' end from generate_series(1, 35) as s`,
    );
    const busy = await deployment('busy');
    const quiet = await deployment('quiet');
    await transitions(busy, 150, 140, 40); // 140 old, but the newest 100 are kept: 50 go
    await transitions(quiet, 20, 20, 40); // all old, all within the newest 100: none go
    await client.query(
      `insert into deployment_history (deployment_id, action_id, action, status, image_ref, generation, created_at)
       values ($1, 'a1', 'deploy', 'succeeded', 'x:1', 1, now() - interval '1000 days')`,
      [quiet],
    );

    // outbox events: an old one fully delivered goes (with its deliveries), an old one still
    // pending and a recent one stay
    await client.query(`insert into notification_sinks (name, kind, url) values ('r', 'slack', 'https://hooks.example/r')`);
    await client.query(
      `insert into deployment_events (id, deployment_id, project, environment, type, action_id, seq, data, occurred_at)
       select gen_random_uuid(), $1, 'quiet', 'prod', 'deploy.started', 'a' || s, s, '{}', now() - case when s <= 2 then interval '40 days' else interval '1 day' end
       from generate_series(1, 3) as s`,
      [quiet],
    );
    await client.query(
      `insert into notification_deliveries (event_id, sink_id, deployment_id, event_position, status)
       select e.id, s.id, e.deployment_id, e.position, case when e.seq = 2 then 'pending' else 'delivered' end
       from deployment_events e, notification_sinks s`,
    );

    const retention = createRetention({ db: t.db, log, batchSize: 7 });
    expect(await retention.runOnce()).toEqual({ idempotencyKeys: 30, auditRows: 25, transitions: 50, events: 1 });
    expect((await client.query('select seq from deployment_events order by seq')).rows.map((r: { seq: string }) => Number(r.seq))).toEqual([2, 3]);
    expect(await count('notification_deliveries')).toBe(2);

    expect(await count('idempotency_keys')).toBe(10);
    expect(await count('audit_log', "action = 'x'")).toBe(10);
    expect(await count('deployment_transitions', `deployment_id = '${busy}'`)).toBe(100);
    expect((await client.query('select min(seq) from deployment_transitions where deployment_id = $1', [busy])).rows[0].min).toBe('51');
    expect(await count('deployment_transitions', `deployment_id = '${quiet}'`)).toBe(20);
    expect(await count('deployment_history')).toBe(1);
    expect(await retention.runOnce()).toEqual({ idempotencyKeys: 0, auditRows: 0, transitions: 0, events: 0 });
  });

  it('honours configured periods', async () => {
    await client.query('delete from audit_log; delete from deployment_transitions');
    const id = await deployment('periods');
    await transitions(id, 120, 120, 2); // two days old
    await client.query("insert into audit_log (actor, action, target, at) select 'a', 'p', 't', now() - interval '2 days' from generate_series(1, 5)");
    const lenient = createRetention({ db: t.db, log, periods: { transitionsMs: 3 * DAY, auditMs: 3 * DAY } });
    expect(await lenient.runOnce()).toMatchObject({ auditRows: 0, transitions: 0 });
    const strict = createRetention({ db: t.db, log, periods: { transitionsMs: DAY, auditMs: DAY, keepTransitions: 10 } });
    expect(await strict.runOnce()).toMatchObject({ auditRows: 5, transitions: 110 });
  });

  it('two pruners at once (two replicas) delete every expired row exactly once', async () => {
    const id = await deployment('race');
    await transitions(id, 2100, 2000, 40);
    const [a, b] = [createRetention({ db: t.db, log, batchSize: 50 }), createRetention({ db: t.db, log, batchSize: 50 })];
    const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
    expect(ra.transitions + rb.transitions).toBe(2000);
    expect(await count('deployment_transitions', `deployment_id = '${id}'`)).toBe(100);
  });

  it('runs on its own once started and stops cleanly', async () => {
    const id = await deployment('timer');
    await transitions(id, 105, 105, 40);
    const retention = createRetention({ db: t.db, log, intervalMs: 50 });
    retention.start();
    await sleepUntil(async () => (await count('deployment_transitions', `deployment_id = '${id}'`)) === 100);
    await retention.stop();
  });
});
