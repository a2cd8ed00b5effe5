import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

// Each statement deletes one batch and commits on its own: locks are held for one batch only,
// and `skip locked` lets two replicas prune at once without waiting on each other.

/** Idempotency keys older than the TTL (route.ts already treats them as forgotten). */
export async function pruneIdempotencyKeys(db: Pick<CommonQueryMethods, 'oneFirst'>, olderThanMs: number, batch: number): Promise<number> {
  return await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    with doomed as (
      select token_id, key from idempotency_keys
      where created_at < now() - make_interval(secs => ${olderThanMs / 1000})
      limit ${batch} for update skip locked
    ), gone as (
      delete from idempotency_keys k using doomed d where k.token_id = d.token_id and k.key = d.key returning 1
    )
    select count(*)::int as n from gone`);
}

/** Audit rows older than the retention period. */
export async function pruneAuditLog(db: Pick<CommonQueryMethods, 'oneFirst'>, olderThanMs: number, batch: number): Promise<number> {
  return await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    with doomed as (
      select id from audit_log where at < now() - make_interval(secs => ${olderThanMs / 1000})
      order by id limit ${batch} for update skip locked
    ), gone as (
      delete from audit_log a using doomed d where a.id = d.id returning 1
    )
    select count(*)::int as n from gone`);
}

/**
 * Transitions older than the retention period, except each deployment's newest `keep`: the
 * visualizer's timeline and SSE replays of a live deployment always have its recent history.
 */
export async function pruneTransitions(db: Pick<CommonQueryMethods, 'oneFirst'>, olderThanMs: number, keep: number, batch: number): Promise<number> {
  return await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    with doomed as (
      select t.id from deployment_transitions t
      where t.at < now() - make_interval(secs => ${olderThanMs / 1000})
        and t.seq <= (select max(m.seq) from deployment_transitions m where m.deployment_id = t.deployment_id) - ${keep}
      order by t.at limit ${batch} for update of t skip locked
    ), gone as (
      delete from deployment_transitions t using doomed d where t.id = d.id returning 1
    )
    select count(*)::int as n from gone`);
}

/**
 * Outbox events older than the retention period whose deliveries are all finished (delivered or
 * dead): their deliveries and attempts go with them. An event with a pending delivery stays, so
 * the order of a deployment's deliveries never changes.
 */
export async function pruneEvents(db: Pick<CommonQueryMethods, 'oneFirst'>, olderThanMs: number, batch: number): Promise<number> {
  return await db.oneFirst(sql.type(z.object({ n: z.number() }))`
    with doomed as (
      select e.id from deployment_events e
      where e.occurred_at < now() - make_interval(secs => ${olderThanMs / 1000})
        and not exists (select 1 from notification_deliveries d where d.event_id = e.id and d.status = 'pending')
      order by e.occurred_at limit ${batch} for update of e skip locked
    ), gone as (
      delete from deployment_events e using doomed d where e.id = d.id returning 1
    )
    select count(*)::int as n from gone`);
}
