// The outbox write, called by the journal inside its transaction (after the fence): the events
// of the entry, and one delivery per matching enabled sink. Nothing is sent from here; the
// dispatcher (dispatcher.ts) is woken by NOTIFY keelson_notify once this commits.
import { sql, type DatabaseTransactionConnection } from 'slonik';
import { z } from 'zod';
import { eventsFor, type EventSource } from './events.ts';

export const NOTIFY_CHANNEL = 'keelson_notify';

/** Which sinks want an event: SQL, so the fan-out is one statement (and a SQL-written sink behaves alike). */
export const SINK_MATCHES = sql.fragment`
  s.enabled
  and (s.projects is null or ev.project = any (s.projects))
  and (s.environments is null or ev.environment = any (s.environments))
  and (s.event_types is null or ev.type = any (s.event_types) or split_part(ev.type, '.', 1) || '.*' = any (s.event_types))
  and (s.kind <> 'registry' or ev.type in ('deploy.succeeded', 'rollback.succeeded', 'teardown.succeeded'))`;

export async function writeEvents(tx: DatabaseTransactionConnection, entry: EventSource & { seq: number }): Promise<number> {
  let deliveries = 0;
  for (const event of eventsFor(entry)) {
    const count = await tx.oneFirst(sql.type(z.object({ count: z.number() }))`
      with ev as (
        insert into deployment_events (id, deployment_id, project, environment, type, action_id, seq, data)
        select ${event.id}, d.id, d.project, d.environment, ${event.type}, ${event.actionId}, ${entry.seq},
               ${sql.jsonb(event.data as never)}
                 || jsonb_build_object('project', d.project, 'environment', d.environment,
                                       'namespace', coalesce(d.namespace, d.project || '-' || d.environment))
        from deployments d where d.id = ${entry.deploymentId}
        on conflict (id) do nothing
        returning id, position, deployment_id, project, environment, type
      ), fanned as (
        insert into notification_deliveries (event_id, sink_id, deployment_id, event_position)
        select ev.id, s.id, ev.deployment_id, ev.position from ev join notification_sinks s on ${SINK_MATCHES}
        returning 1
      )
      select count(*)::int as count from fanned`);
    deliveries += count;
  }
  if (deliveries > 0) await tx.query(sql.unsafe`select pg_notify(${NOTIFY_CHANNEL}, '')`);
  return deliveries;
}
