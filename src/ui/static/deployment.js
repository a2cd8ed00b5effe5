/* global clearInterval, document, window */
// /ui/deployments/:project/:env: the statechart with the actor's current state highlighted and
// the last transition's edge marked, the transition timeline, the history with per-phase bars
// and the persisted snapshot — all kept current by the deployment's SSE stream (replayed from
// the last seq shown, so nothing between the first read and the stream is lost).
import { AuthError, api, followEvents } from './api.js';
import { renderStatechart } from './statechart.js';
import { debounce, formatDuration, formatTime, h, since, stateBadge, tickSince, topOf } from './util.js';

const TRANSITIONS_SHOWN = 200;

// the states the page highlighted, in order: operators (and the browser test) can replay it
window.__stateLog = [];

export async function showDeployment({ view, signal, setLive, onAuthError, project, env }) {
  document.title = `keelson · ${project}/${env}`;
  document.getElementById('crumbs').replaceChildren(
    h('a', { href: '/ui' }, 'deployments'), ' / ', h('span', {}, project), ' / ', h('strong', {}, env));
  const base = `/api/projects/${encodeURIComponent(project)}/deployments/${encodeURIComponent(env)}`;

  const summary = h('div', { class: 'summary', id: 'summary' });
  const chartBox = h('div', { class: 'chart-box', id: 'chart' }, h('p', { class: 'muted' }, 'Laying out the statechart…'));
  const zoomLabel = h('span', { class: 'muted zoom-label' });
  const zoom = (f) => () => { zoomLabel.textContent = `${Math.round(chart.setScale(f(chart.scale)) * 100)}%`; };
  const chartTools = h('div', { class: 'toolbar' },
    h('h2', {}, 'Statechart'), h('span', { class: 'muted', id: 'machine-version' }),
    h('span', { class: 'spacer' }),
    h('span', { class: 'legend' },
      h('span', { class: 'legend-item current' }, 'current state'),
      h('span', { class: 'legend-item last' }, 'last transition'),
      h('span', { class: 'legend-item kind-error' }, 'error'),
      h('span', { class: 'legend-item kind-done' }, 'done')),
    h('button', { type: 'button', onclick: zoom((x) => x / 1.25), title: 'zoom out' }, '−'),
    zoomLabel,
    h('button', { type: 'button', onclick: zoom((x) => x * 1.25), title: 'zoom in' }, '+'),
    h('button', { type: 'button', onclick: zoom(() => chart.fitScale()) }, 'fit'),
    h('button', { type: 'button', onclick: zoom(() => 1) }, '100%'));
  const timelineBody = h('tbody');
  const historyBox = h('div', { class: 'history', id: 'history' });
  const snapshotPre = h('pre', { class: 'json', id: 'snapshot' });
  const snapshotMeta = h('span', { class: 'muted' });
  view.replaceChildren(
    summary,
    h('section', { class: 'panel' }, chartTools, chartBox),
    h('div', { class: 'columns' },
      h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Transitions'), h('span', { class: 'muted' }, 'deployment_transitions, newest first')),
        h('div', { class: 'scroll' }, h('table', { class: 'timeline', id: 'timeline' },
          h('thead', {}, h('tr', {}, ['seq', 'time', 'event', 'from', 'to', 'gen'].map((c) => h('th', {}, c)))), timelineBody))),
      h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'History'), h('span', { class: 'muted' }, 'completed actions with per-phase timings')), historyBox)),
    h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Persisted snapshot'), snapshotMeta), snapshotPre),
  );

  const guard = async (promise) => {
    try {
      return await promise;
    } catch (error) {
      if (error instanceof AuthError) onAuthError(error);
      throw error;
    }
  };

  const [machine, detail, page] = await guard(Promise.all([
    api('/api/machine', { signal }),
    api(base, { signal }),
    api(`${base}/transitions?limit=${TRANSITIONS_SHOWN}`, { signal }),
  ]));
  document.getElementById('machine-version').textContent = `${machine.id} · machine v${machine.version} · ${machine.states.length} states · ${machine.transitions.length} transitions`;

  const chart = await renderStatechart(chartBox, machine);
  chart.setScale(Math.max(0.6, chart.fitScale()));
  zoomLabel.textContent = `${Math.round(chart.scale * 100)}%`;

  /** newest first, unique by seq */
  let transitions = page.items.slice();
  const lastSeq = () => transitions[0]?.seq ?? 0;
  let deployment = detail.deployment;

  const renderSummary = (snapshot) => {
    const d = deployment;
    const current = transitions[0]?.to_state ?? snapshot?.state ?? d.current_status;
    summary.replaceChildren(
      h('div', { class: 'summary-main' },
        h('h1', {}, `${d.project} / ${d.environment}`),
        stateBadge(current),
        h('span', { class: 'muted' }, 'for ', h('span', { dataset: { since: transitions[0]?.at ?? d.status_changed_at } }, since(transitions[0]?.at ?? d.status_changed_at)))),
      h('dl', {},
        h('dt', {}, 'desired'), h('dd', { class: 'mono' }, `${d.image_ref} (${d.desired_status}, generation ${d.generation})`),
        h('dt', {}, 'running'), h('dd', { class: 'mono' }, d.current_image_ref ? `${d.current_image_ref}${d.current_sha ? ` @ ${d.current_sha.slice(0, 12)}` : ''}` : '–'),
        h('dt', {}, 'observed generation'), h('dd', {}, String(d.observed_generation)),
        h('dt', {}, 'deployed'), h('dd', {}, formatTime(d.deployed_at)),
        h('dt', {}, 'last error'), h('dd', { class: d.last_error ? 'error' : 'muted', id: 'last-error' }, d.last_error ?? 'none')),
    );
  };

  const renderTimeline = () => {
    timelineBody.replaceChildren(...transitions.map((t) =>
      h('tr', { dataset: { seq: t.seq, to: t.to_state } },
        h('td', { class: 'num' }, t.seq),
        h('td', { class: 'mono' }, formatTime(t.at)),
        h('td', { class: 'mono' }, t.event),
        h('td', {}, t.from_state ? stateBadge(t.from_state) : h('span', { class: 'muted' }, '–')),
        h('td', {}, stateBadge(t.to_state)),
        h('td', { class: 'num' }, t.generation))));
    if (transitions.length === 0) timelineBody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No transitions journaled yet.')));
  };

  const renderHistory = (items) => {
    if (items.length === 0) {
      historyBox.replaceChildren(h('p', { class: 'muted' }, 'No completed actions yet.'));
      return;
    }
    historyBox.replaceChildren(...items.map((item) => {
      const starts = item.phases.map((p) => Date.parse(p.started_at));
      const ends = item.phases.map((p, i) => (p.finished_at ? Date.parse(p.finished_at) : starts[i] + (p.duration_ms ?? 0)));
      const t0 = Math.min(...starts);
      const total = Math.max(1, Math.max(...ends) - t0);
      return h('article', { class: `action status-${item.status}`, dataset: { historyId: item.id, action: item.action } },
        h('header', {},
          h('strong', {}, item.action), ' ', h('span', { class: `pill ${item.status}` }, item.status),
          h('span', { class: 'mono' }, ` ${item.image_ref}`),
          h('span', { class: 'muted' }, ` · gen ${item.generation} · ${formatTime(item.created_at)} · ${item.phases.length ? formatDuration(total) : ''}`)),
        item.phases.length
          ? h('div', { class: 'bars' }, item.phases.map((p, i) => {
            const bar = h('div', { class: `bar phase-${p.name}${p.error ? ' failed' : ''}`, title: `${p.name}: ${formatDuration(p.duration_ms)}${p.detail ? `\n${p.detail}` : ''}${p.error ? `\n${p.error}` : ''}` });
            // placed on the action's own time axis: gaps between phases stay visible
            bar.style.left = `${((starts[i] - t0) / total) * 100}%`;
            bar.style.width = `${Math.max(0.5, ((ends[i] - starts[i]) / total) * 100)}%`;
            return h('div', { class: 'bar-row', dataset: { phase: p.name } },
              h('span', { class: 'bar-name' }, p.name),
              h('div', { class: 'bar-track' }, bar),
              h('span', { class: 'bar-ms num' }, formatDuration(p.duration_ms)));
          }))
          : null,
        item.error ? h('p', { class: 'error' }, item.error) : null);
    }));
  };

  const renderSnapshot = (persisted) => {
    snapshotMeta.textContent = persisted.seq === null ? 'nothing persisted yet' : `state ${persisted.state} · seq ${persisted.seq} · machine v${persisted.machine_version} · ${formatTime(persisted.updated_at)}`;
    snapshotPre.textContent = JSON.stringify(persisted.snapshot, null, 2);
  };

  const showState = () => {
    const path = transitions[0]?.to_state ?? deployment.current_status;
    chart.highlight(path);
    chart.markTransition(transitions[0] ?? null);
    const log = window.__stateLog;
    if (log[log.length - 1] !== path) log.push(path);
    document.body.dataset.currentState = path;
    document.body.dataset.currentTop = topOf(path);
  };

  const refresh = async () => {
    const [fresh, history, persisted] = await guard(Promise.all([
      api(base, { signal }),
      api(`${base}/history?limit=20`, { signal }),
      api(`${base}/snapshot`, { signal }),
    ]));
    deployment = fresh.deployment;
    renderSummary(fresh.snapshot);
    renderHistory(history.items);
    renderSnapshot(persisted);
  };
  const refreshSoon = debounce(refresh, 120);

  renderTimeline();
  renderSummary(detail.snapshot);
  showState();
  chart.scrollTo(transitions[0]?.to_state ?? deployment.current_status);
  await refresh();

  const ticker = tickSince(summary);
  signal.addEventListener('abort', () => clearInterval(ticker));

  followEvents(`${base}/events`, {
    signal,
    lastEventId: lastSeq,
    onStatus: (status) => {
      setLive(status);
      if (status === 'unauthorized') onAuthError(new Error('the event stream answered 401'));
    },
    onOpen: () => refreshSoon(),
    onEvent: (event, row) => {
      if (event !== 'transition' || row.seq <= lastSeq()) return;
      transitions = [row, ...transitions].slice(0, TRANSITIONS_SHOWN);
      renderTimeline();
      showState();
      chart.scrollTo(row.to_state);
      renderSummary(null);
      refreshSoon();
    },
  });
}
