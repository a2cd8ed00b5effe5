// Tables that grow with use are pruned: idempotency keys after KEELSON_IDEMPOTENCY_TTL (24 h),
// audit rows after KEELSON_RETAIN_AUDIT, transitions after KEELSON_RETAIN_TRANSITIONS but never a
// deployment's newest ones (the visualizer's timeline), and outbox events with their deliveries
// after KEELSON_RETAIN_TRANSITIONS once none is pending. deployment_history is kept: it is the
// record of what ran. Every replica runs the pruner; batches are small, committed one by one and
// skip rows another replica holds, so nothing waits on a long lock.
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Db } from '../db/pool.ts';
import { pruneAuditLog, pruneEvents, pruneIdempotencyKeys, pruneTransitions } from './sql/pruneExpired.ts';

export interface RetentionPeriods {
  readonly idempotencyMs: number;
  readonly auditMs: number;
  readonly transitionsMs: number;
  /** Transitions kept per deployment whatever their age. */
  readonly keepTransitions: number;
}

export const DEFAULT_RETENTION: RetentionPeriods = {
  idempotencyMs: 24 * 3_600_000,
  auditMs: 365 * 86_400_000,
  transitionsMs: 30 * 86_400_000,
  keepTransitions: 100,
};

export interface RetentionCounts {
  readonly idempotencyKeys: number;
  readonly auditRows: number;
  readonly transitions: number;
  /** outbox events (with their deliveries and attempts) */
  readonly events: number;
}

export interface Retention {
  /** One pass over every table, batch after batch, until each is done or `maxBatches` ran. */
  runOnce(): Promise<RetentionCounts>;
  start(): void;
  stop(): Promise<void>;
}

export function createRetention(deps: {
  db: Db;
  log: Logger;
  periods?: Partial<RetentionPeriods>;
  /** Between passes; default 10 min, first pass after a random part of it (replicas spread out). */
  intervalMs?: number;
  batchSize?: number;
  maxBatches?: number;
}): Retention {
  const periods = { ...DEFAULT_RETENTION, ...deps.periods };
  const intervalMs = deps.intervalMs ?? 600_000;
  const batch = deps.batchSize ?? 1000;
  const maxBatches = deps.maxBatches ?? 100;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;

  const drain = async (prune: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (let i = 0; i < maxBatches && !stopped; i++) {
      const n = await prune();
      total += n;
      if (n < batch) break;
    }
    return total;
  };

  const runOnce = async (): Promise<RetentionCounts> => {
    const counts = {
      idempotencyKeys: await drain(() => pruneIdempotencyKeys(deps.db, periods.idempotencyMs, batch)),
      auditRows: await drain(() => pruneAuditLog(deps.db, periods.auditMs, batch)),
      transitions: await drain(() => pruneTransitions(deps.db, periods.transitionsMs, periods.keepTransitions, batch)),
      events: await drain(() => pruneEvents(deps.db, periods.transitionsMs, batch)),
    };
    if (counts.idempotencyKeys + counts.auditRows + counts.transitions + counts.events > 0) deps.log.info(counts, 'pruned expired rows');
    return counts;
  };

  const schedule = (delay: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = runOnce()
        .catch((error: unknown) => deps.log.warn({ err: { message: errorMessage(error) } }, 'pruning expired rows failed; retried at the next pass'))
        .finally(() => schedule(intervalMs));
    }, delay);
    timer.unref();
  };

  return {
    runOnce,
    start: () => schedule(Math.floor(Math.random() * intervalMs)),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
