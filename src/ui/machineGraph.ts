// The statechart's structure as plain JSON, extracted from the machine definition itself so the
// visualizer cannot drift from the code. Pure: no I/O.
//
// `machine.toJSON()` and `xstate/graph`'s `toDirectedGraph` omit `always` transitions, so this
// walks `machine.root` directly: `node.transitions` (every event, including invoke
// `xstate.done.actor.<id>` / `xstate.error.actor.<id>` and `after` delays as
// `xstate.after.<delay>.<id>`), `node.always`, `node.invoke` and `node.states`.
import type { AnyStateMachine } from 'xstate';

export type StateType = 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
export type TransitionKind = 'event' | 'always' | 'after' | 'done' | 'error';

export interface GraphState {
  /** xstate id, e.g. `deployment.syncing.fetching` */
  readonly id: string;
  readonly key: string;
  /** dotted key path as the runtime journals it, e.g. `syncing.fetching`; `''` for the root */
  readonly path: string;
  readonly parent: string | null;
  readonly depth: number;
  readonly type: StateType;
  /** id of the initial child of a compound state */
  readonly initial: string | null;
  readonly children: readonly string[];
  readonly invoke: ReadonlyArray<{ readonly id: string; readonly src: string }>;
}

export interface GraphTransition {
  /** stable: `<source id>|<event or "always">|<index among the source's transitions for it>` */
  readonly id: string;
  readonly source: string;
  /** target state ids; empty for a targetless transition (actions only) */
  readonly targets: readonly string[];
  /** the event type; `''` for `always` */
  readonly event: string;
  readonly kind: TransitionKind;
  /** readable guard, e.g. `and(isNewerGeneration, wantsActive)`; null when unguarded */
  readonly guard: string | null;
  readonly actions: readonly string[];
  /** `reenter: true`: the source is exited and re-entered even when the target is inside it */
  readonly reenter: boolean;
  /** not re-entering and staying inside the source (or targetless): the source is not exited */
  readonly internal: boolean;
}

export interface MachineGraph {
  readonly id: string;
  readonly version: string;
  /** id of the root's initial state */
  readonly initial: string | null;
  readonly states: readonly GraphState[];
  readonly transitions: readonly GraphTransition[];
}

// xstate's node types are generic over the machine; only these members are read here.
interface NodeLike {
  readonly id: string;
  readonly key: string;
  readonly path: readonly string[];
  readonly type: StateType;
  readonly parent?: NodeLike | undefined;
  readonly initial?: { readonly target?: readonly NodeLike[] } | undefined;
  readonly states: Readonly<Record<string, NodeLike>>;
  readonly transitions: ReadonlyMap<string, readonly TransitionLike[]>;
  readonly always?: readonly TransitionLike[] | undefined;
  readonly invoke: ReadonlyArray<{ readonly id: string; readonly src: unknown }>;
}

interface TransitionLike {
  readonly eventType: string;
  readonly target?: readonly NodeLike[] | undefined;
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
  readonly reenter: boolean;
}

const COMPOSITES = new Set(['and', 'or', 'not']);

/** `'isTransient'` → `isTransient`; `and([a, not(b)])` → `and(a, not(b))`; inline → its name. */
export function guardName(guard: unknown): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const fn = guard as { name?: string; guards?: unknown };
    if (fn.name && COMPOSITES.has(fn.name) && Array.isArray(fn.guards)) {
      return `${fn.name}(${fn.guards.map(guardName).join(', ')})`;
    }
    return fn.name ? fn.name : 'inline';
  }
  if (guard && typeof guard === 'object' && 'type' in guard) {
    const { type, params } = guard as { type: unknown; params?: unknown };
    return params === undefined ? String(type) : `${String(type)}(${JSON.stringify(params)})`;
  }
  return 'inline';
}

/** `'recordSync'` → `recordSync`; `assign(...)` → `xstate.assign`; `{ type }` → type. */
export function actionName(action: unknown): string {
  if (typeof action === 'string') return action;
  if (action && (typeof action === 'object' || typeof action === 'function')) {
    const a = action as { type?: unknown; name?: unknown };
    if (typeof a.type === 'string') return a.type;
    if (typeof a.name === 'string' && a.name) return a.name;
  }
  return 'inline';
}

export function transitionKind(event: string, always: boolean): TransitionKind {
  if (always) return 'always';
  if (event.startsWith('xstate.done.actor.') || event.startsWith('xstate.done.state.')) return 'done';
  if (event.startsWith('xstate.error.actor.')) return 'error';
  if (event.startsWith('xstate.after.')) return 'after';
  return 'event';
}

const isWithin = (node: NodeLike, ancestor: NodeLike): boolean => {
  for (let n: NodeLike | undefined = node; n; n = n.parent) if (n === ancestor) return true;
  return false;
};

function srcName(src: unknown): string {
  if (typeof src === 'string') return src;
  const named = src as { id?: unknown; name?: unknown } | null;
  if (named && typeof named.id === 'string') return named.id;
  return 'inline';
}

/** The structure of `machine` (every state and transition), in document order. */
export function machineGraph(machine: AnyStateMachine, version: string): MachineGraph {
  const root = machine.root as unknown as NodeLike;
  const states: GraphState[] = [];
  const transitions: GraphTransition[] = [];

  const toTransition = (node: NodeLike, t: TransitionLike, index: number, always: boolean): GraphTransition => {
    const targets = t.target ?? [];
    return {
      id: `${node.id}|${always ? 'always' : t.eventType}|${index}`,
      source: node.id,
      targets: targets.map((target) => target.id),
      event: always ? '' : t.eventType,
      kind: transitionKind(t.eventType, always),
      guard: t.guard === undefined ? null : guardName(t.guard),
      actions: t.actions.map(actionName),
      reenter: t.reenter,
      internal: !t.reenter && targets.every((target) => isWithin(target, node)),
    };
  };

  const visit = (node: NodeLike, depth: number): void => {
    const children = Object.values(node.states);
    states.push({
      id: node.id,
      key: node.key,
      path: node.path.join('.'),
      parent: node.parent?.id ?? null,
      depth,
      type: node.type,
      initial: node.initial?.target?.[0]?.id ?? null,
      children: children.map((child) => child.id),
      invoke: node.invoke.map((inv) => ({ id: inv.id, src: srcName(inv.src) })),
    });
    for (const [, list] of node.transitions) list.forEach((t, i) => transitions.push(toTransition(node, t, i, false)));
    (node.always ?? []).forEach((t, i) => transitions.push(toTransition(node, t, i, true)));
    for (const child of children) visit(child, depth + 1);
  };
  visit(root, 0);

  return { id: root.id, version, initial: root.initial?.target?.[0]?.id ?? null, states, transitions };
}
