// Types for the browser module of the same name (plain JS, served as is), for the table test.
export type ReleaseItem = { id: number; action: string; status: string; triggered_by?: string | null };
export type InventoryObject = { apiVersion: string; kind: string; name: string; namespace?: string };
export function isRelease(item: ReleaseItem): boolean;
export function currentAndPrevious<T extends ReleaseItem>(items: T[]): { current: T | null; previous: T | null };
export function groupInventory(inventory: InventoryObject[] | null | undefined): Array<{ namespace: string | null; objects: InventoryObject[] }>;
export function historyMarks(item: ReleaseItem): string[];
export function shellWord(word: string): string;
export function rollbackCommand(project: string, env: string, item: ReleaseItem): string | null;
export type TransitionLike = { action_id?: string | null; from_state: string | null; to_state: string };
export function transitionMarks(transition: TransitionLike, historyByAction: Map<string, ReleaseItem>): string[];
