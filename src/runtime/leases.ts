// Ownership across processes, by leases in `deployment_leases` (not advisory locks: a process
// hosting 10,000 deployments would exhaust PostgreSQL's shared lock table). A lease lives
// `ttlMs`; its holder renews all of its leases in one statement every heartbeat. A process that
// dies stops renewing, its leases expire, and the others claim them. The journal re-checks the
// lease inside every write, so an expired holder can never write for a deployment again.
import os from 'node:os';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Db } from '../db/pool.ts';

const Ids = z.object({ deployment_id: z.string() });

export async function registerInstance(db: Db, instanceId: string): Promise<void> {
  await db.query(sql.unsafe`
    insert into keelson_instances (id, hostname, pid) values (${instanceId}, ${os.hostname()}, ${process.pid})
    on conflict (id) do update set heartbeat_at = now()`);
}

export interface Heartbeat {
  /** deployments whose lease this instance still holds */
  readonly owned: Set<string>;
  /** instances alive (this one included) */
  readonly liveInstances: number;
  readonly totalDeployments: number;
}

export async function heartbeat(db: Db, instanceId: string, ttlMs: number): Promise<Heartbeat> {
  const ttl = `${ttlMs} milliseconds`;
  return await db.transaction(async (tx) => {
    await tx.query(sql.unsafe`update keelson_instances set heartbeat_at = now() where id = ${instanceId}`);
    const renewed = await tx.any(sql.type(Ids)`
      update deployment_leases set expires_at = now() + ${ttl}::interval
      where instance_id = ${instanceId} and expires_at > now()
      returning deployment_id`);
    const counts = await tx.one(sql.type(z.object({ live: z.number(), total: z.number() }))`
      select
        (select count(*) from keelson_instances where heartbeat_at > now() - ${ttl}::interval) as live,
        (select count(*) from deployments) as total`);
    return {
      owned: new Set(renewed.map((row) => row.deployment_id)),
      liveInstances: Math.max(1, counts.live),
      totalDeployments: counts.total,
    };
  });
}

/**
 * Claims up to `limit` deployments that nobody holds (or whose lease expired), or exactly the
 * given ids. Two instances racing for one row: the conflict clause lets only one win.
 */
export async function claim(db: Db, instanceId: string, ttlMs: number, options: { limit?: number; ids?: string[] }): Promise<string[]> {
  const ttl = `${ttlMs} milliseconds`;
  const filter = options.ids ? sql.fragment`and d.id = any(${sql.array(options.ids, 'uuid')})` : sql.fragment``;
  const rows = await db.any(sql.type(Ids)`
    insert into deployment_leases (deployment_id, instance_id, expires_at)
    select d.id, ${instanceId}, now() + ${ttl}::interval
    from deployments d
    left join deployment_leases l on l.deployment_id = d.id
    where (l.deployment_id is null or l.expires_at <= now()) ${filter}
    order by d.id
    limit ${options.limit ?? 1000}
    on conflict (deployment_id) do update
      set instance_id = excluded.instance_id, expires_at = excluded.expires_at
      where deployment_leases.expires_at <= now()
    returning deployment_id`);
  return rows.map((row) => row.deployment_id);
}

export async function release(db: Db, instanceId: string, ids?: string[]): Promise<void> {
  if (ids) {
    await db.query(sql.unsafe`
      delete from deployment_leases where instance_id = ${instanceId} and deployment_id = any(${sql.array(ids, 'uuid')})`);
    return;
  }
  await db.query(sql.unsafe`delete from deployment_leases where instance_id = ${instanceId}`);
  await db.query(sql.unsafe`delete from keelson_instances where id = ${instanceId}`);
}
