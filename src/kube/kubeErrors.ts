// Classifies what the Kubernetes API (or the way to it) answered into keelson's error kinds:
// the cluster may come back (transient: network errors, timeouts, 5xx, 429, 408), or the request
// itself is wrong and repeating it cannot help (terminal: 400, 403, 404 for unknown kinds, 409,
// 422). Aborts are neither: they are rethrown as an `AbortError` so the caller's cancellation
// stays recognisable.
import { setTimeout as sleep } from 'node:timers/promises';
import { TerminalError, TransientError } from '../errors.ts';

export const KUBE_UNAVAILABLE = 'kube_unavailable';
export const KUBE_REJECTED = 'kube_rejected';
export const ROLLOUT_FAILED = 'rollout_failed';

export interface KubeStatusBody {
  message?: string;
  reason?: string;
  code?: number;
}

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

/** An error named `AbortError`, as `fetch` and `node:timers/promises` raise. */
export function abortError(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error && reason.name === 'AbortError') return reason;
  const error = new Error(reason instanceof Error ? reason.message : 'The operation was aborted.', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/** Waits `ms`; rejects with `abortError(signal)` as soon as the signal aborts. */
export async function delay(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    throw error;
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/** The HTTP status of an `ApiException` (`code`) or of a failed watch (`statusCode`). */
export function httpStatus(error: unknown): number | undefined {
  // DOMException (TimeoutError, AbortError) has a numeric legacy `code` that is no HTTP status.
  if (!error || typeof error !== 'object' || error instanceof DOMException) return undefined;
  const e = error as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** The Kubernetes `Status` an `ApiException` carries (its body is raw text or parsed JSON). */
export function statusBody(error: unknown): KubeStatusBody | undefined {
  const body = (error as { body?: unknown } | undefined)?.body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() ? { message: body.trim() } : undefined;
    }
  }
  if (!parsed || typeof parsed !== 'object') return undefined;
  const status = parsed as Record<string, unknown>;
  return {
    message: typeof status.message === 'string' ? status.message : undefined,
    reason: typeof status.reason === 'string' ? status.reason : undefined,
    code: typeof status.code === 'number' ? status.code : undefined,
  };
}

function networkCode(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function isTimeout(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    if (current instanceof Error && current.name === 'TimeoutError') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Turns anything a client-node call threw into a `TransientError`, a `TerminalError` or an
 * `AbortError`. `what` names the object or request (`Deployment shop/web`, `list Pods in shop`).
 * `signal` is the caller's: an abort it caused is rethrown as AbortError, while a timeout of our
 * own is transient.
 */
export function classifyKubeError(error: unknown, what: string, signal?: AbortSignal): Error {
  if (signal?.aborted) return abortError(signal);
  if (error instanceof TransientError || error instanceof TerminalError) return error;
  if (isAbortError(error) && !isTimeout(error)) return error as Error;
  const status = httpStatus(error);
  if (status !== undefined) {
    const body = statusBody(error);
    const detail = body?.message ?? body?.reason ?? `HTTP ${status}`;
    if (status >= 500 || status === 429 || status === 408) {
      return new TransientError(`Kubernetes API unavailable for ${what}: ${detail} (HTTP ${status}). Retrying may help.`, {
        code: KUBE_UNAVAILABLE,
        cause: error,
      });
    }
    return new TerminalError(`Kubernetes API rejected ${what}: ${detail} (HTTP ${status}).`, { code: KUBE_REJECTED, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  const code = networkCode(error);
  if (isTimeout(error) || (code && TRANSIENT_CODES.has(code)) || /fetch failed|socket|network|timed? ?out|ECONN/i.test(message)) {
    const why = isTimeout(error) ? 'the request timed out' : code ? `${message} (${code})` : message;
    return new TransientError(`Kubernetes API unreachable for ${what}: ${why}. Retrying may help.`, { code: KUBE_UNAVAILABLE, cause: error });
  }
  if (/Unrecognized API version and kind/.test(message)) {
    return new TerminalError(`Kubernetes API rejected ${what}: ${message}. Is the kind installed on this cluster?`, {
      code: KUBE_REJECTED,
      cause: error,
    });
  }
  // Discovery wraps HTTP errors in a plain Error; anything else unknown is better retried than
  // ignored, but a programming error would loop forever, so it is terminal.
  return new TerminalError(`Kubernetes request for ${what} failed: ${message}`, { code: KUBE_REJECTED, cause: error });
}
