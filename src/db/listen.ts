// A dedicated LISTEN connection (slonik has none). pg-listen reconnects on its own; keelson adds
// the rescan after each reconnect, because notifications sent while away are gone.
import pgListen, { type Subscriber } from 'pg-listen';

export type { Subscriber };

// pg-listen is CommonJS with `exports.default`; under Node's ESM interop the function sits one
// level down.
const createSubscriber = ((pgListen as unknown as { default?: typeof pgListen }).default ?? pgListen) as unknown as (
  connectionConfig: { connectionString: string; application_name?: string },
  options?: { parse?: (payload: string) => unknown; retryLimit?: number; retryInterval?: number | ((attempt: number) => number); retryTimeout?: number; paranoidChecking?: number | false },
) => Subscriber;

export function createListener(
  url: string,
  options: { retryTimeoutMs?: number; paranoidCheckingMs?: number | false } = {},
): Subscriber {
  return createSubscriber(
    { connectionString: url, application_name: 'keelson-listen' },
    {
      // payloads are bare ids, not JSON
      parse: (payload) => payload,
      retryLimit: Number.POSITIVE_INFINITY,
      // exponential backoff with jitter, capped at 5 s
      retryInterval: (attempt) => Math.min(5000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2),
      retryTimeout: options.retryTimeoutMs ?? Number.POSITIVE_INFINITY,
      paranoidChecking: options.paranoidCheckingMs ?? 5000,
    },
  );
}
