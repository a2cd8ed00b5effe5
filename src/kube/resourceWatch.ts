// A list-then-watch cache of one collection (optionally narrowed by field and label selectors),
// the way kubectl and informers do it: LIST gives the state and a resourceVersion, WATCH from
// that version streams the changes.
//
// Hazards this handles:
// - client-node's Watch aborts a stream after 30 s without data, and servers drop streams at
//   will: when a stream ends we watch again from the last resourceVersion seen.
// - 410 Gone (as an HTTP status or as an ERROR event) means the version is too old: relist.
// - After any failed request we relist too (level-based: never trust that nothing was missed).
// - Transient failures are retried with exponential backoff plus jitter; after `maxFailures`
//   in a row, or on a terminal error, the watch ends and reports the classified error.
// - `Watch.watch()` only hands out its AbortController once the response headers arrived, so
//   `stop()` returns at once and aborts a stream that is still connecting when it connects.
import type { Watch } from '@kubernetes/client-node';
import type { Logger } from '../logger.ts';
import { TerminalError } from '../errors.ts';
import { abortError, classifyKubeError, httpStatus } from './kubeErrors.ts';
import type { KubeObject } from './types.ts';

export interface ListResult {
  items: KubeObject[];
  resourceVersion?: string;
}

export interface ResourceWatchOptions {
  /** `/apis/apps/v1/namespaces/shop/deployments` */
  path: string;
  /** Human name for messages: `Deployment shop/web`, `Pods of Deployment shop/web`. */
  what: string;
  fieldSelector?: string;
  labelSelector?: string;
  /** Filled into objects that lack them (list items on a real server do). */
  apiVersion: string;
  kind: string;
  /** Performs the LIST (through the counted, classified request path). */
  list: (signal: AbortSignal) => Promise<ListResult>;
  watch: Watch;
  log: Logger;
  /** Called with the complete current set after the initial list and after every change. */
  onChange: (items: ReadonlyMap<string, KubeObject>) => void;
  /** Called once when the watch gives up (terminal error, or too many transient failures). */
  onError: (error: Error) => void;
  /** Counts each watch connection in the metrics. */
  onWatchRequest?: (outcome: 'ok' | 'transient' | 'terminal') => void;
  maxFailures?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface ResourceWatchHandle {
  stop(): void;
}

interface WatchEvent {
  type?: string;
  object?: KubeObject & { code?: number; message?: string };
}

function keyOf(obj: KubeObject): string {
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${obj.metadata.name}` : obj.metadata.name;
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

class GoneError extends Error {
  override name = 'GoneError';
}

export function startResourceWatch(options: ResourceWatchOptions): ResourceWatchHandle {
  const controller = new AbortController();
  const signal = controller.signal;
  const maxFailures = options.maxFailures ?? 5;
  const backoffBase = options.backoffBaseMs ?? 200;
  const backoffMax = options.backoffMaxMs ?? 5_000;
  const items = new Map<string, KubeObject>();
  let streamAbort: (() => void) | undefined;

  const watchOnce = (resourceVersion: string | undefined, onEvent: (rv: string | undefined) => void): Promise<void> =>
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
            onEvent(rv);
            return;
          }
          if (!object.metadata?.name) return;
          if (type === 'DELETED') items.delete(keyOf(object));
          else items.set(keyOf(object), { ...object, apiVersion: object.apiVersion || options.apiVersion, kind: object.kind || options.kind });
          onEvent(rv);
          options.onChange(items);
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
      try {
        if (needList) {
          const listed = await options.list(signal);
          items.clear();
          for (const item of listed.items) items.set(keyOf(item), item);
          resourceVersion = listed.resourceVersion;
          needList = false;
          failures = 0;
          options.onChange(items);
        }
        const startedAt = Date.now();
        await watchOnce(resourceVersion, (rv) => {
          if (rv) resourceVersion = rv;
          failures = 0;
        });
        options.onWatchRequest?.('ok');
        // A server that closes every stream at once must not make this a tight loop.
        if (Date.now() - startedAt < 1_000) await delay(backoffBase, signal);
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof GoneError) {
          options.log.debug({ path: options.path }, 'watch expired (410), relisting');
          options.onWatchRequest?.('ok');
          needList = true;
          continue;
        }
        const classified = classifyKubeError(error, `watch of ${options.what}`);
        const terminal = classified instanceof TerminalError;
        if (!needList) options.onWatchRequest?.(terminal ? 'terminal' : 'transient');
        failures += 1;
        if (terminal || failures >= maxFailures) {
          controller.abort();
          options.onError(classified);
          return;
        }
        const backoff = Math.min(backoffMax, backoffBase * 2 ** (failures - 1));
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
    stop: () => {
      controller.abort();
      streamAbort?.();
    },
  };
}
