/* global URLSearchParams, clearInterval, clearTimeout, document, history, location, performance, setInterval, setTimeout */
// /ui: the fleet. Counts by state across every deployment the token can see (click one to
// filter) and per project, the deployments failing or in flight with their age in state, and
// one page of deployments at a time under filters (project, environment prefix, state) read from
// the server — so 10,000 deployments cost one small page, not a 10,000-row table. Live: every
// transition on GET /api/events is a hint to re-read (at most once a second), with a slow poll
// as the safety net.
import { AuthError, api, followEvents } from './api.js';
import { STATES, formatDuration, h, since, stateBadge, tickSince } from './util.js';

const POLL_MS = 30_000;
const PAGE_SIZE = 50;
const MIN_RELOAD_MS = 1000;
const IN_FLIGHT = ['syncing', 'applying', 'verifying', 'rolling-back', 'tearing-down'];

const deploymentHref = (d) => `/ui/deployments/${encodeURIComponent(d.project)}/${encodeURIComponent(d.environment)}`;

/** in_state_ms was measured at the server; keep counting from when it was read */
const sinceFrom = (d, readAt) => new Date(readAt - d.in_state_ms).toISOString();

export async function showList({ view, signal, setLive, onAuthError }) {
  const started = performance.now();
  document.title = 'keelson · fleet';
  document.getElementById('crumbs').replaceChildren(h('span', {}, 'fleet'));
  const params = new URLSearchParams(location.search);
  const filters = {
    project: params.get('project') ?? '',
    environment: params.get('environment') ?? '',
    state: params.get('state') ?? '',
    page: Math.max(0, Number(params.get('page') ?? 0) || 0),
  };

  const projectFilter = h('select', { id: 'filter-project', 'aria-label': 'project' }, h('option', { value: '' }, 'all projects'));
  const envFilter = h('input', { id: 'filter-env', type: 'search', placeholder: 'environment…', 'aria-label': 'environment starts with', value: filters.environment, spellcheck: 'false', autocomplete: 'off' });
  const stateFilter = h('select', { id: 'filter-state', 'aria-label': 'state' },
    h('option', { value: '' }, 'all states'), h('option', { value: 'in-flight' }, 'in flight'), STATES.map((s) => h('option', { value: s }, s)));
  stateFilter.value = filters.state;
  const counts = h('div', { class: 'fleet-counts', id: 'fleet-counts' });
  const projectsBody = h('tbody');
  const attentionBody = h('tbody');
  const attentionCount = h('span', { class: 'muted', id: 'attention-count' });
  const body = h('tbody');
  const count = h('span', { class: 'muted', id: 'deployments-count' });
  const pageInfo = h('span', { class: 'muted', id: 'page-info' });
  const prev = h('button', { type: 'button', id: 'page-prev' }, '◀ previous');
  const next = h('button', { type: 'button', id: 'page-next' }, 'next ▶');
  view.replaceChildren(
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h1', {}, 'Fleet'), h('span', { class: 'muted', id: 'fleet-total' })),
      counts,
      h('div', { class: 'fleet-grid' },
        h('div', {},
          h('div', { class: 'toolbar' }, h('h2', {}, 'Per project')),
          h('div', { class: 'scroll' }, h('table', { class: 'projects', id: 'projects' },
            h('thead', {}, h('tr', {}, ['Project', 'Deployments', 'Failed', 'In flight', 'States'].map((c) => h('th', {}, c)))), projectsBody))),
        h('div', {},
          h('div', { class: 'toolbar' }, h('h2', {}, 'Failing or in flight'), attentionCount),
          h('div', { class: 'scroll' }, h('table', { class: 'attention', id: 'attention' },
            h('thead', {}, h('tr', {}, ['Deployment', 'State', 'In state', 'Last error'].map((c) => h('th', {}, c)))), attentionBody))))),
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h2', {}, 'Deployments'), count, h('span', { class: 'spacer' }),
        h('label', {}, 'Project ', projectFilter), h('label', {}, 'Environment ', envFilter), h('label', {}, 'State ', stateFilter)),
      h('table', { class: 'deployments', id: 'deployments' },
        h('thead', {}, h('tr', {}, ['Project', 'Environment', 'Image', 'State', 'In state', 'Generation', 'Last error'].map((c) => h('th', {}, c)))),
        body),
      h('div', { class: 'pager' }, pageInfo, prev, next)),
  );

  let fleet = null;
  let pageData = null;
  let fleetReadAt = 0;
  let pageReadAt = 0;
  const flashed = new Set();

  const renderFleet = () => {
    if (!fleet) return;
    document.getElementById('fleet-total').textContent = `${fleet.total.toLocaleString('en')} deployments`;
    const inFlight = IN_FLIGHT.reduce((n, s) => n + fleet.by_state[s], 0);
    const tiles = [
      ['', 'all', fleet.total],
      ['in-flight', 'in flight', inFlight],
      ...STATES.map((s) => [s, s, fleet.by_state[s] ?? 0]),
    ];
    counts.replaceChildren(...tiles.map(([state, label, n]) =>
      h('button', { type: 'button', class: `count state-${state || 'all'}${filters.state === state ? ' selected' : ''}`, dataset: { state: state || 'all', count: n }, onclick: () => { filters.state = state; stateFilter.value = state; filters.page = 0; changed(); } },
        h('span', { class: 'n' }, n.toLocaleString('en')), h('span', { class: 'what' }, label))));
    const wanted = filters.project;
    projectFilter.replaceChildren(h('option', { value: '' }, 'all projects'), ...fleet.projects.map((p) => h('option', { value: p.project }, p.project)));
    projectFilter.value = fleet.projects.some((p) => p.project === wanted) ? wanted : '';
    projectsBody.replaceChildren(...fleet.projects.map((p) => {
      const flight = IN_FLIGHT.reduce((n, s) => n + p.by_state[s], 0);
      return h('tr', { dataset: { project: p.project } },
        h('td', {}, h('a', { href: `/ui?project=${encodeURIComponent(p.project)}`, onclick: (e) => { e.preventDefault(); filters.project = p.project; projectFilter.value = p.project; filters.page = 0; changed(); } }, p.project)),
        h('td', { class: 'num' }, p.total),
        h('td', { class: `num${p.by_state.failed ? ' error' : ''}` }, p.by_state.failed),
        h('td', { class: 'num' }, flight),
        h('td', {}, h('div', { class: 'mini-bar', title: STATES.filter((s) => p.by_state[s]).map((s) => `${s}: ${p.by_state[s]}`).join(', ') },
          STATES.filter((s) => p.by_state[s]).map((s) => {
            const seg = h('span', { class: `badge state-${s}` });
            seg.style.width = `${(p.by_state[s] / p.total) * 100}%`;
            seg.style.padding = '0';
            seg.style.borderRadius = '0';
            return seg;
          }))));
    }));
    if (fleet.projects.length === 0) projectsBody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No deployments yet.')));
    attentionCount.textContent = fleet.attention_total > fleet.attention.length ? `${fleet.attention.length} of ${fleet.attention_total}, longest first` : `${fleet.attention_total}, longest first`;
    attentionBody.replaceChildren(...fleet.attention.map((d) =>
      h('tr', { dataset: { attention: `${d.project}/${d.environment}`, state: d.current_status } },
        h('td', {}, h('a', { href: deploymentHref(d) }, `${d.project}/${d.environment}`)),
        h('td', {}, stateBadge(d.current_status)),
        h('td', { class: 'num', dataset: { since: sinceFrom(d, fleetReadAt) } }, formatDuration(d.in_state_ms)),
        h('td', { class: 'error-cell', title: d.last_error ?? '' }, d.last_error ?? ''))));
    if (fleet.attention.length === 0) attentionBody.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'Nothing failing or in flight.')));
  };

  const renderPage = () => {
    if (!pageData) return;
    const { items, total, offset } = pageData;
    count.textContent = `${total.toLocaleString('en')} matching`;
    pageInfo.textContent = total === 0 ? '' : `${offset + 1}–${offset + items.length} of ${total.toLocaleString('en')}`;
    prev.disabled = offset === 0;
    next.disabled = offset + items.length >= total;
    body.replaceChildren(...items.map((d) => {
      const image = d.current_image_ref && d.current_image_ref !== d.image_ref ? `${d.current_image_ref} → ${d.image_ref}` : d.image_ref;
      return h('tr', { dataset: { deployment: `${d.project}/${d.environment}`, state: d.current_status }, class: flashed.has(d.id) ? 'flash' : null },
        h('td', {}, d.project),
        h('td', {}, h('a', { href: deploymentHref(d) }, d.environment)),
        h('td', { class: 'mono', title: image }, image),
        h('td', {}, stateBadge(d.current_status)),
        h('td', { dataset: { since: sinceFrom(d, pageReadAt) } }, since(sinceFrom(d, pageReadAt))),
        h('td', { class: 'num' }, `${d.observed_generation}/${d.generation}`),
        h('td', { class: 'error-cell', title: d.last_error ?? '' }, d.last_error ?? ''));
    }));
    if (items.length === 0) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, total === 0 && !filters.project && !filters.environment && !filters.state ? 'No deployments yet.' : 'No deployment matches the filters.')));
    flashed.clear();
  };

  const query = () => {
    const q = new URLSearchParams();
    if (filters.project) q.set('project', filters.project);
    if (filters.environment) q.set('environment', filters.environment);
    if (filters.state) q.set('state', filters.state);
    return q;
  };
  const syncUrl = () => {
    const q = query();
    if (filters.page) q.set('page', String(filters.page));
    history.replaceState(null, '', `/ui${q.size ? `?${q}` : ''}`);
  };

  const readFleet = async () => {
    const q = filters.project ? `?project=${encodeURIComponent(filters.project)}` : '';
    fleet = await api(`/api/fleet${q}`, { signal });
    fleetReadAt = Date.now();
    renderFleet();
  };
  const readPage = async () => {
    const q = query();
    q.set('limit', String(PAGE_SIZE));
    q.set('offset', String(filters.page * PAGE_SIZE));
    pageData = await api(`/api/fleet/deployments?${q}`, { signal });
    pageReadAt = Date.now();
    renderPage();
  };
  const load = async () => {
    document.body.dataset.fleetLoads = String(Number(document.body.dataset.fleetLoads ?? 0) + 1);
    try {
      await Promise.all([readFleet(), readPage()]);
    } catch (error) {
      if (error instanceof AuthError) onAuthError(error);
      else if (!signal.aborted) throw error;
    }
  };

  // reloads are coalesced: at most one in flight, at most one per MIN_RELOAD_MS
  let timer;
  let running = null;
  let lastRun = 0;
  const reload = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (running) {
        await running;
        reload();
        return;
      }
      lastRun = Date.now();
      running = load().catch(() => {}).finally(() => { running = null; });
    }, Math.max(150, MIN_RELOAD_MS - (Date.now() - lastRun)));
  };
  const changed = () => {
    syncUrl();
    renderFleet();
    void load();
  };

  projectFilter.addEventListener('change', () => { filters.project = projectFilter.value; filters.page = 0; changed(); });
  stateFilter.addEventListener('change', () => { filters.state = stateFilter.value; filters.page = 0; changed(); });
  let typing;
  envFilter.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      const value = envFilter.value.trim().toLowerCase();
      if (value && !/^[a-z0-9-]{1,63}$/.test(value)) return;
      filters.environment = value;
      filters.page = 0;
      changed();
    }, 200);
  });
  prev.addEventListener('click', () => { filters.page = Math.max(0, filters.page - 1); syncUrl(); void readPage(); });
  next.addEventListener('click', () => { filters.page += 1; syncUrl(); void readPage(); });

  await load();
  // time to first screen, for operators and the browser test's figure
  document.body.dataset.fleetReady = 'true';
  document.body.dataset.fleetFirstScreenMs = String(Math.round(performance.now() - started));

  const ticker = tickSince(view);
  const poll = setInterval(reload, POLL_MS);
  signal.addEventListener('abort', () => { clearInterval(ticker); clearInterval(poll); clearTimeout(timer); });
  followEvents('/api/events', {
    signal,
    onStatus: (status) => {
      setLive(status);
      if (status === 'unauthorized') onAuthError(new Error('the event stream answered 401'));
    },
    // level-based: anything missed while disconnected is in the next read
    onOpen: () => reload(),
    onEvent: (event, row) => {
      if (event !== 'transition') return;
      document.body.dataset.fleetEvents = String(Number(document.body.dataset.fleetEvents ?? 0) + 1);
      flashed.add(row.deployment_id);
      reload();
    },
  });
}
