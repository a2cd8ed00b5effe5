// What changed in the values between two releases, as paths (`image.tag`, `hosts[0]`,
// `annotations["team.example/owner"]`): pure, shared by the deployment page and its table test.
// It only ever sees `values_redacted`: a secret's value reads "[redacted]" on both sides, so a
// changed secret shows as no change here (the page says so when the values hashes differ).

const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** `a.b`, `a[0]`, `a["x.y"]`: a key that is not a plain name is quoted, so paths never collide. */
export function joinPath(parent, key) {
  if (typeof key === 'number') return `${parent}[${key}]`;
  if (PLAIN_KEY.test(key)) return parent === '' ? key : `${parent}.${key}`;
  return `${parent}[${JSON.stringify(key)}]`;
}

/**
 * The added, removed and changed leaves from `before` to `after`, sorted by path. Objects are
 * compared key by key and arrays index by index; a value that changes type (object to scalar,
 * array to object) is one change at its path. Equal values produce nothing.
 * @returns {Array<{ path: string, change: 'added' | 'removed' | 'changed', before?: unknown, after?: unknown }>}
 */
export function diffValues(before, after) {
  const out = [];
  const walk = (path, a, b) => {
    if (isObject(a) && isObject(b)) {
      const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
      for (const key of keys) {
        const inA = Object.hasOwn(a, key);
        const inB = Object.hasOwn(b, key);
        const sub = joinPath(path, key);
        if (inA && inB) walk(sub, a[key], b[key]);
        else if (inB) out.push({ path: sub, change: 'added', after: b[key] });
        else out.push({ path: sub, change: 'removed', before: a[key] });
      }
      return;
    }
    if (Array.isArray(a) && Array.isArray(b)) {
      for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const sub = joinPath(path, i);
        if (i < a.length && i < b.length) walk(sub, a[i], b[i]);
        else if (i < b.length) out.push({ path: sub, change: 'added', after: b[i] });
        else out.push({ path: sub, change: 'removed', before: a[i] });
      }
      return;
    }
    // leaves (and a value that changed type) compare by identity: both sides are parsed JSON
    if (a !== b) out.push({ path: path === '' ? '(all values)' : path, change: 'changed', before: a, after: b });
  };
  walk('', before ?? {}, after ?? {});
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/** A value as one short line: JSON, cut so one huge block cannot flood the page. */
export function showValue(value, max = 120) {
  const text = value === undefined ? '–' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
