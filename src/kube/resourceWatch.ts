// A list-then-watch mirror of one collection (optionally narrowed by label and field selectors),
// the way informers do it: LIST gives the state and a resourceVersion, WATCH from that version
// streams the changes. The mirror is the `items` map; every change is reported as it happens.
//
// Hazards this handles:
// - client-node's Watch aborts a stream after 30 s without data, and servers drop streams at
//   will: when a stream ends we watch again from the last resourceVersion seen (bookmarks keep
//   it fresh), without a LIST.
// - 410 Gone (as an HTTP status or as an ERROR event) means the version is too old: relist, and
//   report the difference between the old mirror and the new list as changes.
// - After any failed request we relist too (level-based: never trust that nothing was missed).
// - Failures are retried with exponential backoff plus jitter, for ever unless `maxFailures` is
//   given; each failure is reported (`onFailure`) so waiters can give up while the watch retries.
// - `Watch.watch()` only hands out its AbortController once the response headers arrived, so
//   `stop()` returns at once and aborts a stream that is still connecting when it connects.
import type { Watch } from '@kubernetes/client-node';
import { TerminalError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import { abortError, classifyKubeError, delay, httpStatus } from './kubeErrors.ts';
import type { KubeObject } from './types.ts';

export interface ListResult {
  items: KubeObject[];
  resourceVersion?: string;
}

export interface WatchChange {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object now (for DELETED: as last seen). */
  readonly object: KubeObject;
  /** The object before the change, when the mirror held it. */
  readonly previous?: KubeObject;
}

/** Why a watch connection was opened again: its stream ended, its version expired, or it failed. */
export type RestartReason = 'closed' | 'expired' | 'failed';

export interface ResourceWatchOptions {
  /** `/apis/apps/v1/deployments` (all namespaces) or `/apis/apps/v1/namespaces/shop/deployments` */
  path: string;
  /** Human name for messages: `Deployments managed by keelson`. */
  what: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Filled into objects that lack them (list items on a real server do). */
  apiVersion: string;
  kind: string;
  /** Performs the LIST (through the counted, classified, rate-limited request path). */
  list: (signal: AbortSignal) => Promise<ListResult>;
  watch: Watch;
  /** Awaited before each watch connection (the client-side rate limiter). */
  beforeWatch?: (signal: AbortSignal) => Promise<unknown>;
  /** Trims each object before it is kept (memory: keep only what decisions need). */
  trim?: (object: KubeObject) => KubeObject;
  log: Logger;
  /** Called with the changes after every LIST (the first one included) and every event. */
  onChanges: (changes: readonly WatchChange[]) => void;
  /** Called after every successful LIST: the mirror is complete. */
  onSynced?: () => void;
  /** Called on every failure with the classified error and the count of failures in a row. */
  onFailure?: (error: Error, failures: number) => void;
  /** Called once when the watch gives up after `maxFailures` failures in a row. */
  onGiveUp?: (error: Error) => void;
  /** Counts each watch request in the metrics: `ok` once connected, else how it failed. */
  onWatchRequest?: (outcome: 'ok' | 'transient' | 'terminal') => void;
  onRestart?: (reason: RestartReason) => void;
  /** Failures in a row after which the watch ends; unlimited by default. */
  maxFailures?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface ResourceWatchHandle {
  readonly items: ReadonlyMap<string, KubeObject>;
  stop(): void;
}

interface WatchEvent {
  type?: string;
  object?: KubeObject & { code?: number; message?: string };
}

export function mirrorKey(obj: { metadata: { name: string; namespace?: string } }): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

class GoneError extends Error {
  override name = 'GoneError';
}

export function startResourceWatch(options: ResourceWatchOptions): ResourceWatchHandle {
  const controller = new AbortController();
  const signal = controller.signal;
  const maxFailures = options.maxFailures ?? Number.POSITIVE_INFINITY;
  const backoffBase = options.backoffBaseMs ?? 200;
  // Capped low: while a watch is down its kind's part of the cache is stale, and rollouts wait.
  const backoffMax = options.backoffMaxMs ?? 10_000;
  const trim = options.trim ?? ((object: KubeObject) => object);
  const items = new Map<string, KubeObject>();
  let streamAbort: (() => void) | undefined;

  const complete = (object: KubeObject): KubeObject =>
    trim({ ...object, apiVersion: object.apiVersion || options.apiVersion, kind: object.kind || options.kind });

  /** Replaces the mirror with a fresh list, reporting what changed. */
  const replace = (listed: KubeObject[]) => {
    const changes: WatchChange[] = [];
    const fresh = new Map<string, KubeObject>();
    for (const raw of listed) {
      const object = complete(raw);
      const key = mirrorKey(object);
      fresh.set(key, object);
      const previous = items.get(key);
      if (!previous) changes.push({ type: 'ADDED', object });
      else if (previous.metadata.resourceVersion !== object.metadata.resourceVersion) changes.push({ type: 'MODIFIED', object, previous });
    }
    for (const [key, previous] of items) if (!fresh.has(key)) changes.push({ type: 'DELETED', object: previous, previous });
    items.clear();
    for (const [key, object] of fresh) items.set(key, object);
    options.onChanges(changes);
  };

  const watchOnce = (resourceVersion: string | undefined, onVersion: (rv: string | undefined) => void, onConnected: () => void): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      let settled = false;
      const onAbort = () => finish(abortError(signal));
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve();
      };
      const query: Record<string, string | boolean | undefined> = {
        allowWatchBookmarks: true,
        resourceVersion,
        fieldSelector: options.fieldSelector,
        labelSelector: options.labelSelector,
      };
      const started = options.watch.watch(
        options.path,
        query,
        (type: string, object: WatchEvent['object']) => {
          if (settled || !object) return;
          if (type === 'ERROR') {
            // The server reports an expired resourceVersion as an ERROR event carrying a Status.
            if (object.code === 410) finish(new GoneError(object.message ?? 'resourceVersion too old'));
            else finish(Object.assign(new Error(object.message ?? 'watch error'), { statusCode: object.code }));
            return;
          }
          const rv = typeof object.metadata?.resourceVersion === 'string' ? object.metadata.resourceVersion : undefined;
          if (type === 'BOOKMARK') {
            onVersion(rv);
            return;
          }
          if (!object.metadata?.name) return;
          const current = complete(object);
          const key = mirrorKey(current);
          const previous = items.get(key);
          onVersion(rv);
          if (type === 'DELETED') {
            items.delete(key);
            options.onChanges([{ type: 'DELETED', object: current, previous }]);
          } else {
            items.set(key, current);
            options.onChanges([{ type: previous ? 'MODIFIED' : 'ADDED', object: current, previous }]);
          }
        },
        (error: unknown) => {
          if (!error) return finish();
          // client-node's own 30 s inactivity abort: the stream was merely idle.
          if (error instanceof Error && error.name === 'TimeoutError') return finish();
          if (httpStatus(error) === 410) return finish(new GoneError('resourceVersion too old'));
          finish(error);
        },
      );
      started.then(
        (abortController) => {
          streamAbort = () => abortController.abort();
          if (signal.aborted) abortController.abort();
          // client-node resolves once the response arrived; a refused watch has settled by then.
          if (!settled) onConnected();
        },
        (error: unknown) => finish(error),
      );
      signal.addEventListener('abort', onAbort, { once: true });
    });

  const run = async () => {
    let resourceVersion: string | undefined;
    let needList = true;
    let failures = 0;
    while (!signal.aborted) {
      let connected = false;
      try {
        if (needList) {
          const listed = await options.list(signal);
          replace(listed.items);
          resourceVersion = listed.resourceVersion;
          needList = false;
          failures = 0;
          options.onSynced?.();
        }
        await options.beforeWatch?.(signal);
        const startedAt = Date.now();
        await watchOnce(
          resourceVersion,
          (rv) => {
            if (rv) resourceVersion = rv;
            failures = 0;
          },
          () => {
            connected = true;
            options.onWatchRequest?.('ok');
          },
        );
        options.onRestart?.('closed');
        // A server that closes every stream at once must not make this a tight loop.
        if (Date.now() - startedAt < 1_000) await delay(backoffBase, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof GoneError) {
          options.log.debug({ path: options.path }, 'watch expired (410), relisting');
          if (!connected) options.onWatchRequest?.('ok'); // answered, with 410
          options.onRestart?.('expired');
          needList = true;
          continue;
        }
        const classified = classifyKubeError(error, `watch of ${options.what}`);
        if (!needList) {
          if (!connected) options.onWatchRequest?.(classified instanceof TerminalError ? 'terminal' : 'transient');
          options.onRestart?.('failed');
        }
        failures += 1;
        options.onFailure?.(classified, failures);
        if (failures >= maxFailures) {
          controller.abort();
          options.onGiveUp?.(classified);
          return;
        }
        const backoff = Math.min(backoffMax, backoffBase * 2 ** Math.min(failures - 1, 20));
        options.log.debug({ path: options.path, failures, err: classified.message }, 'watch failed, retrying');
        needList = true;
        try {
          await delay(backoff / 2 + Math.random() * (backoff / 2), signal);
        } catch {
          return;
        }
      }
    }
  };

  void run();
  return {
    items,
    stop: () => {
      controller.abort();
      streamAbort?.();
    },
  };
}
