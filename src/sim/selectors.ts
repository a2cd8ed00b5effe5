// Label and field selectors: parsing (the string syntax of `?labelSelector=`) and matching.
// Pure: no I/O, unit tested in test/sim/selectors.test.ts.

export type Requirement =
  | { key: string; op: 'exists' | '!' }
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] };

export class SelectorError extends Error {}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;
const VALUE = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?)?$/;

function checkKey(key: string): string {
  if (!KEY.test(key) || key.length > 316) throw new SelectorError(`invalid label key "${key}"`);
  return key;
}

function checkValue(value: string): string {
  if (!VALUE.test(value) || value.length > 63) throw new SelectorError(`invalid label value: "${value}"`);
  return value;
}

/** Splits on commas that are not inside parentheses. */
function splitTop(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of input) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) throw new SelectorError(`unbalanced parentheses in "${input}"`);
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  if (depth !== 0) throw new SelectorError(`unbalanced parentheses in "${input}"`);
  parts.push(current);
  return parts;
}

export function parseLabelSelector(input: string | undefined | null): Requirement[] {
  if (!input || !input.trim()) return [];
  return splitTop(input).map((raw) => {
    const part = raw.trim();
    if (!part) throw new SelectorError(`empty requirement in "${input}"`);
    let m = /^(\S+?)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (m) {
      const values = m[3]!.split(',').map((v) => checkValue(v.trim()));
      return { key: checkKey(m[1]!), op: m[2] as 'in' | 'notin', values };
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m) {
      const op = m[2] === '!=' ? '!=' : '=';
      return { key: checkKey(m[1]!), op, value: checkValue(m[3]!) };
    }
    m = /^!\s*(\S+)$/.exec(part);
    if (m) return { key: checkKey(m[1]!), op: '!' };
    if (/^\S+$/.test(part)) return { key: checkKey(part), op: 'exists' };
    throw new SelectorError(`unable to parse requirement: "${part}"`);
  });
}

export function matchesRequirements(labels: Record<string, string> | undefined, requirements: readonly Requirement[]): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const value = l[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case '!':
        return !has;
      case '=':
        return has && value === r.value;
      case '!=':
        return !has || value !== r.value;
      case 'in':
        return has && r.values.includes(value!);
      case 'notin':
        return !has || !r.values.includes(value!);
    }
  });
}

export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A structured `spec.selector` as requirements; an absent selector matches nothing, an empty one everything. */
export function requirementsFromObject(selector: LabelSelectorObject): Requirement[] {
  const out: Requirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) out.push({ key, op: '=', value });
  for (const e of selector.matchExpressions ?? []) {
    switch (e.operator) {
      case 'In':
        out.push({ key: e.key, op: 'in', values: e.values ?? [] });
        break;
      case 'NotIn':
        out.push({ key: e.key, op: 'notin', values: e.values ?? [] });
        break;
      case 'Exists':
        out.push({ key: e.key, op: 'exists' });
        break;
      case 'DoesNotExist':
        out.push({ key: e.key, op: '!' });
        break;
      default:
        throw new SelectorError(`"${e.operator}" is not a valid label selector operator`);
    }
  }
  return out;
}

/** The string form Kubernetes prints (Scale `status.selector`, `kubectl get -o wide`). */
export function formatRequirements(requirements: readonly Requirement[]): string {
  return [...requirements]
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((r) => {
      switch (r.op) {
        case 'exists':
          return r.key;
        case '!':
          return `!${r.key}`;
        case '=':
          return `${r.key}=${r.value}`;
        case '!=':
          return `${r.key}!=${r.value}`;
        case 'in':
        case 'notin':
          return `${r.key} ${r.op} (${[...r.values].sort().join(',')})`;
      }
    })
    .join(',');
}

export interface FieldRequirement {
  field: string;
  op: '=' | '!=';
  value: string;
}

export function parseFieldSelector(input: string | undefined | null, supported: readonly string[]): FieldRequirement[] {
  if (!input || !input.trim()) return [];
  return input.split(',').map((raw) => {
    const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
    if (!m) throw new SelectorError(`invalid selector: '${input}'; can't understand '${raw}'`);
    const field = m[1]!;
    if (!supported.includes(field)) throw new SelectorError(`field label not supported: ${field}`);
    return { field, op: m[2] === '!=' ? '!=' : '=', value: m[3]! };
  });
}

/** `valueOf` reads a label whose value is not simply the JSON path it names (Event's `source`). */
export function matchesFields<T>(obj: T, requirements: readonly FieldRequirement[], valueOf?: (o: T, field: string) => unknown): boolean {
  return requirements.every((r) => {
    let value: unknown = obj;
    if (valueOf) value = valueOf(obj, r.field);
    else for (const part of r.field.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
    const actual = value === undefined || value === null ? '' : String(value);
    return r.op === '=' ? actual === r.value : actual !== r.value;
  });
}
