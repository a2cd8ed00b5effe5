// The rules every desired-state value must pass, whichever door it comes through: the API's zod
// schemas call these, and migrations/0003_tenancy.sql states the same rules as CHECK
// constraints for writers that use SQL (test/tenancy/bothDoors.test.ts holds them together).
// Each returns the reason a value is refused, as the end of a sentence, or null when it passes.
// Pure: no I/O.

/**
 * Characters that print as nothing, or as something they are not: C0/C1 controls, no-break and
 * other Unicode spaces, zero-width and bidirectional controls (a "Trojan Source" branch or image
 * reads differently from what git or the registry receives), soft hyphen, BOM.
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00a0\u00ad\u061c\u115f\u1160\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u206f\u3000\u3164\ufeff\ufff9-\ufffb]/u;

/** null when `text` has no invisible or ambiguous characters and no unpaired surrogate. */
export function printableProblem(text: string): string | null {
  if (!text.isWellFormed()) return 'it contains an unpaired UTF-16 surrogate';
  const found = INVISIBLE.exec(text);
  if (found) {
    const code = (found[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    return `it contains the invisible or control character U+${code} at position ${found.index}`;
  }
  return null;
}

/** Image references are ASCII in every registry: 1-1024 visible ASCII characters. */
export function imageRefProblem(ref: string): string | null {
  if (ref.length === 0 || ref.length > 1024) return 'it must be 1-1024 characters long';
  if (!/^[\x21-\x7e]+$/.test(ref)) return 'it must be visible ASCII only (no spaces, controls or other Unicode), such as registry.example/shop:1.4.2';
  return null;
}

/**
 * git check-ref-format for a branch (`refs/heads/<name>`), plus: no leading `-` (it would reach
 * git as an option), printable, at most 255 characters.
 */
export function branchProblem(name: string): string | null {
  if (name.length === 0 || name.length > 255) return 'a branch name is 1-255 characters long';
  if (name.startsWith('-')) return 'a branch name may not start with "-" (git would read it as an option)';
  if (name === '@' || name === 'HEAD') return `"${name}" is not a branch name`;
  // eslint-disable-next-line no-control-regex -- control characters are refused by git itself
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)) return 'a branch name may not contain spaces, control characters or any of ~ ^ : ? * [ \\';
  if (name.includes('..')) return 'a branch name may not contain ".."';
  if (name.includes('@{')) return 'a branch name may not contain "@{"';
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return 'a branch name may not start or end with "/" or contain "//"';
  if (name.endsWith('.')) return 'a branch name may not end with "."';
  for (const component of name.split('/')) {
    if (component.startsWith('.')) return 'no part of a branch name may start with "."';
    if (component.endsWith('.lock')) return 'no part of a branch name may end with ".lock"';
  }
  return printableProblem(name);
}

/**
 * A path inside an ops repo (deployments.manifest_path, ops_repos.path): relative, `/`-separated,
 * no `..` or `.git` segment, no leading `-` or `/`, no backslash, printable, at most 1024.
 */
export function repoPathProblem(p: string): string | null {
  if (p.length === 0 || p.length > 1024) return 'a path inside the ops repo is 1-1024 characters long';
  if (p.startsWith('/')) return 'it must be relative to the ops repo (no leading "/")';
  if (p.startsWith('-')) return 'it may not start with "-"';
  if (p.includes('\\')) return 'use "/" to separate folders (no "\\")';
  const segments = p.split('/');
  if (segments.includes('..')) return 'it may not contain ".." segments';
  if (segments.some((s) => s.toLowerCase() === '.git')) return 'it may not reach into .git';
  return printableProblem(p);
}

export const VALUES_MAX_DEPTH = 32;
export const VALUES_MAX_BYTES = 256 * 1024;

/**
 * Nesting of objects and arrays (`{}` is 1, `{"a":{"b":1}}` is 2; scalars add nothing), measured
 * without recursion so a hostile 10,000-deep document cannot overflow the stack. Stops counting
 * past `cap`.
 */
export function jsonDepth(value: unknown, cap = Number.MAX_SAFE_INTEGER): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== 'object') continue;
    if (depth > deepest) deepest = depth;
    if (deepest > cap) return deepest;
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return deepest;
}

/** Every string (keys included) in a JSON value, depth-first, without recursion. */
function* strings(value: unknown): Generator<[string, string]> {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [current, at] = stack.pop() as [unknown, string];
    if (typeof current === 'string') yield [current, at];
    else if (Array.isArray(current)) current.forEach((child, i) => stack.push([child, `${at}[${i}]`]));
    else if (current !== null && typeof current === 'object') {
      for (const [key, child] of Object.entries(current)) {
        yield [key, `${at}.${key}`];
        stack.push([child, `${at}.${key}`]);
      }
    }
  }
}

/**
 * values_override: at most 32 levels deep and 256 KiB as compact JSON; no NUL or unpaired
 * surrogate in any string (PostgreSQL's jsonb cannot store them). The depth is checked first,
 * so nothing below walks a hostile document recursively.
 */
export function valuesProblem(values: unknown): string | null {
  const depth = jsonDepth(values, VALUES_MAX_DEPTH);
  if (depth > VALUES_MAX_DEPTH) return `it is nested more than ${VALUES_MAX_DEPTH} levels deep`;
  const bytes = Buffer.byteLength(JSON.stringify(values));
  if (bytes > VALUES_MAX_BYTES) return `it is ${bytes} bytes as JSON, more than ${VALUES_MAX_BYTES} (256 KiB)`;
  for (const [text, at] of strings(values)) {
    if (text.includes('\u0000')) return `the string at ${at || '(root)'} contains a NUL character`;
    if (!text.isWellFormed()) return `the string at ${at || '(root)'} contains an unpaired UTF-16 surrogate`;
  }
  return null;
}
