// Ownership across processes, by leases in `deployment_leases` (not advisory locks: a process
// hosting 10,000 deployments would exhaust PostgreSQL's shared lock table). A lease lives
// `ttlMs`; its holder renews all of its leases in one statement every heartbeat. A process that
// dies stops renewing, its leases expire, and the others claim them.
//
// Fencing: every acquisition increments the lease's `epoch`, and an actor journals under the
// epoch it was started with (journal.ts refuses any other), so an actor that lost its lease —
// to another process, or to a restart of its own process — can never commit again. A released
// lease keeps its row, expired, so its epoch never goes back.
//
// Identity: a process is named by its instance id (KEELSON_INSTANCE_ID, e.g. the pod name) and
// its incarnation (a uuid per start). A restarted process with the same id reclaims its own
// leases at once instead of waiting a TTL. Whether a process with the same id is still alive is
// told by a session advisory lock on the id, held by the heartbeat connection (ownership.ts):
// PostgreSQL drops it the moment that session ends.
import { createHash } from 'node:crypto';
import os from 'node:os';
import type pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Db } from '../db/pool.ts';
import { TerminalError, TransientError } from '../errors.ts';

/** Another live process runs with this instance id: the newer one refuses to run. */
export class DuplicateInstanceError extends TerminalError {
  constructor(instanceId: string, other: string) {
    super(
      `another keelson process is running with instance id "${instanceId}" (${other}); this one refuses to run. ` +
        'Give every process its own KEELSON_INSTANCE_ID (the pod name of a StatefulSet or Deployment is unique).',
      { code: 'duplicate_instance' },
    );
  }
}

/** The advisory-lock key of an instance id: 64 bits of its hash (a different key space from the migration lock's). */
export function instanceLockKey(instanceId: string): string {
  return createHash('sha256').update(`keelson-instance:${instanceId}`).digest().readBigInt64BE(0).toString();
}

const InstanceRow = z.object({ hostname: z.string(), pid: z.number(), incarnation: z.string().nullable(), age_ms: z.number() });

/** The holder of the instance lock, as pg_locks shows a bigint advisory key (high and low 32 bits). */
async function lockHolder(client: pg.Client, key: string): Promise<number | undefined> {
  const value = BigInt.asUintN(64, BigInt(key));
  const { rows } = await client.query<{ pid: number }>(
    `select pid from pg_locks
     where locktype = 'advisory' and granted and objsubid = 1 and classid = $1::oid and objid = $2::oid
       and database = (select oid from pg_database where datname = current_database())`,
    [(value >> 32n).toString(), (value & 0xffffffffn).toString()],
  );
  return rows[0]?.pid;
}

/**
 * Takes the instance id for this incarnation, on the heartbeat connection (plain pg: its
 * session holds the advisory lock). Throws DuplicateInstanceError when a live process has it.
 *
 * A session can outlive its process: a node that lost power sends no FIN, and PostgreSQL keeps
 * the session (and the lock) until TCP keepalive gives up, hours by default. So the lock counts
 * as held by a live process only while the instance row's heartbeat is younger than the TTL;
 * an older holder is terminated (a process that has not heartbeated for a TTL has fenced
 * itself). The same goes for this incarnation's own previous heartbeat session.
 */
export async function registerInstance(client: pg.Client, instanceId: string, incarnation: string, ttlMs: number): Promise<void> {
  const key = instanceLockKey(instanceId);
  const tryLock = async () => (await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [key])).rows[0]?.locked === true;
  if (!(await tryLock())) {
    const other = await client.query(
      `select hostname, pid, incarnation::text as incarnation,
              (extract(epoch from now() - heartbeat_at) * 1000)::float8 as age_ms
       from keelson_instances where id = $1`,
      [instanceId],
    );
    const parsed = InstanceRow.safeParse(other.rows[0]);
    const stale = !parsed.success || parsed.data.incarnation === incarnation || parsed.data.age_ms > ttlMs;
    const holder = stale ? await lockHolder(client, key) : undefined;
    if (holder !== undefined) {
      await client.query('select pg_terminate_backend($1, $2)', [holder, Math.max(1000, Math.floor(ttlMs / 2))]);
    }
    if (holder === undefined || !(await tryLock())) {
      if (parsed.success && parsed.data.incarnation === incarnation) {
        throw new TransientError(`the previous heartbeat session of this process still holds the lock of instance id "${instanceId}"`, {
          code: 'instance_lock_busy',
        });
      }
      const description = parsed.success
        ? `incarnation ${parsed.data.incarnation ?? 'unknown'} on host ${parsed.data.hostname}, pid ${parsed.data.pid}, last heartbeat ${Math.round(parsed.data.age_ms)} ms ago`
        : 'its session holds the instance lock';
      throw new DuplicateInstanceError(instanceId, description);
    }
  }
  await client.query(
    `insert into keelson_instances (id, hostname, pid, incarnation) values ($1, $2, $3, $4)
     on conflict (id) do update set hostname = excluded.hostname, pid = excluded.pid, incarnation = excluded.incarnation,
       started_at = now(), heartbeat_at = now()`,
    [instanceId, os.hostname(), process.pid, incarnation],
  );
}

/**
 * A 32-bit digest of one lease as held (deployment, epoch). The heartbeat sums the digests of
 * the leases it renewed in SQL (LEASE_DIGEST, the same function) and compares the sum with the
 * runtime's over its actors: equal, the leases are the ones the actors were started under.
 */
export function leaseDigest(deploymentId: string, epoch: number): number {
  return createHash('md5').update(`${deploymentId}/${epoch}`).digest().readUInt32BE(0);
}

/** leaseDigest in SQL, over a row with deployment_id and epoch (unsigned: bit(32) → bigint) */
const LEASE_DIGEST = `('x' || left(md5(deployment_id::text || '/' || epoch::text), 8))::bit(32)::bigint`;

/** The leases the runtime's actors were started under: their count and the sum of their leaseDigests. */
export interface HeldLeases {
  readonly count: number;
  readonly digest: number;
}

export interface Heartbeat {
  /** false: another incarnation with this instance id took over (this process must stop) */
  readonly registered: boolean;
  /**
   * Deployments whose lease this incarnation still holds, with their epochs; null when they are
   * exactly the `held` leases the heartbeat was given (by count and digest sum), which is what
   * a steady host finds at every heartbeat.
   */
  readonly owned: Map<string, number> | null;
  /** instances alive (this one included) */
  readonly liveInstances: number;
  readonly totalDeployments: number;
}

/**
 * One round trip, in one transaction, on the heartbeat connection. With `held`, the renewed
 * leases come back only when they differ from it: a host of 10,000 deployments then reads one
 * row, not 10,000 (parsed every heartbeat, a fair share of an idle host's CPU). A difference
 * the digest sum misses (a lost lease and an orphan whose digests happen to cancel, about one
 * in 2^32) delays finding them, not fencing: every journal write checks its epoch against the
 * lease row, and a lease another process claims has expired, past this process's validity.
 */
export async function heartbeat(client: pg.Client, instanceId: string, incarnation: string, ttlMs: number, held?: HeldLeases): Promise<Heartbeat> {
  const ttl = `${ttlMs} milliseconds`;
  const { rows } = await client.query<{ registered: boolean; owned: Array<[string, string]> | null; live: number; total: number }>(
    `with me as (
       update keelson_instances set heartbeat_at = now() where id = $1 and incarnation = $2 returning id
     ), renewed as (
       update deployment_leases set expires_at = now() + $3::interval
       where instance_id = $1 and incarnation = $2 and expires_at > now() and exists (select 1 from me)
       returning deployment_id, epoch
     ), sums as (
       select count(*)::int as count, coalesce(sum(${LEASE_DIGEST}), 0)::bigint as digest from renewed
     )
     select exists (select 1 from me) as registered,
            case when (select count = $4::int and digest = $5::bigint from sums) then null
                 else (select coalesce(json_agg(json_build_array(deployment_id, epoch::text)), '[]'::json) from renewed) end as owned,
            (select count(*)::int from keelson_instances where heartbeat_at > now() - $3::interval) as live,
            (select count(*)::int from deployments) as total`,
    [instanceId, incarnation, ttl, held?.count ?? -1, String(held?.digest ?? 0)],
  );
  const row = rows[0];
  return {
    registered: row?.registered === true,
    owned: row !== undefined && row.owned === null ? null : new Map((row?.owned ?? []).map(([id, epoch]) => [id, Number(epoch)])),
    liveInstances: Math.max(1, row?.live ?? 1),
    totalDeployments: row?.total ?? 0,
  };
}

const Claimed = z.object({ deployment_id: z.string(), epoch: z.number() });

export interface ClaimOptions {
  readonly limit?: number;
  /** exactly these deployments (when claimable) */
  readonly ids?: readonly string[];
  /** never these: the ones this process hosts (reclaiming them would fence their actors) */
  readonly exclude?: readonly string[];
}

/**
 * Claims deployments nobody holds, whose lease expired, or that this instance id holds without
 * hosting them (a previous incarnation's, after a restart; an orphan of this one), bumping each
 * lease's epoch. Own leases come first. Two instances racing for one row: the conflict clause
 * lets only one win. Returns each claimed deployment with its new epoch.
 */
export async function claim(db: Db, instanceId: string, incarnation: string, ttlMs: number, options: ClaimOptions): Promise<Map<string, number>> {
  const ttl = `${ttlMs} milliseconds`;
  const only = options.ids ? sql.fragment`and d.id = any(${sql.array([...options.ids], 'uuid')})` : sql.fragment``;
  const exclude = options.exclude && options.exclude.length > 0 ? sql.fragment`and d.id <> all(${sql.array([...options.exclude], 'uuid')})` : sql.fragment``;
  const rows = await db.any(sql.type(Claimed)`
    insert into deployment_leases (deployment_id, instance_id, incarnation, expires_at, epoch)
    select d.id, ${instanceId}, ${incarnation}::uuid, now() + ${ttl}::interval, 1
    from deployments d
    left join deployment_leases l on l.deployment_id = d.id
    where (l.deployment_id is null or l.expires_at <= now() or l.instance_id = ${instanceId}) ${only} ${exclude}
    order by (l.instance_id is not distinct from ${instanceId}) desc, d.id
    limit ${options.limit ?? 1000}
    on conflict (deployment_id) do update
      set instance_id = excluded.instance_id, incarnation = excluded.incarnation, expires_at = excluded.expires_at,
          epoch = deployment_leases.epoch + 1
      where deployment_leases.expires_at <= now() or deployment_leases.instance_id = ${instanceId}
    returning deployment_id, epoch`);
  return new Map(rows.map((row) => [row.deployment_id, row.epoch]));
}

/** Expires this incarnation's leases (all, or the given ones); the rows stay, keeping their epochs. */
export async function release(db: Db, instanceId: string, incarnation: string, ids?: readonly string[]): Promise<void> {
  const only = ids ? sql.fragment`and deployment_id = any(${sql.array([...ids], 'uuid')})` : sql.fragment``;
  await db.query(sql.unsafe`
    update deployment_leases set expires_at = now()
    where instance_id = ${instanceId} and incarnation = ${incarnation}::uuid and expires_at > now() ${only}`);
  if (!ids) await db.query(sql.unsafe`delete from keelson_instances where id = ${instanceId} and incarnation = ${incarnation}::uuid`);
}
