// The simulator's record of every HTTP request it served: who asked (authenticated user and the
// `X-Keelson-Client` header), what (Kubernetes verb, group, resource, subresource, namespace,
// name) and the answer's status code. Tests read it to check invariants such as "no process
// writes to the cluster after its lease expired".
//
// Cost matters: a fleet of 1,000 deployments makes thousands of requests a second, so a record is
// one small object written into a preallocated ring (the newest `capacity` records), plus one Map
// increment in counters that are never evicted — counts stay exact however long the run.

import type { Logger } from '../logger.ts';

export interface RequestRecord {
  /** Wall-clock ms (Date.now()) when the server acted on the request (after injected latency). */
  readonly at: number;
  /** The authenticated user; "" when authentication failed (code 401). */
  readonly user: string;
  readonly groups?: readonly string[];
  /** The `X-Keelson-Client` request header; absent when the client sent none. */
  readonly client?: string;
  /** Kubernetes' verb (get, list, watch, create, update, patch, delete, deletecollection), or the lower-cased HTTP method for non-resource requests. */
  readonly verb: string;
  readonly apiGroup: string;
  /** "" for non-resource requests (discovery, /version, /openapi…), which carry `path` instead. */
  readonly resource: string;
  readonly subresource?: string;
  readonly namespace?: string;
  readonly name?: string;
  readonly path?: string;
  /** Set for `dryRun=All` writes, which change nothing. */
  readonly dryRun?: true;
  readonly code: number;
}

/** The verbs that change cluster state (when not a dry run). */
export const WRITE_VERBS: readonly string[] = ['create', 'update', 'patch', 'delete', 'deletecollection'];

export function isWrite(record: RequestRecord): boolean {
  return WRITE_VERBS.includes(record.verb) && record.resource !== '' && !record.dryRun;
}

/** Every given field must match; a `verb` list matches any of its verbs. */
export interface RequestFilter {
  user?: string;
  client?: string;
  verb?: string | readonly string[];
  apiGroup?: string;
  resource?: string;
  subresource?: string;
  code?: number;
}

/** A filter of records: the counter fields plus where, and from when. */
export interface RecordFilter extends RequestFilter {
  namespace?: string;
  name?: string;
  /** Only records with `at >= since`. */
  since?: number;
}

export interface RequestCounter {
  readonly user: string;
  readonly client?: string;
  readonly verb: string;
  readonly apiGroup: string;
  readonly resource: string;
  readonly subresource?: string;
  readonly code: number;
  count: number;
}

export type RequestListener = (record: RequestRecord) => void;

export const DEFAULT_REQUEST_LOG_CAPACITY = 100_000;

function matches(r: RequestCounter | RequestRecord, f: RequestFilter): boolean {
  if (f.user !== undefined && r.user !== f.user) return false;
  if (f.client !== undefined && r.client !== f.client) return false;
  if (f.verb !== undefined && (typeof f.verb === 'string' ? r.verb !== f.verb : !f.verb.includes(r.verb))) return false;
  if (f.apiGroup !== undefined && r.apiGroup !== f.apiGroup) return false;
  if (f.resource !== undefined && r.resource !== f.resource) return false;
  if (f.subresource !== undefined && (r.subresource ?? '') !== f.subresource) return false;
  if (f.code !== undefined && r.code !== f.code) return false;
  return true;
}

export class RequestLog {
  readonly capacity: number;
  private readonly ring: (RequestRecord | undefined)[];
  private next = 0;
  private recorded = 0;
  private readonly counters = new Map<string, RequestCounter>();
  private readonly listeners = new Set<RequestListener>();
  private readonly log: Logger | undefined;

  constructor(options: { capacity?: number; log?: Logger } = {}) {
    this.capacity = Math.max(1, options.capacity ?? DEFAULT_REQUEST_LOG_CAPACITY);
    this.ring = new Array<RequestRecord | undefined>(this.capacity);
    this.log = options.log;
  }

  /** Requests recorded since start or the last reset(), including those the ring no longer holds. */
  get total(): number {
    return this.recorded;
  }

  /** Records the ring has overwritten since start or the last reset(). */
  get evicted(): number {
    return Math.max(0, this.recorded - this.capacity);
  }

  record(record: RequestRecord): void {
    this.ring[this.next] = record;
    this.next = (this.next + 1) % this.capacity;
    this.recorded++;
    const key = `${record.user}\0${record.client ?? ''}\0${record.verb}\0${record.apiGroup}\0${record.resource}\0${record.subresource ?? ''}\0${record.code}`;
    const counter = this.counters.get(key);
    if (counter) counter.count++;
    else {
      this.counters.set(key, {
        user: record.user,
        ...(record.client !== undefined ? { client: record.client } : {}),
        verb: record.verb,
        apiGroup: record.apiGroup,
        resource: record.resource,
        ...(record.subresource ? { subresource: record.subresource } : {}),
        code: record.code,
        count: 1,
      });
    }
    for (const listener of this.listeners) {
      // A throwing listener must not break the request it observes (nor the other listeners).
      try {
        listener(record);
      } catch (error) {
        this.log?.error({ err: error }, 'simulator request listener failed');
      }
    }
  }

  /** The records the ring still holds, oldest first, optionally filtered. */
  records(filter: RecordFilter = {}): RequestRecord[] {
    const out: RequestRecord[] = [];
    const held = Math.min(this.recorded, this.capacity);
    const start = (this.next - held + this.capacity) % this.capacity;
    for (let i = 0; i < held; i++) {
      const r = this.ring[(start + i) % this.capacity]!;
      if (!matches(r, filter)) continue;
      if (filter.namespace !== undefined && (r.namespace ?? '') !== filter.namespace) continue;
      if (filter.name !== undefined && (r.name ?? '') !== filter.name) continue;
      if (filter.since !== undefined && r.at < filter.since) continue;
      out.push(r);
    }
    return out;
  }

  /** Exact count of matching requests since start or reset(), whatever the ring evicted. */
  count(filter: RequestFilter = {}): number {
    let n = 0;
    for (const c of this.counters.values()) if (matches(c, filter)) n += c.count;
    return n;
  }

  /** One row per distinct (user, client, verb, group, resource, subresource, code). */
  countersSnapshot(): RequestCounter[] {
    return [...this.counters.values()].map((c) => ({ ...c }));
  }

  /** Calls `listener` synchronously for every request from now on; returns the unsubscribe. */
  on(event: 'request', listener: RequestListener): () => void {
    if (event !== 'request') throw new Error(`simulator request log: unknown event "${String(event)}"; the only event is "request"`);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forgets every record and count (listeners stay subscribed). */
  reset(): void {
    this.ring.fill(undefined);
    this.next = 0;
    this.recorded = 0;
    this.counters.clear();
  }
}
