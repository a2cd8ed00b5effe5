// The input rules of a sink, as zod schemas (the API) — the same as the CHECK constraints of
// migrations/0006_outbox.sql where SQL can say them, so a SQL-written sink meets the same limits.
import { z } from 'zod';
import { NAME_PATTERN } from '../db/rows.ts';
import { EVENT_TYPE_KINDS, EVENT_TYPES } from './events.ts';
import { RESERVED_HEADERS, SINK_KINDS } from './sinks/sink.ts';

const urlMessage = 'expected an http:// or https:// URL with a host and without user:password@ (put credentials in headers), at most 2048 visible ASCII characters';

export function sinkUrlProblem(url: string): string | null {
  if (url.length < 1 || url.length > 2048 || !/^[\x21-\x7e]+$/.test(url)) return 'not 1-2048 visible ASCII characters';
  if (!/^https?:\/\/[^/?#@:]/i.test(url)) return 'not http(s) with a host';
  if (/^[A-Za-z]+:\/\/[^/?#]*@/.test(url)) return 'carries user:password@';
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'not http(s)';
  } catch {
    return 'not a URL';
  }
  return null;
}

export const SinkUrl = z.string({ error: urlMessage }).superRefine((value, ctx) => {
  const problem = sinkUrlProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: `${urlMessage}: ${problem}` });
});

/** The scheme and host only: what the API shows of a URL (a Slack webhook's path is its secret). */
export function urlHost(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}`;
  } catch {
    return '(invalid)';
  }
}

const secretMessage = 'expected 16-256 visible ASCII characters';
export const SinkSecret = z.string({ error: secretMessage }).regex(/^[\x21-\x7e]{16,256}$/, secretMessage);

// headers keelson sets itself (or that would change what is sent) cannot be configured
const headerMessage = `expected at most 20 headers: names of letters, digits and "-" (not ${[...RESERVED_HEADERS].join(', ')}), values of 1-4096 printable ASCII characters`;
export const SinkHeaders = z
  .record(z.string(), z.string(), { error: headerMessage })
  .superRefine((headers, ctx) => {
    const entries = Object.entries(headers);
    if (entries.length > 20) ctx.addIssue({ code: 'custom', message: headerMessage });
    for (const [name, value] of entries) {
      if (!/^[A-Za-z0-9-]{1,64}$/.test(name) || RESERVED_HEADERS.has(name.toLowerCase()) || !/^[\x20-\x7e]{1,4096}$/.test(value)) {
        ctx.addIssue({ code: 'custom', message: `${headerMessage}; "${name.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)}" is not allowed` });
      }
    }
  })
  .meta({ description: 'Extra request headers (e.g. Authorization). Write-only: responses list their names only.' });

const eventTypeMessage = `expected event types such as deploy.failed, health.degraded or rollback.* (kinds: ${EVENT_TYPE_KINDS.join(', ')}; types: ${EVENT_TYPES.join(', ')})`;
/** An event type keelson writes, or a kind with a wildcard. */
export function isEventTypeFilter(value: string): boolean {
  const wildcard = value.endsWith('.*') && EVENT_TYPE_KINDS.includes(value.slice(0, -2));
  return wildcard || EVENT_TYPES.includes(value);
}
const EventTypePattern = z.string({ error: eventTypeMessage }).refine(isEventTypeFilter, eventTypeMessage);

const nameMessage = 'expected a DNS label: 1-63 lowercase letters, digits or "-"';
const Label = z.string({ error: nameMessage }).regex(NAME_PATTERN, nameMessage);
const filter = (item: z.ZodType<string>, what: string) =>
  z.array(item).min(1).max(100).nullable().meta({ description: `Only these ${what}; null (default): all.` });

export const SinkFields = {
  name: Label,
  kind: z.enum(SINK_KINDS, { error: `expected one of ${SINK_KINDS.join(', ')}` }),
  url: SinkUrl.meta({ description: 'http(s) URL the sink POSTs to. Write-only: responses show its scheme and host only.' }),
  secret: SinkSecret.nullable().meta({ description: 'HMAC-SHA256 key of the X-Keelson-Signature-256 header (required for webhook). Write-only.' }),
  headers: SinkHeaders,
  projects: filter(Label, 'projects'),
  environments: filter(Label, 'environments'),
  event_types: filter(EventTypePattern, 'event types (exact, or kind.*)'),
  enabled: z.boolean(),
};
