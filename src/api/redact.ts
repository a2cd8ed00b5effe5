// Git credentials live in ops repo URLs (https://user:token@host/...). They are stored because
// git needs them, and removed from everything that leaves the process: responses, logs, audit.
import { REDACTED } from '../plans/secrets.ts';
import { redactValues } from '../releases/values.ts';

/** `https://user:secret@host` → `https://user:***@host`; `https://token@host` → `https://***@host`. */
export function redactUrlCredentials(url: string): string {
  return url.replace(
    /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/@?#]*)@/,
    (_match, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':');
      if (colon >= 0) return `${scheme}${userinfo.slice(0, colon)}:***@`;
      // a lone user name over http(s) is usually a token (https://ghp_xxx@github.com)
      return /^https?:\/\//i.test(scheme) ? `${scheme}***@` : `${scheme}${userinfo}@`;
    },
  );
}

/** Redacts credentials of every URL inside free text (error messages from git, pg, ...). */
export function redactSecrets(text: string): string {
  return text
    .replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/@?#'"]*:)[^\s/@'"]*@/g, '$1$2***@')
    .replace(/(https?:\/\/)[^\s/:@'"]+@/gi, '$1***@')
    .replace(/kls_[A-Za-z0-9_-]{20,}/g, 'kls_***');
}

/** A history row's error as served: redacted again, since a SQL writer may have stored anything. */
export function redactHistoryError<T extends { error?: string | null | undefined }>(row: T): T {
  return typeof row.error === 'string' ? { ...row, error: redactSecrets(row.error) } : row;
}

/** A row's `last_error` as served, for the same reason. */
export function redactLastError<T extends { last_error?: string | null | undefined }>(row: T): T {
  return typeof row.last_error === 'string' ? { ...row, last_error: redactSecrets(row.last_error) } : row;
}

/** Keys under which the actor keeps a deployment's values_override (context.desired, deployed). */
const VALUES_KEY = /^values_?override$/i;
/** Secrets shorter than this are not searched for inside free text: they would mangle it. */
const MIN_SECRET_IN_TEXT = 6;

/**
 * A persisted snapshot as served: every values_override inside it redacted as values_redacted is
 * (secret-looking keys → "[redacted]"), also where the override sits serialized inside a string
 * (the deployed spec), and those secret strings removed from any other string. values_override
 * itself is kept in the row to render again; a deploy:read reader gets the redacted copy.
 */
export function redactSnapshotValues(snapshot: unknown): unknown {
  const secrets = new Set<string>();
  const collect = (original: unknown, redacted: unknown): void => {
    if (redacted === REDACTED && (typeof original === 'string' || typeof original === 'number')) secrets.add(String(original));
    else if (original && typeof original === 'object' && redacted && typeof redacted === 'object') {
      for (const [key, value] of Object.entries(original)) collect(value, (redacted as Record<string, unknown>)[key]);
    }
  };
  const values = (value: unknown): unknown => {
    const redacted = redactValues(value, []);
    collect(value, redacted);
    return redacted;
  };
  const walk = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(walk);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, VALUES_KEY.test(key) ? values(v) : walk(v)]));
    }
    if (typeof value === 'string' && /^\s*[{[]/.test(value)) {
      // JSON serialized into a string (the deployed spec): redacted as a structure, written back
      try {
        return JSON.stringify(walk(JSON.parse(value)));
      } catch {
        return value;
      }
    }
    return value;
  };
  const structured = walk(snapshot);
  const long = [...secrets].filter((s) => s.length >= MIN_SECRET_IN_TEXT);
  if (long.length === 0) return structured;
  const scrub = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(scrub);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, v]) => [key, scrub(v)]));
    if (typeof value === 'string') return long.reduce((text, secret) => text.split(secret).join(REDACTED), value);
    return value;
  };
  return scrub(structured);
}
