/* global HTMLElement, URLSearchParams, clearInterval, document, history, location, window */
// /ui/deployments/:project/:env: for a failed deployment, why it failed first (last_error, the
// failed phase and its duration, the pod and reason when the cluster said so); the statechart
// (readable by default: compound states collapsed, edges bundled) with the current state
// highlighted and the last transition's edge marked; time travel over deployment_transitions
// (slider and step buttons, deep link ?seq=N) showing each step's event, time, changed context
// and the matching history row's phases; the timeline, the history and the persisted snapshot —
// all kept current by the deployment's SSE stream (replayed from the last seq shown).
import { AuthError, api, followEvents } from './api.js';
import { renderStatechart } from './statechart.js';
import { debounce, formatDuration, formatTime, h, since, stateBadge, tickSince, topOf } from './util.js';

const TRANSITIONS_SHOWN = 500;
const DEEP_LINK_PAGES = 20;

// the states the page highlighted, in order: operators (and the browser test) can replay it
window.__stateLog = [];

/** `pod shop-7d9c-abcde: container web is waiting: CrashLoopBackOff (back-off …)` → its parts. */
export function clusterCause(text) {
  const match = /pod ([a-z0-9][-a-z0-9.]*): container ([^\s:]+) (?:is waiting|terminated|is terminated): ([A-Za-z]+)(?: \(([^)]*)\))?/.exec(text ?? '');
  return match ? { pod: match[1], container: match[2], reason: match[3], message: match[4] ?? null } : null;
}

/** The phase that failed: the one carrying an error, else the last one. */
export function failedPhase(item) {
  if (!item) return null;
  return item.phases.find((p) => p.error) ?? item.phases.at(-1) ?? null;
}

const CONTEXT_FIELDS = [
  ['image_ref', 'image'],
  ['generation', 'generation'],
  ['action_id', 'action'],
  ['attempt', 'attempt'],
  ['last_error', 'last error'],
];

function phaseBars(item, { at } = {}) {
  if (item.phases.length === 0) return null;
  const starts = item.phases.map((p) => Date.parse(p.started_at));
  const ends = item.phases.map((p, i) => (p.finished_at ? Date.parse(p.finished_at) : starts[i] + (p.duration_ms ?? 0)));
  const t0 = Math.min(...starts);
  const total = Math.max(1, Math.max(...ends) - t0);
  const atMs = at ? Date.parse(at) : null;
  return h('div', { class: 'bars' }, item.phases.map((p, i) => {
    const bar = h('div', { class: `bar phase-${p.name}${p.error ? ' failed' : ''}`, title: `${p.name}: ${formatDuration(p.duration_ms)}${p.detail ? `\n${p.detail}` : ''}${p.error ? `\n${p.error}` : ''}` });
    // placed on the action's own time axis: gaps between phases stay visible
    bar.style.left = `${((starts[i] - t0) / total) * 100}%`;
    bar.style.width = `${Math.max(0.5, ((ends[i] - starts[i]) / total) * 100)}%`;
    const now = atMs !== null && atMs >= starts[i] && atMs <= ends[i];
    return h('div', { class: `bar-row${now ? ' now' : ''}`, dataset: { phase: p.name } },
      h('span', { class: 'bar-name' }, p.name),
      h('div', { class: 'bar-track' }, bar),
      h('span', { class: 'bar-ms num' }, formatDuration(p.duration_ms)));
  }));
}

function historyCard(item, options) {
  const starts = item.phases.map((p) => Date.parse(p.started_at));
  const ends = item.phases.map((p, i) => (p.finished_at ? Date.parse(p.finished_at) : starts[i] + (p.duration_ms ?? 0)));
  const total = item.phases.length ? Math.max(...ends) - Math.min(...starts) : null;
  return h('article', { class: `action status-${item.status}`, dataset: { historyId: item.id, action: item.action, actionId: item.action_id } },
    h('header', {},
      h('strong', {}, item.action), ' ', h('span', { class: `pill ${item.status}` }, item.status),
      h('span', { class: 'mono' }, ` ${item.image_ref}`),
      h('span', { class: 'muted' }, ` · gen ${item.generation} · ${formatTime(item.created_at)} · ${total === null ? '' : formatDuration(total)}`)),
    phaseBars(item, options),
    item.error ? h('p', { class: 'error' }, item.error) : null);
}

export async function showDeployment({ view, signal, setLive, onAuthError, project, env }) {
  document.title = `keelson · ${project}/${env}`;
  document.getElementById('crumbs').replaceChildren(
    h('a', { href: '/ui' }, 'fleet'), ' / ', h('a', { href: `/ui?project=${encodeURIComponent(project)}` }, project), ' / ', h('strong', {}, env));
  const base = `/api/projects/${encodeURIComponent(project)}/deployments/${encodeURIComponent(env)}`;
  const pagePath = `/ui/deployments/${encodeURIComponent(project)}/${encodeURIComponent(env)}`;

  const failure = h('section', { class: 'panel failure', id: 'failure', hidden: true });
  const summary = h('div', { class: 'summary', id: 'summary' });
  const chartBox = h('div', { class: 'chart-box', id: 'chart' }, h('p', { class: 'muted' }, 'Laying out the statechart…'));
  const zoomLabel = h('span', { class: 'muted zoom-label' });
  const zoom = (f) => () => { zoomLabel.textContent = `${Math.round(chart.setScale(f(chart.scale)) * 100)}%`; };
  const fullButton = h('button', { type: 'button', id: 'chart-full', title: 'every state and transition, as defined' }, 'full chart');
  const collapseButton = h('button', { type: 'button', id: 'chart-collapse', title: 'collapse every compound state' }, 'collapse all');
  const chartTools = h('div', { class: 'toolbar' },
    h('h2', {}, 'Statechart'), h('span', { class: 'muted', id: 'machine-version' }),
    h('span', { class: 'spacer' }),
    h('span', { class: 'legend' },
      h('span', { class: 'legend-item current' }, 'current state'),
      h('span', { class: 'legend-item last' }, 'last transition'),
      h('span', { class: 'legend-item kind-error' }, 'error'),
      h('span', { class: 'legend-item kind-done' }, 'done'),
      h('span', { class: 'muted' }, '· click a box to expand it · hover an edge for its guards')),
    collapseButton, fullButton,
    h('button', { type: 'button', onclick: zoom((x) => x / 1.25), title: 'zoom out' }, '−'),
    zoomLabel,
    h('button', { type: 'button', onclick: zoom((x) => x * 1.25), title: 'zoom in' }, '+'),
    h('button', { type: 'button', onclick: zoom(() => chart.fitScale()) }, 'fit'),
    h('button', { type: 'button', onclick: zoom(() => 1) }, '100%'));

  // time travel
  const slider = h('input', { type: 'range', id: 'step-slider', min: 0, max: 0, value: 0, 'aria-label': 'step' });
  const stepLabel = h('span', { class: 'step-label', id: 'step-label' });
  const liveButton = h('button', { type: 'button', id: 'step-live', title: 'follow the newest transition' }, '● live');
  const stepButton = (id, text, title, fn) => h('button', { type: 'button', id, title, onclick: fn }, text);
  const stepDetail = h('div', { class: 'step-detail', id: 'step-detail' });
  const stepHistory = h('div', { class: 'step-history', id: 'step-history' });
  const travel = h('section', { class: 'panel', id: 'time-travel' },
    h('div', { class: 'toolbar' }, h('h2', {}, 'Time travel'), h('span', { class: 'muted' }, 'step through deployment_transitions; the link keeps the step'),
      h('span', { class: 'spacer' }),
      stepButton('step-first', '|◀', 'first step', () => go(0)),
      stepButton('step-prev', '◀', 'previous step', () => go((cursor ?? steps().length - 1) - 1)),
      slider,
      stepButton('step-next', '▶', 'next step', () => go((cursor ?? steps().length - 1) + 1)),
      stepButton('step-last', '▶|', 'last step', () => go(steps().length - 1)),
      liveButton, stepLabel),
    h('div', { class: 'step-body' }, stepDetail, stepHistory));

  const timelineBody = h('tbody');
  const historyBox = h('div', { class: 'history', id: 'history' });
  const snapshotPre = h('pre', { class: 'json', id: 'snapshot' });
  const snapshotMeta = h('span', { class: 'muted' });
  view.replaceChildren(
    failure,
    summary,
    h('section', { class: 'panel' }, chartTools, chartBox),
    travel,
    h('div', { class: 'columns' },
      h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Transitions'), h('span', { class: 'muted' }, 'deployment_transitions, newest first; click one to travel there')),
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

  const [machine, detail, first, firstHistory] = await guard(Promise.all([
    api('/api/machine', { signal }),
    api(base, { signal }),
    api(`${base}/transitions?limit=${TRANSITIONS_SHOWN}`, { signal }),
    api(`${base}/history?limit=100`, { signal }),
  ]));
  document.getElementById('machine-version').textContent = `${machine.id} · machine v${machine.version} · ${machine.states.length} states · ${machine.transitions.length} transitions`;

  /** newest first, unique by seq */
  let transitions = first.items.slice();
  let olderCursor = first.next;
  const lastSeq = () => transitions[0]?.seq ?? 0;
  let deployment = detail.deployment;
  let historyItems = firstHistory.items;
  /** index into steps() (oldest first) while travelling; null: follow the newest */
  let cursor = null;
  /** a deep link to a step that is not (or no longer) journaled */
  let missingSeq = null;
  const steps = () => transitions.slice().reverse();

  // a deep link to a step older than the first page: read back until it is loaded
  const wanted = Number(new URLSearchParams(location.search).get('seq'));
  if (Number.isInteger(wanted) && wanted > 0) {
    for (let n = 0; n < DEEP_LINK_PAGES && olderCursor !== null && !transitions.some((t) => t.seq <= wanted); n++) {
      const more = await guard(api(`${base}/transitions?limit=500&before=${olderCursor}`, { signal }));
      transitions = [...transitions, ...more.items];
      olderCursor = more.next;
    }
    const index = steps().findIndex((t) => t.seq === wanted);
    if (index >= 0) cursor = index;
    else missingSeq = wanted;
  }

  const chart = await renderStatechart(chartBox, machine, {
    onViewChange: (c) => {
      fullButton.textContent = c.full ? 'readable chart' : 'full chart';
      document.body.dataset.chartView = c.full ? 'full' : 'readable';
      if (!c.full && c.width * c.scale > chartBox.clientWidth) c.setScale(c.fitScale());
      zoomLabel.textContent = `${Math.round(c.scale * 100)}%`;
    },
  });
  fullButton.addEventListener('click', async () => {
    await chart.setFull(!chart.full);
    chart.setScale(chart.full ? Math.max(0.6, chart.fitScale()) : Math.min(1, chart.fitScale()));
    zoomLabel.textContent = `${Math.round(chart.scale * 100)}%`;
  });
  collapseButton.addEventListener('click', () => void chart.collapseAll());
  chart.setScale(Math.min(1, chart.fitScale()));
  zoomLabel.textContent = `${Math.round(chart.scale * 100)}%`;

  /** what the failure panel was last drawn from: a refresh that changes nothing leaves its DOM alone,
   * so an error being selected (to paste into an incident channel) is not lost to the next event */
  let failureDrawnFrom = null;
  const renderFailure = () => {
    const d = deployment;
    if (d.current_status !== 'failed') {
      failureDrawnFrom = null;
      failure.hidden = true;
      failure.replaceChildren();
      document.body.dataset.failed = 'false';
      return;
    }
    const item = historyItems.find((x) => x.status === 'failed') ?? null;
    const drawnFrom = JSON.stringify([d.last_error, d.status_changed_at, item]);
    if (drawnFrom === failureDrawnFrom) return;
    failureDrawnFrom = drawnFrom;
    const phase = failedPhase(item);
    const cause = clusterCause(d.last_error) ?? clusterCause(phase?.error) ?? clusterCause(item?.error);
    failure.hidden = false;
    document.body.dataset.failed = 'true';
    failure.replaceChildren(
      h('div', { class: 'failure-head' }, stateBadge('failed'), h('h1', { id: 'failure-error' }, d.last_error ?? item?.error ?? 'failed (no error recorded)')),
      h('dl', { class: 'failure-facts' },
        phase ? [h('dt', {}, 'failed phase'), h('dd', { id: 'failure-phase', dataset: { phase: phase.name } }, h('strong', {}, phase.name), ` after ${formatDuration(phase.duration_ms)}`, phase.started_at ? h('span', { class: 'muted' }, ` (started ${formatTime(phase.started_at)})`) : null)] : null,
        item ? [h('dt', {}, 'action'), h('dd', {}, `${item.action} of ${item.image_ref} · generation ${item.generation} · ${formatTime(item.created_at)}`)] : null,
        cause ? [h('dt', {}, 'pod'), h('dd', { class: 'mono', id: 'failure-pod' }, cause.pod), h('dt', {}, 'reason'), h('dd', { id: 'failure-reason' }, h('strong', {}, cause.reason), ` in container ${cause.container}${cause.message ? ` — ${cause.message}` : ''}`)] : null,
        h('dt', {}, 'failed for'), h('dd', {}, h('span', { dataset: { since: d.status_changed_at } }, since(d.status_changed_at)))),
    );
  };

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
    renderFailure();
  };

  const selectedSeq = () => (cursor === null ? null : steps()[cursor]?.seq ?? null);

  const renderTimeline = () => {
    const selected = selectedSeq();
    timelineBody.replaceChildren(...transitions.map((t) =>
      h('tr', { dataset: { seq: t.seq, to: t.to_state }, class: t.seq === selected ? 'selected' : null, onclick: () => go(steps().findIndex((x) => x.seq === t.seq)) },
        h('td', { class: 'num' }, t.seq),
        h('td', { class: 'mono' }, formatTime(t.at)),
        h('td', { class: 'mono' }, t.event),
        h('td', {}, t.from_state ? stateBadge(t.from_state) : h('span', { class: 'muted' }, '–')),
        h('td', {}, stateBadge(t.to_state)),
        h('td', { class: 'num' }, t.generation))));
    if (transitions.length === 0) timelineBody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No transitions journaled yet.')));
  };

  const renderHistory = () => {
    if (historyItems.length === 0) {
      historyBox.replaceChildren(h('p', { class: 'muted' }, 'No completed actions yet.'));
      return;
    }
    historyBox.replaceChildren(...historyItems.slice(0, 20).map((item) => historyCard(item)));
  };

  const renderSnapshot = (persisted) => {
    snapshotMeta.textContent = persisted.seq === null ? 'nothing persisted yet' : `state ${persisted.state} · seq ${persisted.seq} · machine v${persisted.machine_version} · ${formatTime(persisted.updated_at)}`;
    snapshotPre.textContent = JSON.stringify(persisted.snapshot, null, 2);
  };

  const renderStep = () => {
    const all = steps();
    const index = cursor ?? all.length - 1;
    const row = all[index];
    slider.max = String(Math.max(0, all.length - 1));
    slider.value = String(Math.max(0, index));
    slider.disabled = all.length === 0;
    liveButton.classList.toggle('on', cursor === null);
    travel.dataset.mode = cursor === null ? 'live' : 'step';
    stepLabel.textContent = row ? `step ${index + 1} of ${all.length} · seq ${row.seq}${cursor === null ? ' · following' : ''}` : 'no transitions yet';
    if (missingSeq !== null && cursor === null) stepLabel.textContent += ` · seq ${missingSeq} is not journaled (or was pruned)`;
    if (!row) {
      stepDetail.replaceChildren(h('p', { class: 'muted' }, 'Nothing journaled yet.'));
      stepHistory.replaceChildren();
      return;
    }
    const prev = all[index - 1] ?? null;
    stepDetail.replaceChildren(
      h('div', { class: 'step-head' },
        h('span', { class: 'mono step-event', id: 'step-event' }, row.event),
        ' ', row.from_state ? stateBadge(row.from_state) : h('span', { class: 'muted' }, 'start'), ' → ', stateBadge(row.to_state)),
      h('div', { class: 'muted' }, `${formatTime(row.at)} · seq ${row.seq}${prev ? ` · ${formatDuration(Date.parse(row.at) - Date.parse(prev.at))} after the previous step` : ''}`),
      h('table', { class: 'step-context', id: 'step-context' },
        h('tbody', {}, CONTEXT_FIELDS.map(([key, label]) => {
          const value = row[key];
          const changed = prev !== null && (prev[key] ?? null) !== (value ?? null);
          return h('tr', { class: changed ? 'changed' : null, dataset: { field: key } },
            h('th', {}, label),
            h('td', { class: key === 'last_error' && value ? 'error mono' : 'mono' }, value === null || value === undefined ? '–' : String(value)),
            h('td', { class: 'muted' }, changed ? `was ${prev[key] ?? '–'}` : ''));
        }))));
    const item = row.action_id ? historyItems.find((x) => x.action_id === row.action_id) : null;
    stepHistory.replaceChildren(
      h('h3', {}, 'History row of this action'),
      item ? historyCard(item, { at: row.at })
        : h('p', { class: 'muted' }, row.action_id ? `${row.action_id}: not completed yet (no history row).` : 'No action in flight at this step.'));
  };

  const showState = () => {
    const all = steps();
    const row = cursor === null ? transitions[0] ?? null : all[cursor];
    const path = row?.to_state ?? deployment.current_status;
    chart.highlight(path);
    chart.markTransition(row);
    const log = window.__stateLog;
    if (log[log.length - 1] !== path) log.push(path);
    document.body.dataset.currentState = path;
    document.body.dataset.currentTop = topOf(path);
    document.body.dataset.stepSeq = row ? String(row.seq) : '';
    renderStep();
  };

  const syncUrl = () => {
    const seq = selectedSeq();
    history.replaceState(null, '', seq === null ? pagePath : `${pagePath}?seq=${seq}`);
  };

  function go(index) {
    const all = steps();
    if (all.length === 0) return;
    missingSeq = null;
    cursor = Math.max(0, Math.min(all.length - 1, index));
    syncUrl();
    renderTimeline();
    showState();
    chart.scrollTo(all[cursor].to_state);
  }
  slider.addEventListener('input', () => go(Number(slider.value)));
  // ← / → step through time from anywhere on the page but a form field
  const onKey = (event) => {
    if (event.target instanceof HTMLElement && event.target.closest('input, select, textarea')) return;
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    event.preventDefault();
    go((cursor ?? steps().length - 1) + (event.key === 'ArrowLeft' ? -1 : 1));
  };
  document.addEventListener('keydown', onKey);
  signal.addEventListener('abort', () => document.removeEventListener('keydown', onKey));
  liveButton.addEventListener('click', () => {
    cursor = null;
    syncUrl();
    renderTimeline();
    showState();
  });

  const refresh = async () => {
    const [fresh, history, persisted] = await guard(Promise.all([
      api(base, { signal }),
      api(`${base}/history?limit=100`, { signal }),
      api(`${base}/snapshot`, { signal }),
    ]));
    deployment = fresh.deployment;
    historyItems = history.items;
    renderSummary(fresh.snapshot);
    renderHistory();
    renderSnapshot(persisted);
    renderStep();
  };
  const refreshSoon = debounce(refresh, 120);

  renderTimeline();
  renderSummary(detail.snapshot);
  renderHistory();
  showState();
  chart.scrollTo(cursor === null ? transitions[0]?.to_state ?? deployment.current_status : steps()[cursor].to_state);
  await refresh();
  document.body.dataset.deploymentReady = 'true';

  const ticker = tickSince(view);
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
      // appended at the new end; a step being looked at stays where it is (its index does not move)
      transitions = [row, ...transitions];
      renderTimeline();
      if (cursor === null) {
        showState();
        chart.scrollTo(row.to_state);
      } else {
        renderStep();
      }
      renderSummary(null);
      refreshSoon();
    },
  });
}
