// One interface for every kind of sink: a pure function from a stored event (and the sink's
// settings) to the HTTP request to send. The dispatcher does the I/O, the retries and the
// recording; a sink only decides what to say. One file per kind.
import { createHmac } from 'node:crypto';
import type { EventData } from '../events.ts';

export const SINK_KINDS = ['webhook', 'slack', 'registry', 'kubernetes-events'] as const;
export type SinkKind = (typeof SINK_KINDS)[number];
/** Kinds whose delivery is an HTTP request a Sink builds; the others are handed to a deliverer the process wires (kubernetesEvents.ts). */
export type HttpSinkKind = Exclude<SinkKind, 'kubernetes-events'>;

/** The header a signed request carries: `sha256=<hex HMAC-SHA256 of the raw body, keyed by the sink's secret>`. */
export const SIGNATURE_HEADER = 'X-Keelson-Signature-256';
/** The event id again, for receivers that de-duplicate before parsing the body. */
export const EVENT_ID_HEADER = 'X-Keelson-Event-Id';

/** An event as the dispatcher read it from deployment_events. */
export interface StoredEvent {
  readonly id: string;
  readonly type: string;
  readonly project: string;
  readonly environment: string;
  readonly occurredAt: string;
  readonly data: EventData & { readonly project: string; readonly environment: string; readonly namespace?: string };
}

/** What a sink needs of its row (url, secret and headers never leave the process except in the request). */
export interface SinkSettings {
  readonly kind: HttpSinkKind;
  readonly url: string;
  readonly secret: string | null;
  readonly headers: Readonly<Record<string, string>>;
}

export interface SinkContext {
  /** KEELSON_PUBLIC_URL without a trailing slash, when set: links to the visualizer */
  readonly publicUrl: string | null;
}

export interface SinkRequest {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface Sink {
  readonly kind: HttpSinkKind;
  /** null: nothing to send for this event (it is recorded as delivered without a request) */
  build(event: StoredEvent, settings: SinkSettings, context: SinkContext): SinkRequest | null;
}

export function sign(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Headers keelson sets itself, or that would change what is sent: a custom header of these names is dropped. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host', 'content-type', 'content-length', 'transfer-encoding', 'connection', 'user-agent',
  SIGNATURE_HEADER.toLowerCase(), EVENT_ID_HEADER.toLowerCase(),
]);

/**
 * The request of a JSON body. Custom headers named like one keelson sets are dropped (the API
 * refuses them, a SQL writer may not have): fetch would join the two values, not replace one.
 */
export function jsonRequest(event: StoredEvent, settings: SinkSettings, body: unknown, contentType = 'application/json'): SinkRequest {
  const raw = JSON.stringify(body);
  const custom = Object.entries(settings.headers).filter(([name]) => !RESERVED_HEADERS.has(name.toLowerCase()));
  return {
    url: settings.url,
    headers: {
      ...Object.fromEntries(custom),
      'content-type': contentType,
      'user-agent': 'keelson-notify',
      [EVENT_ID_HEADER.toLowerCase()]: event.id,
      ...(settings.secret ? { [SIGNATURE_HEADER.toLowerCase()]: sign(settings.secret, raw) } : {}),
    },
    body: raw,
  };
}

/** The deployment's page in the visualizer, when keelson knows its public address. */
export function visualizerLink(event: StoredEvent, context: SinkContext): string | null {
  return context.publicUrl ? `${context.publicUrl}/ui/deployments/${event.project}/${event.environment}` : null;
}
