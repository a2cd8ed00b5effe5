// Fan-out of journaled transitions to SSE clients. ONE listening connection per app on channel
// `keelson_transitions`; a notification is only a hint ({deployment_id, seq}): the hub re-reads
// every row after each client's last seq, so lost, reordered or coalesced notifications cost
// nothing, and a reconnect of the listener is followed by a rescan of every watched deployment.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { createListener, type Listener } from '../db/listen.ts';
import { TransitionRow } from '../db/rows.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { redactSecrets } from './redact.ts';

export const TRANSITIONS_CHANNEL = 'keelson_transitions';

const Notification = z.object({ deployment_id: z.string(), seq: z.number().optional() });

interface Client {
  lastSeq: number;
  readonly send: (row: TransitionRow) => void;
  readonly end: () => void;
}

interface Watched {
  readonly clients: Set<Client>;
  running: boolean;
  again: boolean;
}

export interface TransitionHub {
  /** Resolves once the listener is connected and LISTENing (started on first use). */
  ready(): Promise<void>;
  /** Sends every transition with seq > lastSeq, now and as they are journaled. */
  subscribe(deploymentId: string, lastSeq: number, client: { send: (row: TransitionRow) => void; end: () => void }): () => void;
  /**
   * Hints for every deployment (GET /api/events): called with the deployment id of each
   * notification, and with null after the listener (re)connects, when hints may have been lost
   * and the watcher must rescan. Only hints: the watcher re-reads the rows itself.
   */
  watchAll(onHint: (deploymentId: string | null) => void): () => void;
  close(): Promise<void>;
}

export function createTransitionHub(deps: { db: CommonQueryMethods; databaseUrl: string; log: Logger }): TransitionHub {
  const watched = new Map<string, Watched>();
  const allWatchers = new Set<(deploymentId: string | null) => void>();
  let listener: Listener | undefined;
  let starting: Promise<void> | undefined;
  let closed = false;

  async function deliver(deploymentId: string): Promise<void> {
    const entry = watched.get(deploymentId);
    if (!entry || entry.clients.size === 0) return;
    if (entry.running) {
      entry.again = true;
      return;
    }
    entry.running = true;
    try {
      do {
        entry.again = false;
        const clients = [...entry.clients];
        if (clients.length === 0) break;
        const after = Math.min(...clients.map((c) => c.lastSeq));
        const rows = await deps.db.any(sql.type(TransitionRow)`
          select id, deployment_id, from_state, to_state, event, generation, seq, at, action_id, image_ref, attempt, last_error
          from deployment_transitions
          where deployment_id = ${deploymentId} and seq > ${after}
          order by seq limit 1000`);
        for (const client of clients) {
          for (const row of rows) {
            if (row.seq > client.lastSeq) {
              client.send(row);
              client.lastSeq = row.seq;
            }
          }
        }
        if (rows.length === 1000) entry.again = true;
      } while (entry.again && !closed);
    } catch (error) {
      deps.log.warn({ err: { message: redactSecrets(errorMessage(error)) }, deploymentId }, 'reading transitions for SSE clients failed');
    } finally {
      entry.running = false;
    }
  }

  const deliverAll = () => {
    for (const id of watched.keys()) void deliver(id);
    for (const hint of allWatchers) hint(null);
  };

  async function start(): Promise<void> {
    // the resilient listener of src/db/listen.ts: it re-creates its connection for as long as
    // the hub lives, and says `connected` after every (re)connect, when hints may have been lost
    const subscriber = createListener(deps.databaseUrl, [TRANSITIONS_CHANNEL]);
    listener = subscriber;
    subscriber.events.on('disconnected', (error, attempt) => {
      deps.log.warn({ err: { message: redactSecrets(errorMessage(error)) }, attempt }, 'transition listener lost its connection; reconnecting');
    });
    subscriber.events.on('connected', deliverAll);
    subscriber.events.on('notification', (_channel, payload) => {
      let parsed: z.infer<typeof Notification> | undefined;
      try {
        parsed = Notification.parse(JSON.parse(payload));
      } catch {
        deps.log.warn({ channel: TRANSITIONS_CHANNEL }, 'ignoring a malformed transition notification');
        return;
      }
      void deliver(parsed.deployment_id);
      for (const hint of allWatchers) hint(parsed.deployment_id);
    });
    await subscriber.ready();
  }

  return {
    ready: async () => {
      if (closed) throw new Error('the event stream is shutting down');
      // the first connection is awaited, briefly: the listener keeps trying in the background,
      // and the caller answers 503 meanwhile
      starting ??= start();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          starting,
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error('cannot LISTEN for transitions yet')), 3000);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    subscribe: (deploymentId, lastSeq, handlers) => {
      const client: Client = { lastSeq, send: handlers.send, end: handlers.end };
      let entry = watched.get(deploymentId);
      if (!entry) {
        entry = { clients: new Set(), running: false, again: false };
        watched.set(deploymentId, entry);
      }
      entry.clients.add(client);
      void deliver(deploymentId);
      return () => {
        const current = watched.get(deploymentId);
        current?.clients.delete(client);
        if (current && current.clients.size === 0 && !current.running) watched.delete(deploymentId);
      };
    },
    watchAll: (onHint) => {
      allWatchers.add(onHint);
      return () => allWatchers.delete(onHint);
    },
    close: async () => {
      closed = true;
      allWatchers.clear();
      for (const entry of watched.values()) for (const client of entry.clients) client.end();
      watched.clear();
      // closing the listener first settles a start still waiting for its first connection
      if (listener) {
        const l = listener;
        listener = undefined;
        await l.close().catch(() => undefined);
      }
      await starting?.catch(() => undefined);
    },
  };
}
