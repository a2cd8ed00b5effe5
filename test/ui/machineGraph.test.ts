// machineGraph: every state and transition of the definition is extracted (checked against an
// independent walk of `machine.root`), including `always`, `after` and invoke done/error edges,
// with readable guard names.
import { and, assign, createMachine, not, or, type AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { MACHINE_VERSION, deploymentMachine } from '../../machines/deployment.machine.ts';
import { guardName, machineGraph, transitionKind } from '../../src/ui/machineGraph.ts';

interface RawNode {
  id: string;
  states: Record<string, RawNode>;
  transitions: Map<string, Array<{ eventType: string; target?: RawNode[] }>>;
  always?: Array<{ eventType: string; target?: RawNode[] }>;
  invoke: Array<{ id: string }>;
}

/** The definition walked without machineGraph: state ids and `source|event|targets` keys. */
function walk(machine: AnyStateMachine) {
  const stateIds: string[] = [];
  const keys: string[] = [];
  const invokes: string[] = [];
  const visit = (node: RawNode) => {
    stateIds.push(node.id);
    for (const inv of node.invoke) invokes.push(inv.id);
    for (const [event, list] of node.transitions) {
      for (const t of list) keys.push(`${node.id}|${event}|${(t.target ?? []).map((s) => s.id).join(',')}`);
    }
    for (const t of node.always ?? []) keys.push(`${node.id}||${(t.target ?? []).map((s) => s.id).join(',')}`);
    for (const child of Object.values(node.states)) visit(child);
  };
  visit(machine.root as unknown as RawNode);
  return { stateIds, keys, invokes };
}

const keysOf = (graph: ReturnType<typeof machineGraph>) =>
  graph.transitions.map((t) => `${t.source}|${t.event}|${t.targets.join(',')}`);

describe('machineGraph(deploymentMachine)', () => {
  const graph = machineGraph(deploymentMachine, MACHINE_VERSION);
  const raw = walk(deploymentMachine);

  it('has every state of machine.root, each once, with its parent', () => {
    expect(graph.states.map((s) => s.id).sort()).toEqual([...raw.stateIds].sort());
    expect(new Set(graph.states.map((s) => s.id)).size).toBe(graph.states.length);
    for (const state of graph.states.slice(1)) expect(graph.states.some((s) => s.id === state.parent)).toBe(true);
  });

  it('has all 10 top-level states and starts in idle', () => {
    const top = graph.states.filter((s) => s.parent === 'deployment').map((s) => s.key);
    expect(top.sort()).toEqual(['applying', 'deleted', 'failed', 'healthy', 'idle', 'rolling-back', 'stopped', 'syncing', 'tearing-down', 'verifying']);
    expect(graph.initial).toBe('deployment.idle');
    expect(graph.version).toBe(MACHINE_VERSION);
  });

  it('has every transition of machine.root (same count, same source|event|targets keys)', () => {
    expect(raw.keys.length).toBeGreaterThan(40);
    expect(graph.transitions).toHaveLength(raw.keys.length);
    expect(keysOf(graph).sort()).toEqual([...raw.keys].sort());
    expect(new Set(graph.transitions.map((t) => t.id)).size).toBe(graph.transitions.length);
  });

  it('includes invoke done/error edges and every invoke id', () => {
    expect(graph.states.flatMap((s) => s.invoke.map((i) => i.id)).sort()).toEqual([...raw.invokes].sort());
    const verify = graph.transitions.filter((t) => t.source === 'deployment.verifying.running');
    // over a revision (back to replace) the revision is retired first; else healthy
    expect(verify.filter((t) => t.kind === 'done')).toMatchObject([
      { event: 'xstate.done.actor.verify', guard: 'retiresRevision', targets: ['deployment.verifying.retiring'], actions: ['recordVerify'] },
      { event: 'xstate.done.actor.verify', guard: null, targets: ['deployment.healthy'], actions: ['succeed'] },
    ]);
    expect(verify.filter((t) => t.kind === 'error').map((t) => t.guard)).toEqual(['isTransient', 'autoRollbackApplies', null]);
  });

  it('renders and(...) guards readably and marks root DESIRED_CHANGED as re-entering', () => {
    const desired = graph.transitions.filter((t) => t.source === 'deployment' && t.event === 'DESIRED_CHANGED');
    expect(desired.map((t) => t.guard)).toEqual([
      'and(isNewerGeneration, wantsDeleted)',
      'and(isNewerGeneration, wantsStopped)',
      'and(isNewerGeneration, wantsRollback)',
      'and(isNewerGeneration, wantsActive)',
    ]);
    expect(desired.every((t) => t.reenter && !t.internal)).toBe(true);
    const adopt = graph.transitions.find((t) => t.source === 'deployment.healthy' && t.event === 'DESIRED_CHANGED');
    expect(adopt).toMatchObject({ targets: [], internal: true, reenter: false, guard: 'isAlreadyDeployed', actions: ['adoptGeneration'] });
  });

  it('gives paths as the runtime journals them', () => {
    const paths = graph.states.map((s) => s.path);
    expect(paths).toEqual(expect.arrayContaining(['', 'syncing.fetching.running', 'applying.running', 'rolling-back.finding.running', 'stopped.idle', 'healthy']));
  });
});

describe('machineGraph on always, after and composite guards', () => {
  const machine = createMachine({
    id: 'm',
    initial: 'a',
    states: {
      a: {
        always: [{ guard: not('ready'), target: 'b' }, { target: 'c' }],
        after: { 500: 'c' },
        on: { GO: { guard: or(['x', and(['y', not('z')])]), actions: [assign({}), { type: 'log' }], target: 'b' } },
      },
      b: { invoke: { id: 'job', src: 'job', onDone: 'c', onError: 'a' } },
      c: { type: 'final' },
    },
  });
  const graph = machineGraph(machine, 'test');

  it('keeps always and after edges that toJSON() drops', () => {
    expect(keysOf(graph).sort()).toEqual([...walk(machine).keys].sort());
    const always = graph.transitions.filter((t) => t.kind === 'always');
    expect(always.map((t) => [t.source, t.targets[0], t.guard])).toEqual([
      ['m.a', 'm.b', 'not(ready)'],
      ['m.a', 'm.c', null],
    ]);
    expect(graph.transitions.filter((t) => t.kind === 'after').map((t) => t.targets)).toEqual([['m.c']]);
    expect(graph.transitions.find((t) => t.event === 'GO')).toMatchObject({ guard: 'or(x, and(y, not(z)))', actions: ['xstate.assign', 'log'] });
    expect(graph.transitions.filter((t) => t.source === 'm.b').map((t) => t.kind).sort()).toEqual(['done', 'error']);
    expect(graph.states.find((s) => s.id === 'm.c')?.type).toBe('final');
  });
});

describe('guardName and transitionKind', () => {
  it.each([
    ['isTransient', 'isTransient'],
    [{ type: 'inRange', params: { max: 3 } }, 'inRange({"max":3})'],
    [function customCheck() {}, 'customCheck'],
    [and(['a', 'b']), 'and(a, b)'],
  ])('guard %#', (guard, expected) => {
    expect(guardName(guard)).toBe(expected);
  });

  it.each([
    ['DESIRED_CHANGED', false, 'event'],
    ['xstate.done.actor.sync', false, 'done'],
    ['xstate.error.actor.sync', false, 'error'],
    ['xstate.after.500.m.a', false, 'after'],
    ['', true, 'always'],
  ] as const)('%s is %s', (event, always, kind) => {
    expect(transitionKind(event, always)).toBe(kind);
  });
});
