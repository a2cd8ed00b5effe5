// What a release records of its values: a hash to compare releases by, and a copy a person may
// read. The copy is redacted: a key that names a secret, and any value that ended up in a
// rendered Secret, becomes "[redacted]". The exact values_override (needed to render the
// release again) is stored apart, as the row itself stores it.
import { createHash } from 'node:crypto';
import { REDACTED } from '../plans/secrets.ts';

const SECRET_KEY = /(secret|password|passwd|token|credential|private|api[-_]?key|access[-_]?key|auth)/i;

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]));
  }
  return value;
}

/** sha256 of the values with keys in a fixed order: equal values, equal hash. */
export function valuesHash(values: Record<string, unknown>): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(canonical(values))).digest('hex')}`;
}

/** A copy of `values` without secrets: secret-looking keys, and any of `secretStrings` as a value. */
export function redactValues(values: unknown, secretStrings: readonly string[]): unknown {
  const secrets = new Set(secretStrings);
  // under a secret-looking key, every leaf is redacted (`secrets: { db: … }`)
  const walk = (value: unknown, secretBranch: boolean): unknown => {
    if (Array.isArray(value)) return value.map((item) => walk(item, secretBranch));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, secretBranch || SECRET_KEY.test(k))]));
    }
    if (secretBranch || (typeof value === 'string' && secrets.has(value))) return REDACTED;
    return value;
  };
  return walk(values, false);
}
