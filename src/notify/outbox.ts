// The outbox write, called by the journal inside its transaction (after the fence): the events
// of the entry, and one delivery per matching enabled sink. Nothing is sent from here; the
// dispatcher (dispatcher.ts) is woken by NOTIFY keelson_notify once this commits.
import { sql, type DatabaseTransactionConnection, type FragmentSqlToken } from 'slonik';
import { eventsFor, type EventSource, type OutboxEvent } from './events.ts';

export const NOTIFY_CHANNEL = 'keelson_notify';

/** Which sinks want an event: SQL, so the fan-out is one statement (and a SQL-written sink behaves alike). */
export const SINK_MATCHES = sql.fragment`
  s.enabled
  and (s.projects is null or ev.project = any (s.projects))
  and (s.environments is null or ev.environment = any (s.environments))
  and (s.event_types is null or ev.type = any (s.event_types) or split_part(ev.type, '.', 1) || '.*' = any (s.event_types))
  and (s.kind <> 'registry' or ev.type in ('deploy.succeeded', 'rollback.succeeded', 'teardown.succeeded'))`;

/** One event's rows: the event and its deliveries, as two common table expressions (`ev`, `fanned`). */
function eventRows(entry: EventSource & { seq: number }, event: OutboxEvent, guard: FragmentSqlToken = sql.fragment`true`) {
  return sql.fragment`
    ev as (
      insert into deployment_events (id, deployment_id, project, environment, type, action_id, seq, data)
      select ${event.id}, d.id, d.project, d.environment, ${event.type}, ${event.actionId}, ${entry.seq},
             ${sql.jsonb(event.data as never)}
               || jsonb_build_object('project', d.project, 'environment', d.environment,
                                     'namespace', coalesce(d.namespace, d.project || '-' || d.environment))
      from deployments d where d.id = ${entry.deploymentId} and ${guard}
      on conflict (id) do nothing
      returning id, position, deployment_id, project, environment, type
    ), fanned as (
      insert into notification_deliveries (event_id, sink_id, deployment_id, event_position)
      select ev.id, s.id, ev.deployment_id, ev.position from ev join notification_sinks s on ${SINK_MATCHES}
      returning 1
    )`;
}

/** Wakes the dispatcher (on commit) when the event fanned out to a delivery. */
const WAKE_DISPATCHER = sql.fragment`(select pg_notify(${NOTIFY_CHANNEL}, '') where exists (select 1 from fanned))`;

/**
 * The outbox rows of an entry with exactly one event (a wake-up's first entry: its action's
 * start) as common table expressions and the expression that wakes the dispatcher, for the
 * journal to run in the statement of the entry's transition row: one round trip fewer. Null
 * for any other entry, whose events writeEvents inserts one statement each, in order (the
 * order of statements is the order of their positions, which the dispatcher keeps; that of a
 * statement's common table expressions is not defined). `guard`, a condition of the statement,
 * keeps the event out unless it holds (the journal's fence, when no transaction rolls back).
 */
export function singleEventRows(
  entry: EventSource & { seq: number },
  guard?: FragmentSqlToken,
): { ctes: FragmentSqlToken; wake: FragmentSqlToken } | null {
  const events = eventsFor(entry);
  const [event] = events;
  if (events.length !== 1 || !event) return null;
  return { ctes: eventRows(entry, event, guard), wake: WAKE_DISPATCHER };
}

export async function writeEvents(tx: DatabaseTransactionConnection, entry: EventSource & { seq: number }): Promise<void> {
  for (const event of eventsFor(entry)) await tx.query(sql.unsafe`with ${eventRows(entry, event)} select ${WAKE_DISPATCHER}`);
}
