// Self-fencing. The heartbeat renews this incarnation's leases on a connection of its own (a
// saturated pool must never delay it), and each success extends, by this process's monotonic
// clock, the instant until which the leases are certainly valid:
//     valid until = when the successful heartbeat was SENT + TTL − safety margin
// PostgreSQL computed the expiry from its own now(), which is later than the send, so this
// instant is before the lease expires by the database's reckoning; the margin covers clock-rate
// differences and the scheduling delay of the fence itself. When the instant passes without a
// newer successful heartbeat, `expired` fires: the runtime aborts every effect in flight and
// drops every actor before any further cluster write. Other processes take the leases only after
// they expire by the database's clock, i.e. after this process has stopped.
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { heartbeat, registerInstance, type HeldLeases, type Heartbeat } from './leases.ts';

export interface LeaseKeeperOptions {
  readonly databaseUrl: string;
  readonly instanceId: string;
  readonly incarnation: string;
  readonly ttlMs: number;
  readonly heartbeatMs: number;
  readonly marginMs: number;
  readonly log: Logger;
}

export interface LeaseKeeper {
  readonly events: EventEmitter<{ expired: [] }>;
  /** Connects and takes the instance id (DuplicateInstanceError when a live process has it). */
  register(): Promise<void>;
  /**
   * One heartbeat; throws when it failed (the validity then runs out on its own). `held`: the
   * leases the caller's actors hold; the renewed ones come back only when they differ.
   */
  beat(held?: HeldLeases): Promise<Heartbeat>;
  /** the monotonic instant (performance.now()) until which the leases are certainly valid */
  validUntil(): number;
  isValid(): boolean;
  /** Ends the validity at once (e.g. when this incarnation was superseded). */
  invalidate(): void;
  close(): Promise<void>;
}

function destroy(client: pg.Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createLeaseKeeper(options: LeaseKeeperOptions): LeaseKeeper {
  const { log } = options;
  const events = new EventEmitter<{ expired: [] }>();
  // a heartbeat slower than this is as good as lost: the next one starts on a fresh connection
  const deadlineMs = Math.max(200, Math.min(options.heartbeatMs * 2, Math.floor(options.ttlMs / 2)));
  let client: pg.Client | undefined;
  let validUntil = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  function discard(current: pg.Client): void {
    if (client === current) client = undefined;
    destroy(current);
    current.end().catch(() => undefined);
  }

  async function connection(): Promise<pg.Client> {
    if (client) return client;
    const current = new pg.Client({
      connectionString: options.databaseUrl,
      application_name: 'keelson-heartbeat',
      connectionTimeoutMillis: deadlineMs,
      keepAlive: true,
    });
    current.on('error', (error) => {
      log.warn({ err: error.message }, 'heartbeat connection failed');
      discard(current);
    });
    current.on('end', () => {
      if (client === current) client = undefined;
    });
    client = current;
    try {
      await withDeadline(current.connect(), deadlineMs + 200, 'connecting for the heartbeat');
      // a new session: the instance lock of the previous one is gone, take it again
      await withDeadline(registerInstance(current, options.instanceId, options.incarnation, options.ttlMs), deadlineMs, 'registering the instance');
    } catch (error) {
      discard(current);
      throw error;
    }
    return current;
  }

  function schedule(): void {
    clearTimeout(timer);
    if (closed) return;
    const left = validUntil - performance.now();
    if (left <= 0) {
      events.emit('expired');
      return;
    }
    timer = setTimeout(() => {
      if (performance.now() >= validUntil) events.emit('expired');
      else schedule();
    }, left);
  }

  return {
    events,
    register: async () => {
      await connection();
    },
    beat: async (held) => {
      const sentAt = performance.now();
      const current = await connection();
      try {
        const result = await withDeadline(
          heartbeat(current, options.instanceId, options.incarnation, options.ttlMs, held),
          deadlineMs,
          'lease heartbeat',
        );
        if (result.registered && !closed) {
          validUntil = Math.max(validUntil, sentAt + options.ttlMs - options.marginMs);
          schedule();
        }
        return result;
      } catch (error) {
        log.warn({ err: errorMessage(error) }, 'lease heartbeat failed; replacing its connection');
        discard(current);
        throw error;
      }
    },
    validUntil: () => validUntil,
    isValid: () => performance.now() < validUntil,
    invalidate: () => {
      validUntil = Number.NEGATIVE_INFINITY;
      schedule();
    },
    close: async () => {
      closed = true;
      clearTimeout(timer);
      const current = client;
      client = undefined;
      if (current) await withDeadline(current.end(), 1000, 'closing the heartbeat connection').catch(() => destroy(current));
    },
  };
}
