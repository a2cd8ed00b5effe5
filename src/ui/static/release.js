// Pure reading of a deployment's history for the page: which row is the current release and
// which the previous one, the inventory grouped by namespace, how a row is marked (drift
// repair, teardown, superseded) and the CLI command that rolls back to it. No DOM here: the
// table test imports this module as it is served.

/** Actions that render and apply a release (a stop or a teardown renders nothing to go back to). */
const RELEASE_ACTIONS = new Set(['deploy', 'rollback', 'auto-rollback', 'resume']);

export const isRelease = (item) => RELEASE_ACTIONS.has(item.action);

/**
 * The current release (the newest succeeded release row) and the previous one (the next older
 * succeeded release): what runs now and what ran before it. `items` newest first, as the API
 * serves them. Either may be null.
 */
export function currentAndPrevious(items) {
  const releases = items.filter((item) => isRelease(item) && item.status === 'succeeded');
  return { current: releases[0] ?? null, previous: releases[1] ?? null };
}

/**
 * The inventory grouped by namespace: cluster-scoped objects (no namespace) first as
 * `namespace: null`, then namespaces by name; objects by kind then name.
 */
export function groupInventory(inventory) {
  const groups = new Map();
  for (const object of inventory ?? []) {
    const ns = object.namespace ? object.namespace : null;
    if (!groups.has(ns)) groups.set(ns, []);
    groups.get(ns).push(object);
  }
  const byKindName = (a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name) || a.apiVersion.localeCompare(b.apiVersion);
  return [...groups.entries()]
    .sort(([a], [b]) => (a === null ? -1 : b === null ? 1 : a.localeCompare(b)))
    .map(([namespace, objects]) => ({ namespace, objects: objects.slice().sort(byKindName) }));
}

/**
 * What a history row is marked with: `drift-repair` (a deploy the drift check started: its
 * triggered_by begins with "drift", as the notifier's kindOf reads it), `teardown`,
 * `superseded` (a newer generation arrived before it finished), `rollback`.
 */
export function historyMarks(item) {
  const marks = [];
  if (item.action === 'deploy' && String(item.triggered_by ?? '').startsWith('drift')) marks.push('drift-repair');
  if (item.action === 'teardown') marks.push('teardown');
  if (item.action === 'rollback' || item.action === 'auto-rollback') marks.push('rollback');
  if (item.status === 'superseded') marks.push('superseded');
  return marks;
}

const SAFE_WORD = /^[A-Za-z0-9._@%+=:,/-]+$/;

/** A word as the shell reads it back unchanged: names come from the API, i.e. from a SQL writer. */
export function shellWord(word) {
  const text = String(word);
  return SAFE_WORD.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * `keelson rollback <project> <env> --release <id>` for a release that can be rolled back to
 * (a succeeded release: the API refuses anything else), else null. The page stays read-only:
 * it offers the command to copy, never a button that acts.
 */
export function rollbackCommand(project, env, item) {
  if (!isRelease(item) || item.status !== 'succeeded' || !Number.isSafeInteger(item.id) || item.id <= 0) return null;
  return `keelson rollback ${shellWord(project)} ${shellWord(env)} --release ${item.id}`;
}

/**
 * The mark of a transition in the timeline: its action's history marks (by action_id), else
 * what the step itself shows while the action is still in flight — the drift check's repair
 * leaves `healthy.checking` for syncing; a teardown enters `tearing-down`.
 */
export function transitionMarks(transition, historyByAction) {
  const item = transition.action_id ? historyByAction.get(transition.action_id) : undefined;
  const marks = item ? historyMarks(item) : [];
  const from = transition.from_state ?? '';
  if (!marks.includes('drift-repair') && from.startsWith('healthy.checking') && transition.to_state.startsWith('syncing')) marks.push('drift-repair');
  if (!marks.includes('teardown') && transition.to_state.startsWith('tearing-down')) marks.push('teardown');
  return marks.filter((mark) => mark !== 'rollback');
}
