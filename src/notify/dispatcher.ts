// The dispatcher: delivers the outbox's pending deliveries, at least once, from any replica.
//
// Claim, send, record — never one long transaction around a request: a short transaction claims
// due deliveries (FOR UPDATE SKIP LOCKED, so dispatchers on other replicas skip them) by writing
// a claim token and `claimed_until`; the request runs outside any transaction; the outcome is
// recorded only under the same claim token. A process killed mid-request leaves its claim to
// expire, and another dispatcher tries again (the receiver de-duplicates by event id). A claim
// lasts longer than the request timeout, so two dispatchers never send the same attempt at once.
//
// Order per deployment and sink: a delivery is claimable only when no earlier delivery of the
// same deployment to the same sink is still pending (a dead one no longer holds the line).
//
// Woken by NOTIFY keelson_notify (the journal's outbox write), by a slow poll, and by the
// earliest retry due; bounded concurrency; stop() waits for the requests in flight.
import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { redactSecrets } from '../api/redact.ts';
import { createListener, type Listener } from '../db/listen.ts';
import type { Db } from '../db/pool.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { NOTIFY_CHANNEL } from './outbox.ts';
import { afterFailure, DEFAULT_RETRY_POLICY, parseRetryAfter, RETRY_AFTER_STATUSES, type RetryPolicy } from './retry.ts';
import { SINKS } from './sinks/index.ts';
import type { Deliverer } from './sinks/kubernetesEvents.ts';
import { SINK_KINDS, type HttpSinkKind, type SinkKind, type SinkRequest, type StoredEvent } from './sinks/sink.ts';

export interface DispatcherOptions {
  readonly db: Db;
  /** for LISTEN; omit to rely on the poll alone */
  readonly databaseUrl?: string;
  readonly log: Logger;
  readonly metrics?: Metrics;
  readonly instanceId: string;
  readonly retry?: Partial<RetryPolicy>;
  /** KEELSON_NOTIFY_CONCURRENCY: requests in flight at once (default 8) */
  readonly concurrency?: number;
  /** KEELSON_NOTIFY_TIMEOUT: per request (default 10 s) */
  readonly requestTimeoutMs?: number;
  /** how often the table is looked at without a NOTIFY (default 10 s) */
  readonly pollIntervalMs?: number;
  /** KEELSON_PUBLIC_URL */
  readonly publicUrl?: string | null;
  /**
   * Sinks that are not HTTP requests (kubernetes-events, with the process's cluster client).
   * A delivery of such a kind without a deliverer fails, naming why, and is retried.
   */
  readonly deliverers?: Partial<Record<SinkKind, Deliverer>>;
  readonly random?: () => number;
}

export interface DispatcherStats {
  readonly inFlight: number;
  readonly delivered: number;
  readonly failed: number;
  readonly dead: number;
}

export interface Dispatcher {
  start(): Promise<void>;
  /** Stops claiming, waits for the requests in flight (each bounded by the request timeout) and records them. */
  stop(): Promise<void>;
  wake(): void;
  stats(): DispatcherStats;
}

const Claimed = z.object({
  id: z.number(),
  attempts: z.number(),
  age_ms: z.number(),
  claim_token: z.string(),
  event_id: z.string(),
  type: z.string(),
  project: z.string(),
  environment: z.string(),
  occurred_at: z.string(),
  data: z.record(z.string(), z.unknown()),
  sink_name: z.string(),
  kind: z.enum(SINK_KINDS),
  url: z.string(),
  secret: z.string().nullable(),
  headers: z.record(z.string(), z.unknown()),
});
type Claimed = z.infer<typeof Claimed>;

interface Outcome {
  readonly ok: boolean;
  readonly statusCode: number | null;
  readonly error: string | null;
  readonly durationMs: number;
  readonly startedAt: Date;
  /** the receiver's Retry-After (a 429 or 503), as a wait in ms from its answer */
  readonly retryAfterMs?: number;
}

/** Sends one request; never throws, never lets the URL (it may hold a token, e.g. Slack's) into the error. */
export async function send(request: SinkRequest, timeoutMs: number): Promise<Omit<Outcome, 'startedAt'>> {
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true, statusCode: response.status, error: null, durationMs: took() };
    if (RETRY_AFTER_STATUSES.has(response.status)) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'), Date.now());
      if (retryAfterMs !== undefined) {
        const error = `HTTP ${response.status} (Retry-After ${Math.ceil(retryAfterMs / 1000)} s)`;
        return { ok: false, statusCode: response.status, error, durationMs: took(), retryAfterMs };
      }
    }
    const redirect = response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : '';
    return { ok: false, statusCode: response.status, error: `HTTP ${response.status}${redirect}`, durationMs: took() };
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') {
      return { ok: false, statusCode: null, error: `no response within ${timeoutMs} ms`, durationMs: took() };
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const text = cause?.code ?? cause?.message ?? errorMessage(error);
    return { ok: false, statusCode: null, error: redactSecrets(`request failed: ${text}`), durationMs: took() };
  }
}

const isHttpKind = (kind: SinkKind): kind is HttpSinkKind => Object.hasOwn(SINKS, kind);

export function createDispatcher(options: DispatcherOptions): Dispatcher {
  const { db, log } = options;
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const concurrency = options.concurrency ?? 8;
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const pollMs = options.pollIntervalMs ?? 10_000;
  // longer than any request: a claim outlives its attempt unless the process died
  const claimMs = timeoutMs + 30_000;
  const context = { publicUrl: options.publicUrl?.replace(/\/+$/, '') || null };
  const inFlight = new Set<Promise<void>>();
  const counts = { delivered: 0, failed: 0, dead: 0 };
  let stopped = true;
  let loop: Promise<void> | null = null;
  let listener: Listener | null = null;
  let wakeUp: (() => void) | null = null;
  let woken = false;

  const wake = () => {
    woken = true;
    wakeUp?.();
  };

  async function claim(limit: number): Promise<readonly Claimed[]> {
    const token = randomUUID();
    return await db.any(sql.type(Claimed)`
      with due as (
        select d.id from notification_deliveries d
        -- a disabled sink's deliveries wait (its horizon still runs)
        join notification_sinks s on s.id = d.sink_id and s.enabled
        where d.status = 'pending' and d.next_attempt_at <= now()
          and (d.claimed_until is null or d.claimed_until < now())
          and not exists (
            select 1 from notification_deliveries e
            where e.sink_id = d.sink_id and e.deployment_id = d.deployment_id
              and e.status = 'pending' and e.event_position < d.event_position)
        order by d.next_attempt_at, d.id
        limit ${limit}
        for update of d skip locked
      ), claimed as (
        update notification_deliveries d
        set claim_token = ${token}, claimed_until = now() + make_interval(secs => ${claimMs / 1000}), attempts = d.attempts + 1
        from due where d.id = due.id
        returning d.id, d.attempts, d.created_at, d.claim_token, d.event_id, d.sink_id
      )
      select c.id, c.attempts, (extract(epoch from now() - c.created_at) * 1000)::float8 as age_ms, c.claim_token::text,
             ev.id::text as event_id, ev.type, ev.project, ev.environment,
             to_char(ev.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at, ev.data,
             s.name as sink_name, s.kind, s.url, s.secret, s.headers
      from claimed c join deployment_events ev on ev.id = c.event_id join notification_sinks s on s.id = c.sink_id
      order by c.id`);
  }

  async function record(delivery: Claimed, outcome: Outcome): Promise<void> {
    const decision = outcome.ok ? null : afterFailure(policy, delivery.attempts, delivery.age_ms + outcome.durationMs, options.random, outcome.retryAfterMs);
    const status = outcome.ok ? 'delivered' : decision?.dead ? 'dead' : 'pending';
    const delayMs = decision && !decision.dead ? decision.delayMs : 0;
    await db.transaction(async (tx) => {
      // only under our claim: if it expired and another dispatcher took the delivery, its record wins
      const mine = await tx.maybeOne(sql.type(z.object({ id: z.number() }))`
        update notification_deliveries set
          status = ${status},
          last_error = ${outcome.error},
          next_attempt_at = case when ${status} = 'pending' then now() + make_interval(secs => ${delayMs / 1000}) else next_attempt_at end,
          finished_at = case when ${status} = 'pending' then null else now() end,
          claim_token = null, claimed_until = null
        where id = ${delivery.id} and claim_token = ${delivery.claim_token}
        returning id`);
      if (!mine) {
        log.warn({ deliveryId: delivery.id, sink: delivery.sink_name }, 'notification delivery claim expired before its outcome was recorded');
        return;
      }
      // a finished delivery unblocks the next one of its deployment, maybe on another replica
      if (status !== 'pending') await tx.query(sql.unsafe`select pg_notify(${NOTIFY_CHANNEL}, '')`);
      await tx.query(sql.unsafe`
        insert into notification_attempts (delivery_id, attempt, started_at, duration_ms, status_code, error, instance_id)
        values (${delivery.id}, ${delivery.attempts}, ${outcome.startedAt.toISOString()}, ${outcome.durationMs},
                ${outcome.statusCode}, ${outcome.error}, ${options.instanceId})
        on conflict (delivery_id, attempt) do nothing`);
    });
    options.metrics?.notifyAttempts.inc({ kind: delivery.kind, outcome: status === 'pending' ? 'retrying' : status });
    if (status === 'delivered') counts.delivered += 1;
    else if (status === 'dead') counts.dead += 1;
    else counts.failed += 1;
    // the sink's name, the event and the outcome only: never its URL, secret or headers
    const fields = { deliveryId: delivery.id, sink: delivery.sink_name, event: delivery.event_id, type: delivery.type, attempt: delivery.attempts };
    if (status === 'dead') log.warn({ ...fields, error: outcome.error }, 'notification delivery given up: past the horizon');
    else if (status === 'pending') log.info({ ...fields, error: outcome.error, retryInMs: delayMs }, 'notification delivery failed, will retry');
    else log.debug(fields, 'notification delivered');
  }

  async function attempt(delivery: Claimed): Promise<void> {
    const startedAt = new Date();
    let outcome: Outcome;
    try {
      const event: StoredEvent = {
        id: delivery.event_id,
        type: delivery.type,
        project: delivery.project,
        environment: delivery.environment,
        occurredAt: delivery.occurred_at,
        data: delivery.data as unknown as StoredEvent['data'],
      };
      const deliverer = options.deliverers?.[delivery.kind];
      if (deliverer) {
        outcome = { ...(await deliverer(event, timeoutMs)), startedAt };
      } else if (isHttpKind(delivery.kind)) {
        const headers = Object.fromEntries(Object.entries(delivery.headers).filter((e): e is [string, string] => typeof e[1] === 'string'));
        const request = SINKS[delivery.kind].build(event, { kind: delivery.kind, url: delivery.url, secret: delivery.secret, headers }, context);
        outcome = request
          ? { ...(await send(request, timeoutMs)), startedAt }
          : { ok: true, statusCode: null, error: null, durationMs: 0, startedAt };
      } else {
        outcome = { ok: false, statusCode: null, error: `this keelson process delivers no ${delivery.kind} (it has no Kubernetes client)`, durationMs: 0, startedAt };
      }
    } catch (error) {
      outcome = { ok: false, statusCode: null, error: redactSecrets(errorMessage(error)), durationMs: 0, startedAt };
    }
    try {
      await record(delivery, outcome);
    } catch (error) {
      // the claim expires and the delivery is tried again: at least once
      log.error({ deliveryId: delivery.id, err: { message: redactSecrets(errorMessage(error)) } }, 'recording a notification attempt failed');
    }
  }

  /** When the next retry is due (ms from now), if sooner than the poll. */
  async function nextDueMs(): Promise<number> {
    // what the claim would take soonest: an attempt in flight elsewhere counts from its claim's
    // end, and a delivery waiting behind an earlier one of its deployment not at all
    const due = await db.maybeOneFirst(sql.type(z.object({ ms: z.number().nullable() }))`
      select (extract(epoch from min(greatest(d.next_attempt_at, coalesce(d.claimed_until, d.next_attempt_at))) - now()) * 1000)::float8 as ms
      from notification_deliveries d join notification_sinks s on s.id = d.sink_id and s.enabled
      where d.status = 'pending'
        and not exists (
          select 1 from notification_deliveries e
          where e.sink_id = d.sink_id and e.deployment_id = d.deployment_id
            and e.status = 'pending' and e.event_position < d.event_position)`);
    return due === null ? pollMs : Math.max(0, Math.min(pollMs, due));
  }

  async function run(): Promise<void> {
    while (!stopped) {
      woken = false;
      let waitMs = pollMs;
      try {
        const free = concurrency - inFlight.size;
        if (free > 0) {
          const batch = await claim(free);
          for (const delivery of batch) {
            const job: Promise<void> = attempt(delivery).finally(() => {
              inFlight.delete(job);
              // a finished delivery may unblock the next one of its deployment
              wake();
            });
            inFlight.add(job);
          }
          if (batch.length === free) continue;
        }
        waitMs = await nextDueMs();
      } catch (error) {
        if (stopped) break;
        log.warn({ err: { message: redactSecrets(errorMessage(error)) } }, 'notification dispatcher: claiming failed, retrying');
        waitMs = Math.min(pollMs, 1_000);
      }
      if (woken || stopped) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(waitMs, 10));
        wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeUp = null;
    }
  }

  return {
    async start() {
      if (!stopped) return;
      stopped = false;
      if (options.databaseUrl) {
        listener = createListener(options.databaseUrl, [NOTIFY_CHANNEL]);
        listener.events.on('notification', wake);
        // notifications sent while LISTEN was away are lost: look again
        listener.events.on('connected', wake);
      }
      loop = run();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      wake();
      await loop;
      await Promise.allSettled([...inFlight]);
      await listener?.close();
      listener = null;
    },
    wake,
    stats: () => ({ inFlight: inFlight.size, ...counts }),
  };
}
