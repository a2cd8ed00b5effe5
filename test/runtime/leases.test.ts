// The lease heartbeat on real PostgreSQL: it renews every lease of the incarnation and reads
// them back only when they differ from what the runtime's actors hold (count and digest sum).
import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claim, heartbeat, leaseDigest, registerInstance } from '../../src/runtime/leases.ts';
import { createTestDatabaseClient, type TestDatabase } from '../helpers.ts';
import type pg from 'pg';

let t: TestDatabase;
let client: pg.Client;
let close: () => Promise<void>;
const instanceId = 'leases-test';
const incarnation = randomUUID();
const ttlMs = 30_000;
let claimed: Map<string, number>;

const digestOf = (leases: Map<string, number>) => [...leases].reduce((sum, [id, epoch]) => sum + leaseDigest(id, epoch), 0);

beforeAll(async () => {
  ({ t, client, close } = await createTestDatabaseClient());
  // enough rows that digests with the high bit set occur (a signed cast would differ from JS)
  await t.db.query(sql.unsafe`insert into deployments (project, environment, image_ref) select 'p' || i, 'prod', 'x:1' from generate_series(1, 200) i`);
  await registerInstance(client, instanceId, incarnation, ttlMs);
  claimed = await claim(t.db, instanceId, incarnation, ttlMs, { limit: 1000 });
});

afterAll(async () => {
  await close();
});

describe('heartbeat', () => {
  it('without what the actors hold, returns every renewed lease with its epoch', async () => {
    const beat = await heartbeat(client, instanceId, incarnation, ttlMs);
    expect(beat.registered).toBe(true);
    expect(beat.totalDeployments).toBe(200);
    expect(beat.owned).toEqual(claimed);
  });

  it('given exactly the leases held (count and digest sum, the same digest in SQL as in JS), returns none', async () => {
    expect(claimed.size).toBe(200);
    const beat = await heartbeat(client, instanceId, incarnation, ttlMs, { count: claimed.size, digest: digestOf(claimed) });
    expect(beat.registered).toBe(true);
    expect(beat.owned).toBeNull();
  });

  it.each([
    ['an actor at another epoch', (leases: Map<string, number>) => leases.set([...leases.keys()][0] ?? '', 99)],
    ['a lease held without an actor (an orphan)', (leases: Map<string, number>) => leases.delete([...leases.keys()][1] ?? '')],
    ['an actor whose lease is gone', (leases: Map<string, number>) => leases.set(randomUUID(), 1)],
  ])('given %s, returns the renewed leases to compare one by one', async (_name, change) => {
    const held = new Map(claimed);
    change(held);
    const beat = await heartbeat(client, instanceId, incarnation, ttlMs, { count: held.size, digest: digestOf(held) });
    expect(beat.owned).toEqual(claimed);
  });

  it('renews the leases either way', async () => {
    await t.db.query(sql.unsafe`update deployment_leases set expires_at = now() + interval '1 second'`);
    await heartbeat(client, instanceId, incarnation, ttlMs, { count: claimed.size, digest: digestOf(claimed) });
    const soonest = await t.db.oneFirst(sql.unsafe`select min(extract(epoch from expires_at - now()))::float8 from deployment_leases`);
    expect(Number(soonest)).toBeGreaterThan(20);
  });
});
