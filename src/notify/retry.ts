// When a failed delivery is tried again, or given up. Pure (randomness passed in), table-tested.
// Exponential backoff with "equal jitter" (half the delay fixed, half random) so that many
// deliveries failing together (a receiver restarting) do not retry in lockstep; the last try is
// made at the horizon itself, and a failure at or after the horizon is final.

export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  /** KEELSON_NOTIFY_HORIZON: how long after the event a delivery is still tried */
  readonly horizonMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 1_000, maxMs: 3_600_000, horizonMs: 86_400_000 };

export type AfterFailure = { readonly dead: true } | { readonly dead: false; readonly delayMs: number };

/**
 * @param attempts attempts made so far, the failed one included (1 after the first failure)
 * @param ageMs how long ago the delivery was created (by the database's clock)
 */
export function afterFailure(policy: RetryPolicy, attempts: number, ageMs: number, random: () => number = Math.random): AfterFailure {
  const left = policy.horizonMs - ageMs;
  if (left <= 0) return { dead: true };
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40));
  const delay = exponential / 2 + random() * (exponential / 2);
  return { dead: false, delayMs: Math.round(Math.min(delay, left)) };
}
