/* global ELK, CSS, document */
// Draws the statechart from GET /api/machine (the definition itself, not a copy): every state
// (compound states as boxes around their children) and every transition (including always and
// invoke done/error edges), laid out by elkjs the way the Stately visualizer does (layered,
// INCLUDE_CHILDREN, left to right). Nodes carry data-state-id, edges data-transition-id.
const SVG = 'http://www.w3.org/2000/svg';
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = '10px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace';

const measure = (() => {
  const ctx = document.createElement('canvas').getContext('2d');
  return (text, font) => {
    ctx.font = font;
    return Math.ceil(ctx.measureText(text).width);
  };
})();

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const child of children) if (child) el.append(child);
  return el;
}

/** Event as shown on an edge: invocations read `done: sync` / `error: sync`. */
export function eventLabel(t) {
  if (t.kind === 'always') return 'always';
  if (t.kind === 'done') return `done: ${t.event.replace(/^xstate\.done\.(actor|state)\./, '')}`;
  if (t.kind === 'error') return `error: ${t.event.replace(/^xstate\.error\.actor\./, '')}`;
  if (t.kind === 'after') return `after ${t.event.split('.')[2] ?? ''} ms`;
  return t.event;
}

/** Guard lines: composite arguments one per line so labels stay narrow. */
function guardLines(guard) {
  if (!guard) return [];
  const parts = `[${guard}]`.split(', ');
  return parts.map((p, i) => (i === 0 ? p : `  ${p}`));
}

function edgeLines(t) {
  return [eventLabel(t), ...guardLines(t.guard)];
}

// the definition's order (idle, syncing, applying, verifying, healthy, …) is preferred when
// choosing which edges of a cycle point backwards (set on compound nodes too, ELK fails)
const ORDER = {
  'elk.layered.cycleBreaking.strategy': 'MODEL_ORDER',
  'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
};
// Cycle breaking alone lets nested edges scramble the top level (healthy drew before syncing).
// Invisible, high-priority edges between consecutive top-level states keep the definition's
// order left to right; they are layout hints only and are never drawn.
const ORDER_EDGE = { 'elk.layered.priority.direction': '100' };
/** Transitions of the root itself ("from any state") start at this pseudo-node, left of all. */
export const ANY_STATE = '__any';

export async function layoutMachine(machine) {
  const byId = new Map(machine.states.map((st) => [st.id, st]));
  const node = (id) => {
    const st = byId.get(id);
    const labelWidth = measure(st.key, `600 ${FONT}`);
    if (st.children.length > 0) {
      return {
        id,
        labels: [{ text: st.key, width: labelWidth, height: 14 }],
        layoutOptions: { 'elk.padding': '[top=30,left=14,bottom=14,right=14]' },
        children: st.children.map(node),
      };
    }
    const invokeText = st.invoke.map((i) => `invoke ${i.src}`).join(', ');
    const width = Math.max(72, labelWidth + 28, invokeText ? measure(invokeText, LABEL_FONT) + 24 : 0);
    return { id, width, height: invokeText ? 44 : 30 };
  };
  const root = machine.states.find((st) => st.parent === null);
  const edges = [];
  for (const t of machine.transitions) {
    const lines = edgeLines(t);
    const label = { text: lines.join('\n'), width: Math.max(...lines.map((l) => measure(l, LABEL_FONT))) + 6, height: lines.length * 12 + 2 };
    const targets = t.targets.length > 0 ? t.targets : [t.source];
    const source = t.source === root.id && t.targets.length > 0 ? ANY_STATE : t.source;
    targets.forEach((target, i) => {
      edges.push({ id: `${t.id}#${i}`, transition: t.id, sources: [source], targets: [target], labels: i === 0 ? [label] : [] });
    });
  }
  const rootNode = node(root.id);
  const anyUsed = edges.some((e) => e.sources[0] === ANY_STATE);
  if (anyUsed) rootNode.children.unshift({ id: ANY_STATE, width: Math.max(72, measure('any state', `600 ${FONT}`) + 24), height: 30 });
  const order = [...(anyUsed ? [ANY_STATE] : []), ...root.children];
  const hints = order.slice(1).map((id, i) => ({ id: `order:${i}`, sources: [order[i]], targets: [id], layoutOptions: ORDER_EDGE }));
  const graph = {
    id: '__graph',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.direction': 'RIGHT',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '28',
      'elk.spacing.nodeNode': '18',
      'elk.spacing.edgeLabel': '2',
      'elk.edgeLabels.placement': 'CENTER',
      ...ORDER,
      // absolute coordinates for every shape and edge: no per-container offsets to add up
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: [rootNode],
    edges: [...edges.map(({ transition: _t, ...e }) => e), ...hints],
  };
  const laid = await new ELK().layout(graph);
  return { laid, edges };
}

/** Renders the laid-out chart; returns the API the page uses to highlight states and edges. */
export async function renderStatechart(container, machine) {
  const { laid, edges } = await layoutMachine(machine);
  const byId = new Map(machine.states.map((st) => [st.id, st]));
  const transitions = new Map(machine.transitions.map((t) => [t.id, t]));
  const shapes = new Map();
  const collect = (n) => {
    if (n.id !== '__graph') shapes.set(n.id, n);
    for (const c of n.children ?? []) collect(c);
  };
  collect(laid);
  const margin = 16;
  const width = Math.ceil(laid.width + margin * 2);
  const height = Math.ceil(laid.height + margin * 2);
  const svg = s('svg', { xmlns: SVG, class: 'statechart', viewBox: `${-margin} ${-margin} ${width} ${height}`, 'data-machine-id': machine.id, 'data-machine-version': machine.version, role: 'img', 'aria-label': `statechart ${machine.id} v${machine.version}` });
  const defs = s('defs');
  for (const [id, cls] of [['arrow', 'arrowhead'], ['arrow-last', 'arrowhead last']]) {
    defs.append(s('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path', { d: 'M0,0 L10,5 L0,10 z', class: cls })));
  }
  svg.append(defs);

  const nodesLayer = s('g', { class: 'nodes' });
  const edgesLayer = s('g', { class: 'edges' });
  const labelsLayer = s('g', { class: 'labels' });
  svg.append(nodesLayer, edgesLayer, labelsLayer);

  // containers first (by depth) so children draw on top
  const ordered = machine.states.slice().sort((a, b) => a.depth - b.depth);
  for (const st of ordered) {
    const shape = shapes.get(st.id);
    if (!shape) continue;
    const compound = st.children.length > 0;
    const g = s('g', { class: `state state-${st.type} top-${st.path.split('.')[0] || 'root'}${st.depth === 0 ? ' root' : ''}`, 'data-state-id': st.id, 'data-state-path': st.path, transform: `translate(${shape.x},${shape.y})` });
    g.append(s('title', {}, document.createTextNode(`${st.path || st.id} (${st.type})${st.invoke.length ? `\ninvokes ${st.invoke.map((i) => `${i.id}: ${i.src}`).join(', ')}` : ''}`)));
    g.append(s('rect', { width: shape.width, height: shape.height, rx: compound ? 10 : 8 }));
    if (compound) {
      g.append(s('text', { x: 12, y: 19, class: 'state-name' }, document.createTextNode(st.depth === 0 ? `${st.key}  ·  machine v${machine.version}` : st.key)));
    } else {
      const hasInvoke = st.invoke.length > 0;
      g.append(s('text', { x: shape.width / 2, y: hasInvoke ? 18 : 19, class: 'state-name', 'text-anchor': 'middle' }, document.createTextNode(st.key)));
      if (hasInvoke) g.append(s('text', { x: shape.width / 2, y: 34, class: 'invoke', 'text-anchor': 'middle' }, document.createTextNode(st.invoke.map((i) => `invoke ${i.src}`).join(', '))));
      if (st.type === 'final') g.append(s('rect', { x: 3, y: 3, width: shape.width - 6, height: shape.height - 6, rx: 6, class: 'final-ring' }));
    }
    nodesLayer.append(g);
    // the initial child gets the statechart's filled-dot marker
    const parent = st.parent ? byId.get(st.parent) : null;
    if (parent && parent.initial === st.id) {
      nodesLayer.append(s('circle', { cx: shape.x - 7, cy: shape.y + 9, r: 4, class: 'initial-dot', 'data-initial-of': parent.id }));
    }
  }

  const any = shapes.get(ANY_STATE);
  if (any) {
    const g = s('g', { class: 'state any-state', 'data-pseudo-state': ANY_STATE, transform: `translate(${any.x},${any.y})` });
    g.append(s('title', {}, document.createTextNode('transitions of the machine itself: taken from whichever state is active')));
    g.append(s('rect', { width: any.width, height: any.height, rx: any.height / 2 }));
    g.append(s('text', { x: any.width / 2, y: 19, class: 'state-name', 'text-anchor': 'middle' }, document.createTextNode('any state')));
    nodesLayer.append(g);
  }

  const groups = new Map();
  for (const e of laid.edges ?? []) {
    const meta = edges.find((x) => x.id === e.id);
    if (!meta) continue; // an ordering hint, not a transition
    const t = transitions.get(meta.transition);
    let g = groups.get(t.id);
    if (!g) {
      g = s('g', { class: `transition kind-${t.kind}${t.targets.length === 0 ? ' targetless' : ''}${t.reenter ? ' reenter' : ''}`, 'data-transition-id': t.id, 'data-event': t.event, 'data-source': t.source, 'data-targets': t.targets.join(' ') });
      g.append(s('title', {}, document.createTextNode(`${t.source} → ${t.targets.join(', ') || '(no target: actions only)'}\n${t.kind === 'always' ? 'always' : t.event}${t.guard ? `\nguard: ${t.guard}` : ''}${t.actions.length ? `\nactions: ${t.actions.join(', ')}` : ''}${t.reenter ? '\nreenter' : ''}`)));
      groups.set(t.id, g);
      edgesLayer.append(g);
    }
    for (const section of e.sections ?? []) {
      const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
      g.append(s('path', { d: points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' '), 'marker-end': 'url(#arrow)' }));
    }
    for (const label of e.labels ?? []) {
      const lg = s('g', { class: 'edge-label', 'data-label-of': t.id, transform: `translate(${label.x},${label.y})` });
      lg.append(s('rect', { x: -2, y: -1, width: label.width + 2, height: label.height + 1, rx: 3 }));
      label.text.split('\n').forEach((line, i) => {
        lg.append(s('text', { x: 1, y: 10 + i * 12, class: i === 0 ? 'event' : 'guard' }, document.createTextNode(line)));
      });
      labelsLayer.append(lg);
    }
  }

  const stateByPath = new Map(machine.states.map((st) => [st.path, st]));
  container.replaceChildren(svg);

  let scale = 1;
  const applyScale = () => {
    svg.setAttribute('width', String(Math.round(width * scale)));
    svg.setAttribute('height', String(Math.round(height * scale)));
  };
  applyScale();

  const resolve = (path) => {
    // a journaled path may be collapsed (healthy) or longer than the chart knows: take the deepest known prefix
    const parts = (path ?? '').split('.').filter(Boolean);
    for (let n = parts.length; n > 0; n--) {
      const st = stateByPath.get(parts.slice(0, n).join('.'));
      if (st) return st;
    }
    return null;
  };
  const related = (a, b) => a === b || b.startsWith(`${a}.`) || a.startsWith(`${b}.`);

  return {
    width,
    height,
    svg,
    setScale(next) {
      scale = Math.max(0.2, Math.min(2, next));
      applyScale();
      return scale;
    },
    get scale() {
      return scale;
    },
    fitScale: () => Math.min(1, (container.clientWidth - 4) / width),
    /** Highlights the state at `path` (and its ancestors); returns its id. */
    highlight(path) {
      const current = resolve(path);
      for (const el of svg.querySelectorAll('.state.active, .state.current')) el.classList.remove('active', 'current');
      svg.dataset.currentState = path ?? '';
      if (!current) return null;
      for (let st = current; st; st = st.parent ? byId.get(st.parent) : null) {
        svg.querySelector(`[data-state-id="${CSS.escape(st.id)}"]`)?.classList.add(st === current ? 'current' : 'active');
      }
      return current.id;
    },
    scrollTo(path) {
      const current = resolve(path);
      const shape = current && shapes.get(current.id);
      if (!shape) return;
      const x = (shape.x + shape.width / 2 + margin) * scale - container.clientWidth / 2;
      const y = (shape.y + shape.height / 2 + margin) * scale - container.clientHeight / 2;
      container.scrollTo({ left: Math.max(0, x), top: Math.max(0, y), behavior: 'smooth' });
    },
    /** Marks the edge a journaled transition took (from → to on event); returns its id or null. */
    markTransition(row) {
      for (const el of svg.querySelectorAll('.transition.last')) {
        el.classList.remove('last');
        for (const p of el.querySelectorAll('path')) p.setAttribute('marker-end', 'url(#arrow)');
      }
      for (const el of svg.querySelectorAll('.edge-label.last')) el.classList.remove('last');
      delete svg.dataset.lastTransition;
      const from = resolve(row?.from_state);
      const to = resolve(row?.to_state);
      if (!row || !from || !to) return null;
      const fits = (t) =>
        related(t.source, from.id) && (t.targets.length ? t.targets.some((target) => related(target, to.id)) : related(t.source, to.id));
      let candidates = machine.transitions.filter((t) => t.event === row.event && fits(t));
      // an eventless (always) step is journaled under the event that started the macrostep
      if (candidates.length === 0) candidates = machine.transitions.filter((t) => t.kind === 'always' && fits(t));
      // the most specific source wins (a child's handler shadows its ancestors')
      candidates.sort((a, b) => b.source.length - a.source.length);
      const hit = candidates[0];
      if (!hit) return null;
      const g = svg.querySelector(`[data-transition-id="${CSS.escape(hit.id)}"]`);
      g?.classList.add('last');
      for (const p of g?.querySelectorAll('path') ?? []) p.setAttribute('marker-end', 'url(#arrow-last)');
      svg.querySelector(`[data-label-of="${CSS.escape(hit.id)}"]`)?.classList.add('last');
      svg.dataset.lastTransition = hit.id;
      return hit.id;
    },
  };
}
