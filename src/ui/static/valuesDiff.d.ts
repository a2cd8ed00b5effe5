// Types for the browser module of the same name (plain JS, served as is), for the table test.
export type ValuesChange = { path: string; change: 'added' | 'removed' | 'changed'; before?: unknown; after?: unknown };
export function joinPath(parent: string, key: string | number): string;
export function diffValues(before: unknown, after: unknown): ValuesChange[];
export function showValue(value: unknown, max?: number): string;
