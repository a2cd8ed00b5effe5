/* global CSS, document */
// Draws the statechart from GET /api/machine (the definition itself, not a copy): every state
// (compound states as boxes around their children) and every transition (including always and
// invoke done/error edges), laid out by elkjs the way the Stately visualizer does (layered,
// INCLUDE_CHILDREN, left to right). Nodes carry data-state-id, edges data-transition-id.
const SVG = 'http://www.w3.org/2000/svg';
const FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const LABEL_FONT = '10px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace';

let elkLoading;
/** elkjs (1.5 MB) is loaded by the deployment page only: the fleet's first screen does not wait for it. */
export function loadElk() {
  elkLoading ??= new Promise((resolve, reject) => {
    if (globalThis.ELK) {
      resolve(globalThis.ELK);
      return;
    }
    const script = document.createElement('script');
    script.src = '/ui/vendor/elk.bundled.js';
    script.onload = () => resolve(globalThis.ELK);
    script.onerror = () => reject(new Error('could not load the layout engine (/ui/vendor/elk.bundled.js)'));
    document.head.append(script);
  });
  return elkLoading;
}

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
const MAIN_PATH = new Set(['idle', 'syncing', 'applying', 'verifying', 'healthy']);
/** Transitions of the root itself ("from any state") start at this pseudo-node, left of all. */
export const ANY_STATE = '__any';

/** The kind of event an edge of the readable view bundles: all `error: *` together, all `done: *`, else the event. */
function bundleKey(t) {
  if (t.kind === 'error') return 'error';
  if (t.kind === 'done') return 'done';
  return eventLabel(t);
}

/**
 * The edges of a view. `full`: one edge per transition and target, as the machine has them.
 * Readable: each end is moved to its nearest visible state (a collapsed compound stands for
 * everything inside it), edges that stay inside one collapsed box are left out (the box shows
 * its current sub-state instead), targetless ones too, and the rest are bundled per source,
 * target and kind of event (`error ×5`), guards kept for the hover text.
 */
export function viewEdges(machine, { full, visibleOf, rootId }) {
  const edges = [];
  if (full) {
    for (const t of machine.transitions) {
      const targets = t.targets.length > 0 ? t.targets : [t.source];
      const source = t.source === rootId && t.targets.length > 0 ? ANY_STATE : t.source;
      targets.forEach((target, i) => {
        edges.push({ id: `${t.id}#${i}`, transitions: [t], source, target, lines: i === 0 ? edgeLines(t) : [] });
      });
    }
    return edges;
  }
  const bundles = new Map();
  for (const t of machine.transitions) {
    if (t.targets.length === 0) continue;
    const source = t.source === rootId ? ANY_STATE : visibleOf(t.source);
    for (const raw of t.targets) {
      const target = visibleOf(raw);
      // inside one collapsed box: drawn when that box is expanded
      if (source === target && visibleOf(t.source) !== t.source) continue;
      const key = `${source}>${target}>${bundleKey(t)}`;
      let b = bundles.get(key);
      if (!b) bundles.set(key, (b = { id: `bundle:${key}`, transitions: [], source, target, lines: [] }));
      if (!b.transitions.includes(t)) b.transitions.push(t);
    }
  }
  for (const b of bundles.values()) {
    const n = b.transitions.length;
    const labels = b.transitions.map(eventLabel);
    // short: the kind for invocations (`done`, `error ×5`), the event otherwise; the rest on hover
    const short = b.transitions[0].kind === 'done' || b.transitions[0].kind === 'error' ? bundleKey(b.transitions[0]) : labels[0];
    b.lines = [`${short}${n > 1 ? ` ×${n}` : ''}`];
    edges.push(b);
  }
  return edges;
}

/** Lays out the current view: `expanded` compound states show their children, others are one box. */
export async function layoutMachine(machine, { full = true, expanded = new Set() } = {}) {
  const byId = new Map(machine.states.map((st) => [st.id, st]));
  const root = machine.states.find((st) => st.parent === null);
  const isOpen = (st) => st.children.length > 0 && (full || st === root || expanded.has(st.id));
  // the nearest state on the way up whose every ancestor is open
  const visibleOf = (id) => {
    let shown = id;
    for (let st = byId.get(id); st && st.parent; st = byId.get(st.parent)) {
      if (!isOpen(byId.get(st.parent))) shown = st.parent;
    }
    return shown;
  };
  // widest "current sub-state" a collapsed box may have to show
  const subWidth = (st) => Math.max(0, ...machine.states.filter((x) => x.path.startsWith(`${st.path}.`)).map((x) => measure(x.path.slice(st.path.length + 1), LABEL_FONT)));
  const node = (id) => {
    const st = byId.get(id);
    const labelWidth = measure(st.key, `600 ${FONT}`);
    if (isOpen(st)) {
      return {
        id,
        labels: [{ text: st.key, width: labelWidth + (st === root ? 0 : 18), height: 14 }],
        layoutOptions: { 'elk.padding': '[top=30,left=14,bottom=14,right=14]' },
        children: st.children.map(node),
      };
    }
    if (st.children.length > 0) {
      // collapsed: the name, a ⊕ to expand, and the current sub-state under it
      return { id, width: Math.max(88, labelWidth + 40, subWidth(st) + 24, measure(`${st.children.length} sub-states`, LABEL_FONT) + 24), height: 46 };
    }
    const invokeText = st.invoke.map((i) => `invoke ${i.src}`).join(', ');
    const width = Math.max(72, labelWidth + 28, invokeText ? measure(invokeText, LABEL_FONT) + 24 : 0);
    return { id, width, height: invokeText ? 44 : 30 };
  };
  const edges = viewEdges(machine, { full, visibleOf, rootId: root.id }).map((e) => {
    const label = e.lines.length ? [{ text: e.lines.join('\n'), width: Math.max(...e.lines.map((l) => measure(l, LABEL_FONT))) + 6, height: e.lines.length * 12 + 2 }] : [];
    return { ...e, labels: label };
  });
  const rootNode = node(root.id);
  const anyUsed = edges.some((e) => e.source === ANY_STATE);
  if (anyUsed) rootNode.children.unshift({ id: ANY_STATE, width: Math.max(72, measure('any state', `600 ${FONT}`) + 24), height: 30 });
  // readable: only the happy path is chained left to right; failed, rolling-back and stopped
  // find their place beside it from their own edges
  const chained = full ? root.children : root.children.filter((id) => MAIN_PATH.has(byId.get(id).key));
  const order = [...(anyUsed ? [ANY_STATE] : []), ...chained];
  const hints = order.slice(1).map((id, i) => ({ id: `order:${i}`, sources: [order[i]], targets: [id], layoutOptions: ORDER_EDGE }));
  const graph = {
    id: '__graph',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.direction': 'RIGHT',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': full ? '28' : '16',
      'elk.spacing.nodeNode': '18',
      'elk.spacing.edgeLabel': '2',
      'elk.edgeLabels.placement': 'CENTER',
      ...ORDER,
      // absolute coordinates for every shape and edge: no per-container offsets to add up
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
    },
    children: [rootNode],
    edges: [...edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target], labels: e.labels })), ...hints],
  };
  const ELK = await loadElk();
  const laid = await new ELK().layout(graph);
  return { laid, edges, visibleOf, isOpen };
}

function hoverText(t) {
  return `${eventLabel(t)}${t.guard ? `  [${t.guard}]` : ''}\n  ${t.source} → ${t.targets.join(', ') || '(no target: actions only)'}${t.actions.length ? `\n  actions: ${t.actions.join(', ')}` : ''}${t.reenter ? '\n  reenter' : ''}`;
}

/**
 * Draws the chart into `container` and returns the API the page uses. The default view is the
 * readable one: top-level states in the definition's order, compound states collapsed to one box
 * that shows the current sub-state (click to expand, click its title to collapse), edges
 * bundled, guards in the hover text. `setFull(true)` draws every state and transition.
 */
export async function renderStatechart(container, machine, { onViewChange } = {}) {
  const byId = new Map(machine.states.map((st) => [st.id, st]));
  const stateByPath = new Map(machine.states.map((st) => [st.path, st]));
  // the root box has its own border: little more is needed around it
  const margin = 6;
  const view = { full: false, expanded: new Set() };
  let scale = 1;
  let svg;
  let width = 0;
  let height = 0;
  let shapes = new Map();
  let drawn = [];
  let visibleOf = (id) => id;
  let currentPath = null;
  let currentRow = null;

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
  const applyScale = () => {
    svg.setAttribute('width', String(Math.round(width * scale)));
    svg.setAttribute('height', String(Math.round(height * scale)));
  };

  const draw = async () => {
    const layout = await layoutMachine(machine, view);
    const { laid, edges } = layout;
    visibleOf = layout.visibleOf;
    drawn = edges;
    shapes = new Map();
    const collect = (n) => {
      if (n.id !== '__graph') shapes.set(n.id, n);
      for (const c of n.children ?? []) collect(c);
    };
    collect(laid);
    width = Math.ceil(laid.width + margin * 2);
    height = Math.ceil(laid.height + margin * 2);
    svg = s('svg', { xmlns: SVG, class: `statechart ${view.full ? 'full' : 'readable'}`, viewBox: `${-margin} ${-margin} ${width} ${height}`, 'data-machine-id': machine.id, 'data-machine-version': machine.version, 'data-view': view.full ? 'full' : 'readable', role: 'img', 'aria-label': `statechart ${machine.id} v${machine.version}` });
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
      const open = layout.isOpen(st);
      const collapsed = !open && st.children.length > 0;
      const g = s('g', {
        class: `state state-${st.type} top-${st.path.split('.')[0] || 'root'}${st.depth === 0 ? ' root' : ''}${collapsed ? ' collapsed' : ''}${open && st.depth > 0 ? ' expanded' : ''}`,
        'data-state-id': st.id,
        'data-state-path': st.path,
        ...(collapsed ? { 'data-collapsed': 'true' } : {}),
        ...(open && st.depth > 0 ? { 'data-expanded': 'true' } : {}),
        transform: `translate(${shape.x},${shape.y})`,
      });
      g.append(s('title', {}, document.createTextNode(`${st.path || st.id} (${st.type})${st.invoke.length ? `\ninvokes ${st.invoke.map((i) => `${i.id}: ${i.src}`).join(', ')}` : ''}${collapsed ? `\n${st.children.length} sub-states: click to expand` : open && st.depth > 0 && !view.full ? '\nclick the title to collapse' : ''}`)));
      g.append(s('rect', { width: shape.width, height: shape.height, rx: open ? 10 : 8 }));
      if (open) {
        // the title bar collapses it again (a hit area under the text, so the text stays visible)
        if (st.depth > 0 && !view.full) g.append(s('g', { class: 'header-hit', 'data-collapse': st.id }, s('rect', { width: shape.width, height: 26 })));
        g.append(s('text', { x: 12, y: 19, class: 'state-name' }, document.createTextNode(st.depth === 0 ? `${st.key}  ·  machine v${machine.version}` : st.key)));
        if (st.depth > 0 && !view.full) {
          g.append(s('g', { class: 'toggle', 'data-collapse': st.id, transform: `translate(${measure(st.key, `600 ${FONT}`) + 18},6)` }, s('rect', { width: 14, height: 14, rx: 3 }), s('text', { x: 7, y: 11, 'text-anchor': 'middle' }, document.createTextNode('−'))));
        }
      } else if (collapsed) {
        g.append(s('text', { x: 12, y: 19, class: 'state-name' }, document.createTextNode(st.key)));
        g.append(s('g', { class: 'toggle', transform: `translate(${shape.width - 22},7)` }, s('rect', { width: 14, height: 14, rx: 3 }), s('text', { x: 7, y: 11, 'text-anchor': 'middle' }, document.createTextNode('+'))));
        g.append(s('text', { x: 12, y: 36, class: 'substate', 'data-substate-of': st.id }, document.createTextNode(`${st.children.length} sub-states`)));
      } else {
        const hasInvoke = st.invoke.length > 0;
        g.append(s('text', { x: shape.width / 2, y: hasInvoke ? 18 : 19, class: 'state-name', 'text-anchor': 'middle' }, document.createTextNode(st.key)));
        if (hasInvoke) g.append(s('text', { x: shape.width / 2, y: 34, class: 'invoke', 'text-anchor': 'middle' }, document.createTextNode(st.invoke.map((i) => `invoke ${i.src}`).join(', '))));
        if (st.type === 'final') g.append(s('rect', { x: 3, y: 3, width: shape.width - 6, height: shape.height - 6, rx: 6, class: 'final-ring' }));
      }
      nodesLayer.append(g);
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

    const meta = new Map(edges.map((e) => [e.id, e]));
    const groups = new Map();
    for (const e of laid.edges ?? []) {
      const m = meta.get(e.id);
      if (!m) continue; // an ordering hint, not a transition
      const groupId = view.full ? m.transitions[0].id : m.id;
      let g = groups.get(groupId);
      if (!g) {
        if (view.full) {
          const t = m.transitions[0];
          g = s('g', { class: `transition kind-${t.kind}${t.targets.length === 0 ? ' targetless' : ''}${t.reenter ? ' reenter' : ''}`, 'data-transition-id': t.id, 'data-event': t.event, 'data-source': t.source, 'data-targets': t.targets.join(' ') });
          g.append(s('title', {}, document.createTextNode(hoverText(t))));
        } else {
          const kinds = new Set(m.transitions.map((t) => t.kind));
          const kind = kinds.size === 1 ? [...kinds][0] : 'mixed';
          g = s('g', { class: `transition bundle kind-${kind}`, 'data-bundle-id': m.id, 'data-transitions': m.transitions.map((t) => t.id).join(' '), 'data-source': m.source, 'data-target': m.target });
          // guards on hover, not as permanent labels
          g.append(s('title', {}, document.createTextNode(`${m.transitions.length} transition${m.transitions.length > 1 ? 's' : ''}:\n${m.transitions.map(hoverText).join('\n')}`)));
        }
        groups.set(groupId, g);
        edgesLayer.append(g);
      }
      for (const section of e.sections ?? []) {
        const points = [section.startPoint, ...(section.bendPoints ?? []), section.endPoint];
        const d = points.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
        g.append(s('path', { d, 'marker-end': 'url(#arrow)' }));
        // a wide invisible stroke, so hovering an edge (for its guards) is easy
        if (!view.full) g.append(s('path', { d, class: 'hit' }));
      }
      for (const label of e.labels ?? []) {
        const lg = s('g', { class: 'edge-label', 'data-label-of': groupId, transform: `translate(${label.x},${label.y})` });
        lg.append(s('title', {}, document.createTextNode(m.transitions.map(hoverText).join('\n'))));
        lg.append(s('rect', { x: -2, y: -1, width: label.width + 2, height: label.height + 1, rx: 3 }));
        label.text.split('\n').forEach((line, i) => {
          lg.append(s('text', { x: 1, y: 10 + i * 12, class: i === 0 ? 'event' : 'guard' }, document.createTextNode(line)));
        });
        labelsLayer.append(lg);
      }
    }

    svg.addEventListener('click', (event) => {
      if (view.full) return;
      const collapse = event.target.closest?.('[data-collapse]');
      if (collapse) {
        void api.collapse(collapse.getAttribute('data-collapse'));
        return;
      }
      const box = event.target.closest?.('[data-collapsed="true"]');
      if (box) void api.expand(box.getAttribute('data-state-id'));
    });
    container.replaceChildren(svg);
    applyScale();
    if (currentPath !== null) paintState();
    if (currentRow !== null) paintTransition();
    onViewChange?.(api);
  };

  function paintState() {
    const current = resolve(currentPath);
    for (const el of svg.querySelectorAll('.state.active, .state.current')) el.classList.remove('active', 'current');
    for (const el of svg.querySelectorAll('[data-substate-of]')) {
      const st = byId.get(el.getAttribute('data-substate-of'));
      el.textContent = `${st.children.length} sub-states`;
      el.classList.remove('now');
    }
    svg.dataset.currentState = currentPath ?? '';
    delete svg.dataset.highlighted;
    if (!current) return null;
    const shown = byId.get(visibleOf(current.id));
    svg.dataset.highlighted = shown.id;
    for (let st = shown; st; st = st.parent ? byId.get(st.parent) : null) {
      svg.querySelector(`[data-state-id="${CSS.escape(st.id)}"]`)?.classList.add(st === shown ? 'current' : 'active');
    }
    // a collapsed box tells which of its sub-states is current
    const sub = svg.querySelector(`[data-substate-of="${CSS.escape(shown.id)}"]`);
    if (sub && current !== shown) {
      sub.textContent = `▸ ${(currentPath ?? '').slice(shown.path.length + 1) || current.path.slice(shown.path.length + 1)}`;
      sub.classList.add('now');
    }
    return current.id;
  }

  function paintTransition() {
    for (const el of svg.querySelectorAll('.transition.last')) {
      el.classList.remove('last');
      for (const p of el.querySelectorAll('path:not(.hit)')) p.setAttribute('marker-end', 'url(#arrow)');
    }
    for (const el of svg.querySelectorAll('.edge-label.last')) el.classList.remove('last');
    delete svg.dataset.lastTransition;
    delete svg.dataset.lastEdge;
    const row = currentRow;
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
    svg.dataset.lastTransition = hit.id;
    let g;
    if (view.full) {
      g = svg.querySelector(`[data-transition-id="${CSS.escape(hit.id)}"]`);
    } else {
      // the bundle holding it whose ends are where this step went (a bundle may hold a transition twice over targets)
      const target = visibleOf(to.id);
      const edge = drawn.find((e) => e.transitions.includes(hit) && e.target === target) ?? drawn.find((e) => e.transitions.includes(hit));
      if (edge) g = svg.querySelector(`[data-bundle-id="${CSS.escape(edge.id)}"]`);
    }
    if (!g) return hit.id; // inside a collapsed box: the box shows the sub-state instead
    g.classList.add('last');
    svg.dataset.lastEdge = g.getAttribute('data-bundle-id') ?? hit.id;
    for (const p of g.querySelectorAll('path:not(.hit)')) p.setAttribute('marker-end', 'url(#arrow-last)');
    const labelOf = g.getAttribute('data-bundle-id') ?? hit.id;
    svg.querySelector(`[data-label-of="${CSS.escape(labelOf)}"]`)?.classList.add('last');
    return hit.id;
  }

  const api = {
    get width() {
      return width;
    },
    get height() {
      return height;
    },
    get svg() {
      return svg;
    },
    get full() {
      return view.full;
    },
    get expanded() {
      return [...view.expanded];
    },
    setScale(next) {
      scale = Math.max(0.2, Math.min(2, next));
      applyScale();
      return scale;
    },
    get scale() {
      return scale;
    },
    fitScale: () => Math.min(1, (container.clientWidth - 4) / width),
    async expand(id) {
      view.expanded.add(id);
      // its ancestors too: an expanded state inside a collapsed one would not show
      for (let st = byId.get(id); st?.parent; st = byId.get(st.parent)) if (byId.get(st.parent).parent) view.expanded.add(st.parent);
      await draw();
    },
    async collapse(id) {
      for (const open of [...view.expanded]) if (open === id || open.startsWith(`${id}.`)) view.expanded.delete(open);
      await draw();
    },
    async setFull(full) {
      view.full = full;
      await draw();
    },
    async collapseAll() {
      view.full = false;
      view.expanded.clear();
      await draw();
    },
    /** Highlights the state at `path` (the visible box holding it, and its ancestors); returns its id. */
    highlight(path) {
      currentPath = path ?? null;
      return paintState();
    },
    scrollTo(path) {
      const current = resolve(path);
      const shape = current && shapes.get(visibleOf(current.id));
      if (!shape) return;
      const x = (shape.x + shape.width / 2 + margin) * scale - container.clientWidth / 2;
      const y = (shape.y + shape.height / 2 + margin) * scale - container.clientHeight / 2;
      container.scrollTo({ left: Math.max(0, x), top: Math.max(0, y), behavior: 'smooth' });
    },
    /** Marks the edge a journaled transition took (from → to on event); returns the transition's id or null. */
    markTransition(row) {
      currentRow = row ?? null;
      return paintTransition();
    },
  };
  await draw();
  return api;
}
