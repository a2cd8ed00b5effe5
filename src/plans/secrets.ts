// Secret data leaves keelson only for the cluster. Two helpers for everything else:
// - `secretValues` + `scrubText`: the values of the Secrets being applied (as written, and base64
//   as the API server stores and may echo them), removed from an error message before it becomes
//   a last_error, a history row or a log line (an apply refused with 422 may quote a value).
// - `redactSecretObjects`: any Secret object inside a JSON value (an old snapshot, a diff) with
//   each `data`/`stringData` value replaced by a hash of it, so a reader sees that — and which —
//   keys changed, never the values.
import { createHash } from 'node:crypto';

/** Shorter values are not scrubbed from messages: they would blank out ordinary words and numbers. */
const MIN_SCRUBBED_LENGTH = 4;

export const REDACTED = '[redacted]';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every Secret value among `objects`, plain and base64, longest first. */
export function secretValues(objects: readonly unknown[]): string[] {
  const values = new Set<string>();
  const add = (text: string) => {
    if (text.length >= MIN_SCRUBBED_LENGTH) values.add(text);
  };
  for (const object of objects) {
    if (!isRecord(object) || object.kind !== 'Secret') continue;
    for (const value of Object.values(isRecord(object.data) ? object.data : {})) {
      if (typeof value !== 'string') continue;
      add(value);
      add(Buffer.from(value, 'base64').toString('utf8'));
    }
    for (const value of Object.values(isRecord(object.stringData) ? object.stringData : {})) {
      if (typeof value !== 'string') continue;
      add(value);
      add(Buffer.from(value, 'utf8').toString('base64'));
    }
  }
  return [...values].sort((a, b) => b.length - a.length);
}

/** `text` with every one of `values` replaced by [redacted]. */
export function scrubText(text: string, values: readonly string[]): string {
  let out = text;
  for (const value of values) if (out.includes(value)) out = out.split(value).join(REDACTED);
  return out;
}

function contentHash(value: unknown): string {
  return `sha256:${createHash('sha256').update(typeof value === 'string' ? value : JSON.stringify(value)).digest('hex').slice(0, 16)}`;
}

/** A copy of `value` in which every Secret's data and stringData values are content hashes. */
export function redactSecretObjects(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecretObjects);
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (value.kind === 'Secret' && (key === 'data' || key === 'stringData') && isRecord(child)) {
      out[key] = Object.fromEntries(Object.entries(child).map(([k, v]) => [k, contentHash(v)]));
    } else {
      out[key] = redactSecretObjects(child);
    }
  }
  return out;
}
