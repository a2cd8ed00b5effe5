// Glob patterns of project policies, with Argo CD's AppProject conventions: `*` and `?` as in
// a shell, `**` across `/` (manifest paths), and a leading `!` that denies what it matches
// (a deny always wins over an allow). Pure: no I/O.

/** `*` any run without `/`, `**` any run, `?` one character other than `/`; everything else literal. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    if (char === '*') {
      if (glob[i + 1] === '*') {
        // `a/**` also matches `a` itself, as in most glob dialects (gitignore, Argo's sourceRepos)
        if (glob[i + 2] === undefined && source.endsWith('/')) {
          source = `${source.slice(0, -1)}(?:/.*)?`;
        } else {
          source += '.*';
        }
        i++;
      } else {
        source += '[^/]*';
      }
    } else if (char === '?') {
      source += '[^/]';
    } else {
      source += char.replace(/[\\^$.|+(){}[\]]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`, 's');
}

const cache = new Map<string, RegExp>();

export function globMatches(glob: string, value: string): boolean {
  let re = cache.get(glob);
  if (!re) {
    re = globToRegExp(glob);
    if (cache.size > 10_000) cache.clear();
    cache.set(glob, re);
  }
  return re.test(value);
}

export const hasWildcard = (pattern: string): boolean => /[*?]/.test(pattern);

/**
 * Whether `value` is admitted by `patterns`: some allowing pattern matches and no `!` pattern
 * does. `guard` may veto what a wildcard pattern (never a literal one) matches.
 */
export function admitted(patterns: readonly string[], value: string, guard?: (value: string) => boolean): boolean {
  let allowed = false;
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), value)) return false;
    } else if (!allowed && globMatches(pattern, value)) {
      allowed = !hasWildcard(pattern) || !guard || guard(value);
    }
  }
  return allowed;
}

/** `apps/Deployment`, `core/ConfigMap`, `*\/*`: a kind pattern; the core API group is written `core`. */
export interface KindPattern {
  readonly group: string;
  readonly kind: string;
}

export function parseKindPattern(pattern: string): KindPattern | undefined {
  const slash = pattern.indexOf('/');
  if (slash <= 0 || slash === pattern.length - 1 || pattern.indexOf('/', slash + 1) >= 0) return undefined;
  return { group: pattern.slice(0, slash), kind: pattern.slice(slash + 1) };
}

/** The API group of an apiVersion (`apps/v1` → `apps`), `core` for the core group (`v1`). */
export function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? 'core' : apiVersion.slice(0, slash);
}

export function kindMatches(patterns: readonly string[], group: string, kind: string): string | undefined {
  for (const pattern of patterns) {
    const parsed = parseKindPattern(pattern);
    if (parsed && globMatches(parsed.group, group) && globMatches(parsed.kind, kind)) return pattern;
  }
  return undefined;
}
