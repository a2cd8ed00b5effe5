// Client-side rate limiting of Kubernetes API requests: a token bucket, as client-go's
// flowcontrol.NewTokenBucketRateLimiter (Flux's controllers default to 50 QPS, burst 100).
//
// Why client-side: keelson acts for many deployments at once (a fleet-wide image bump starts
// hundreds of rollouts in the same second); without a limit it would hit the API server's
// priority-and-fairness queues and earn 429s for everyone sharing its flow.
//
// `reserve` is the pure core (time is a parameter); `take` waits for the reserved slot. A reserved
// slot is never handed back, even when the caller aborts while waiting — like golang.org/x/time's
// Reservation without Cancel — which errs on the side of fewer requests.
import { abortError, delay } from './kubeErrors.ts';

export interface RateLimit {
  /** Sustained requests per second. */
  readonly qps: number;
  /** Requests that may be sent at once after an idle period. */
  readonly burst: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { qps: 50, burst: 100 };

export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(limit: RateLimit, now: () => number = Date.now) {
    if (!(limit.qps > 0) || !(limit.burst >= 1)) throw new RangeError(`A rate limit needs qps > 0 and burst ≥ 1; got ${limit.qps} and ${limit.burst}.`);
    this.#qps = limit.qps;
    this.#burst = limit.burst;
    this.#now = now;
    this.#tokens = limit.burst;
    this.#last = now();
  }

  /** Takes a token, possibly one that accrues in the future: how many ms until it may be used. */
  reserve(): number {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens * 1000) / this.#qps);
  }

  /** Resolves when a request may be sent; returns how long it waited, in ms. */
  async take(signal?: AbortSignal): Promise<number> {
    if (signal?.aborted) throw abortError(signal);
    const wait = this.reserve();
    if (wait === 0) return 0;
    await delay(wait, signal);
    return wait;
  }
}
