/* global URLSearchParams, clearInterval, document, history, location, setInterval */
// /ui: every deployment the token can see, with its state, time in state and last error,
// filtered by project and state, kept current by GET /api/events (a transition is a hint to
// re-read the list) and a slow poll as the safety net.
import { AuthError, api, followEvents } from './api.js';
import { STATES, debounce, h, since, stateBadge, tickSince } from './util.js';

const POLL_MS = 30_000;

export async function showList({ view, signal, setLive, onAuthError }) {
  document.title = 'keelson · deployments';
  document.getElementById('crumbs').replaceChildren(h('span', {}, 'deployments'));
  const params = new URLSearchParams(location.search);
  const projectFilter = h('select', { id: 'filter-project', 'aria-label': 'project' }, h('option', { value: '' }, 'all projects'));
  const stateFilter = h('select', { id: 'filter-state', 'aria-label': 'state' }, h('option', { value: '' }, 'all states'), STATES.map((s) => h('option', { value: s }, s)));
  stateFilter.value = params.get('state') ?? '';
  const body = h('tbody');
  const count = h('span', { class: 'muted' });
  view.replaceChildren(
    h('section', { class: 'panel' },
      h('div', { class: 'toolbar' }, h('h1', {}, 'Deployments'), count, h('span', { class: 'spacer' }),
        h('label', {}, 'Project ', projectFilter), h('label', {}, 'State ', stateFilter)),
      h('table', { class: 'deployments', id: 'deployments' },
        h('thead', {}, h('tr', {}, ['Project', 'Environment', 'Image', 'State', 'In state', 'Generation', 'Last error'].map((c) => h('th', {}, c)))),
        body)),
  );

  let items = [];
  const flashed = new Set();
  const render = () => {
    const projects = [...new Set(items.map((d) => d.project))].sort();
    const wanted = projectFilter.value || params.get('project') || '';
    projectFilter.replaceChildren(h('option', { value: '' }, 'all projects'), projects.map((p) => h('option', { value: p }, p)));
    projectFilter.value = projects.includes(wanted) ? wanted : '';
    const shown = items.filter((d) => (!projectFilter.value || d.project === projectFilter.value) && (!stateFilter.value || d.current_status === stateFilter.value));
    count.textContent = `${shown.length} of ${items.length}`;
    body.replaceChildren(
      ...shown.map((d) => {
        const href = `/ui/deployments/${encodeURIComponent(d.project)}/${encodeURIComponent(d.environment)}`;
        const image = d.current_image_ref && d.current_image_ref !== d.image_ref ? `${d.current_image_ref} → ${d.image_ref}` : d.image_ref;
        return h('tr', { dataset: { deployment: `${d.project}/${d.environment}`, state: d.current_status }, class: flashed.has(d.id) ? 'flash' : null },
          h('td', {}, d.project),
          h('td', {}, h('a', { href }, d.environment)),
          h('td', { class: 'mono', title: image }, image),
          h('td', {}, stateBadge(d.current_status)),
          h('td', { dataset: { since: d.status_changed_at } }, since(d.status_changed_at)),
          h('td', { class: 'num' }, `${d.observed_generation}/${d.generation}`),
          h('td', { class: 'error-cell', title: d.last_error ?? '' }, d.last_error ?? ''));
      }),
    );
    if (shown.length === 0) body.append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, items.length ? 'No deployment matches the filters.' : 'No deployments yet.')));
    flashed.clear();
  };
  const syncUrl = () => {
    const q = new URLSearchParams();
    if (projectFilter.value) q.set('project', projectFilter.value);
    if (stateFilter.value) q.set('state', stateFilter.value);
    history.replaceState(null, '', `/ui${q.size ? `?${q}` : ''}`);
  };
  projectFilter.addEventListener('change', () => { params.delete('project'); syncUrl(); render(); });
  stateFilter.addEventListener('change', () => { syncUrl(); render(); });

  const load = async () => {
    try {
      items = (await api('/api/deployments', { signal })).items;
      render();
    } catch (error) {
      if (error instanceof AuthError) onAuthError(error);
      else if (!signal.aborted) throw error;
    }
  };
  const reload = debounce(load, 150);
  await load();

  const ticker = tickSince(body);
  const poll = setInterval(reload, POLL_MS);
  signal.addEventListener('abort', () => { clearInterval(ticker); clearInterval(poll); });
  followEvents('/api/events', {
    signal,
    onStatus: (status) => {
      setLive(status);
      if (status === 'unauthorized') onAuthError(new Error('the event stream answered 401'));
    },
    // level-based: anything missed while disconnected is in the list
    onOpen: () => reload(),
    onEvent: (event, row) => {
      if (event !== 'transition') return;
      flashed.add(row.deployment_id);
      reload();
    },
  });
}
