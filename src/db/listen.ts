// The resilient LISTEN connection (slonik has none), shared by the runtime (keelson_deployments)
// and the API's transition hub (keelson_transitions). It never gives up: whenever its connection
// fails, ends, or stops answering (a frozen server sends no error; a periodic `select 1` with a
// deadline finds it), the connection is destroyed and re-created with capped, jittered backoff.
// Notifications sent while it was away are gone: every `connected` event (the first one
// included) tells the user to rescan.
import { EventEmitter } from 'node:events';
import pg from 'pg';

export interface ListenerEvents {
  /** LISTENing on every channel (again): notifications sent while away are lost, rescan */
  connected: [];
  /** the connection was lost; `attempt` counts consecutive failures */
  disconnected: [error: Error, attempt: number];
  notification: [channel: string, payload: string];
}

export interface Listener {
  readonly events: EventEmitter<ListenerEvents>;
  isConnected(): boolean;
  /** Resolves at the first successful LISTEN (rejects only if closed before). Connecting continues in the background either way. */
  ready(): Promise<void>;
  /** Stops for good; never waits on an unreachable server for more than `closeTimeoutMs`. */
  close(): Promise<void>;
}

export interface ListenerOptions {
  /** how often an idle connection is probed; 0 disables probing */
  readonly probeIntervalMs?: number;
  /** a probe or a connection attempt that takes longer than this counts as a failure */
  readonly timeoutMs?: number;
  readonly maxBackoffMs?: number;
  readonly closeTimeoutMs?: number;
}

export function backoffMs(attempt: number, maxMs = 5000): number {
  return Math.min(maxMs, 100 * 2 ** Math.min(attempt, 10)) * (0.5 + Math.random() / 2);
}

function destroy(client: pg.Client): void {
  // end() waits for the server's goodbye, which a frozen or partitioned server never sends
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

export function createListener(url: string, channels: readonly string[], options: ListenerOptions = {}): Listener {
  const probeIntervalMs = options.probeIntervalMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 3000;
  const events = new EventEmitter<ListenerEvents>();
  // a listener nobody handles errors for must not crash the process
  events.on('disconnected', () => undefined);
  let client: pg.Client | undefined;
  let connected = false;
  let closed = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let resolveReady: () => void = () => undefined;
  let rejectReady: (error: Error) => void = () => undefined;
  const readyPromise = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  readyPromise.catch(() => undefined);

  function fail(current: pg.Client, error: Error): void {
    if (client !== current) return;
    client = undefined;
    connected = false;
    clearInterval(probeTimer);
    destroy(current);
    current.end().catch(() => undefined);
    if (closed) return;
    attempt += 1;
    events.emit('disconnected', error, attempt);
    retryTimer = setTimeout(connect, backoffMs(attempt, options.maxBackoffMs));
  }

  function connect(): void {
    if (closed) return;
    const current = new pg.Client({
      connectionString: url,
      application_name: 'keelson-listen',
      connectionTimeoutMillis: timeoutMs,
      keepAlive: true,
    });
    client = current;
    current.on('error', (error) => fail(current, error));
    current.on('end', () => fail(current, new Error('LISTEN connection ended')));
    current.on('notification', (message) => {
      if (client === current) events.emit('notification', message.channel, message.payload ?? '');
    });
    void (async () => {
      try {
        await withDeadline(current.connect(), timeoutMs + 500, 'connecting to LISTEN');
        for (const channel of channels) await withDeadline(current.query(`listen ${pg.escapeIdentifier(channel)}`), timeoutMs, 'LISTEN');
        if (client !== current) return;
        if (closed) {
          destroy(current);
          return;
        }
        connected = true;
        attempt = 0;
        if (probeIntervalMs > 0) {
          probeTimer = setInterval(() => {
            withDeadline(current.query('select 1'), timeoutMs, 'LISTEN connection probe').catch((error: unknown) => fail(current, error as Error));
          }, probeIntervalMs);
        }
        resolveReady();
        events.emit('connected');
      } catch (error) {
        fail(current, error as Error);
      }
    })();
  }

  connect();
  return {
    events,
    isConnected: () => connected,
    ready: async () => await readyPromise,
    close: async () => {
      if (closed) return;
      closed = true;
      connected = false;
      clearTimeout(retryTimer);
      clearInterval(probeTimer);
      rejectReady(new Error('listener closed'));
      const current = client;
      client = undefined;
      if (!current) return;
      await withDeadline(current.end(), options.closeTimeoutMs ?? 1000, 'closing LISTEN').catch(() => destroy(current));
    },
  };
}
