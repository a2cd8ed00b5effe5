// Server-Sent Event streams and their limits, shared by every SSE route. A stream holds a socket,
// a heartbeat timer and a share of the transition hub for as long as the client likes, so:
// - at most `perToken` streams per token and `total` per process; the next one is refused with
//   429 before it costs anything (Retry-After tells the client when to try again);
// - a client that stops reading is disconnected once `maxBufferBytes` are queued for it
//   (res.writableLength: what the socket has not taken yet), instead of buffering without end.
//   Nothing is lost: it reconnects with Last-Event-ID and the rows are replayed from the table.
// Heartbeats are skipped while the socket is backed up (they would only add to the queue).
import type express from 'express';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { ApiError } from './httpErrors.ts';
import type { Principal } from './tokens.ts';

export interface StreamLimits {
  /** KEELSON_SSE_MAX_PER_TOKEN (default 10). */
  readonly perToken: number;
  /** KEELSON_SSE_MAX (default 1,000). */
  readonly total: number;
  /** Bytes queued for one client before it is disconnected (default 1 MiB). */
  readonly maxBufferBytes: number;
  /** Interval of `: heartbeat` comments (default 15 s). */
  readonly heartbeatMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { perToken: 10, total: 1000, maxBufferBytes: 1024 * 1024, heartbeatMs: 15_000 };

export interface EventStream {
  /** Queues `chunk` (whole SSE lines); a no-op once the stream ended. */
  write(chunk: string): void;
  readonly ended: () => boolean;
  end(): void;
}

export interface EventStreams {
  /**
   * Takes a slot for the principal's token, or throws 429 `too_many_streams`. Call it before any
   * other work; the slot is released when the stream ends (or by `release` if it never opens).
   */
  reserve(principal: Principal | null): { open(req: express.Request, res: express.Response, onEnd: () => void): EventStream; release(): void };
  /** Ends every stream (the app is closing). */
  closeAll(): void;
  /** Streams open now. */
  readonly count: () => number;
}

function streamMetrics(metrics: Metrics) {
  const registry = metrics.registry;
  const open =
    (registry.getSingleMetric('keelson_sse_streams') as Gauge | undefined) ??
    new Gauge({ name: 'keelson_sse_streams', help: 'Server-Sent Event streams open now.', registers: [registry] });
  const refused =
    (registry.getSingleMetric('keelson_sse_refused_total') as Counter<'limit'> | undefined) ??
    new Counter({ name: 'keelson_sse_refused_total', help: 'SSE streams refused, by the limit that was reached (token, total).', labelNames: ['limit'], registers: [registry] });
  const slow =
    (registry.getSingleMetric('keelson_sse_slow_disconnects_total') as Counter | undefined) ??
    new Counter({ name: 'keelson_sse_slow_disconnects_total', help: 'SSE clients disconnected because they did not read what was sent.', registers: [registry] });
  return { open, refused, slow };
}

export function createEventStreams(deps: { limits: StreamLimits; metrics: Metrics; log: Logger }): EventStreams {
  const { limits, log } = deps;
  const m = streamMetrics(deps.metrics);
  const perToken = new Map<string, number>();
  const ends = new Set<() => void>();
  let reserved = 0;

  const refuse = (limit: 'token' | 'total', message: string) => {
    m.refused.inc({ limit });
    return new ApiError(429, 'too_many_streams', message, { headers: { 'Retry-After': '10' } });
  };

  return {
    reserve(principal) {
      const key = principal?.tokenId ?? 'anonymous';
      if (reserved >= limits.total) {
        throw refuse('total', `This server has ${limits.total} event streams open, its limit; retry later, or close streams you no longer read.`);
      }
      if ((perToken.get(key) ?? 0) >= limits.perToken) {
        throw refuse('token', `Token "${principal?.name ?? 'anonymous'}" already has ${limits.perToken} event streams open, its limit; close one first (each stream can carry every deployment: GET /api/events).`);
      }
      reserved += 1;
      perToken.set(key, (perToken.get(key) ?? 0) + 1);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        reserved -= 1;
        const left = (perToken.get(key) ?? 1) - 1;
        if (left === 0) perToken.delete(key);
        else perToken.set(key, left);
      };
      return {
        release,
        open(req, res, onEnd) {
          res.status(200);
          res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
          res.setHeader('Cache-Control', 'no-cache, no-transform');
          res.setHeader('Connection', 'keep-alive');
          res.setHeader('X-Accel-Buffering', 'no');
          res.flushHeaders();
          req.socket.setNoDelay(true);
          m.open.inc();
          let ended = false;
          const end = () => {
            if (ended) return;
            ended = true;
            clearInterval(heartbeat);
            ends.delete(end);
            m.open.dec();
            release();
            onEnd();
            res.end();
          };
          const write = (chunk: string) => {
            if (ended) return;
            res.write(chunk);
            if (res.writableLength > limits.maxBufferBytes) {
              m.slow.inc();
              log.info({ path: req.path, queuedBytes: res.writableLength }, 'disconnecting an event stream client that does not read');
              end();
              // the queued bytes would otherwise wait on a client that does not read
              res.destroy();
            }
          };
          const heartbeat = setInterval(() => {
            if (!res.writableNeedDrain) write(': heartbeat\n\n');
          }, limits.heartbeatMs);
          ends.add(end);
          res.on('close', end);
          write('retry: 2000\n: connected\n\n');
          return { write, end, ended: () => ended };
        },
      };
    },
    closeAll() {
      for (const end of [...ends]) end();
    },
    count: () => ends.size,
  };
}
