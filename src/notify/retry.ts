// When a failed delivery is tried again, or given up. Pure (randomness and the clock passed in),
// table-tested. Exponential backoff with "equal jitter" (half the delay fixed, half random) so
// that many deliveries failing together (a receiver restarting) do not retry in lockstep; the
// last try is made at the horizon itself, and a failure at or after the horizon is final.
//
// A receiver that answers 429 or 503 with `Retry-After` is not tried again sooner than it asks:
// the wait becomes the longer of the backoff and its Retry-After. What it asks is not trusted
// blindly: a value that is neither delta-seconds nor an HTTP-date is ignored, and none can push
// the wait past the policy's maxMs or the delivery past its horizon.

export interface RetryPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  /** KEELSON_NOTIFY_HORIZON: how long after the event a delivery is still tried */
  readonly horizonMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { baseMs: 1_000, maxMs: 3_600_000, horizonMs: 86_400_000 };

export type AfterFailure = { readonly dead: true } | { readonly dead: false; readonly delayMs: number };

/** The answers whose Retry-After is honoured (RFC 9110 §10.2.3, RFC 6585 §4). */
export const RETRY_AFTER_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * @param attempts attempts made so far, the failed one included (1 after the first failure)
 * @param ageMs how long ago the delivery was created (by the database's clock)
 * @param retryAfterMs what the receiver asked for (parseRetryAfter), if anything
 */
export function afterFailure(policy: RetryPolicy, attempts: number, ageMs: number, random: () => number = Math.random, retryAfterMs?: number): AfterFailure {
  const left = policy.horizonMs - ageMs;
  if (left <= 0) return { dead: true };
  const exponential = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(attempts - 1, 0), 40));
  const backoff = exponential / 2 + random() * (exponential / 2);
  // a floor from the receiver, itself capped: a year's Retry-After waits maxMs, not a year
  const asked = retryAfterMs !== undefined && retryAfterMs > 0 ? Math.min(retryAfterMs, policy.maxMs) : 0;
  return { dead: false, delayMs: Math.round(Math.min(Math.max(backoff, asked), left)) };
}

const DAYS = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAYS = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must accept
const IMF_FIXDATE = new RegExp(`^${DAYS}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAYS}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAYS} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);
/** delta-seconds is 1*DIGIT; longer than this is "for ever" (and capped by the policy anyway) */
const MAX_DELTA_SECONDS = 2 ** 31;

function utc(year: number, month: string, day: number, hour: number, minute: number, second: number): number | undefined {
  if (hour > 23 || minute > 59 || second > 60 || day < 1) return undefined;
  const ms = Date.UTC(year, MONTHS.indexOf(month), day, hour, minute, Math.min(second, 59));
  // 31 Feb is no date: Date.UTC would roll it into March
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** An HTTP-date in any of its three forms, in ms since the epoch; undefined when it is none. `nowMs` dates RFC 850's two-digit years. */
export function parseHttpDate(value: string, nowMs: number): number | undefined {
  let m = IMF_FIXDATE.exec(value);
  if (m) return utc(Number(m[3]), m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  m = RFC850_DATE.exec(value);
  if (m) {
    // a two-digit year more than 50 years ahead is the most recent past year ending so (§5.6.7)
    const thisYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    return utc(year, m[2]!, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  m = ASCTIME_DATE.exec(value);
  if (m) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), Number(m[3]), Number(m[4]), Number(m[5]));
  return undefined;
}

/**
 * A Retry-After header as a wait in ms from `nowMs`: delta-seconds, or an HTTP-date (a past date
 * is 0: try again now). undefined when absent or neither (a negative number, a fraction, text).
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Math.min(Number(text), MAX_DELTA_SECONDS) * 1000;
  const at = parseHttpDate(text, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}
