/* global HTMLElement, URLSearchParams, clearInterval, document, history, location, navigator, window */
// /ui/deployments/:project/:env: for a failed deployment, why it failed first (last_error, the
// failed phase and its duration, the pod and reason when the cluster said so); the statechart
// (readable by default: compound states collapsed, edges bundled) with the current state
// highlighted and the last transition's edge marked; time travel over deployment_transitions
// (slider and step buttons, deep link ?seq=N) showing each step's event, time, changed context
// and the matching history row's phases; the timeline, the history and the persisted snapshot —
// all kept current by the deployment's SSE stream (replayed from the last seq shown). Also the
// current release (image, commit, values hash, the values diff against the previous release —
// from values_redacted only —, its inventory by namespace), drift repairs, teardowns and
// superseded actions marked in the history and the timeline, each release's rollback as a CLI
// command to copy (the page never acts), and the notifications with their delivery status.
import { AuthError, api, followEvents } from './api.js';
import { currentAndPrevious, groupInventory, historyMarks, rollbackCommand, transitionMarks } from './release.js';
import { renderStatechart } from './statechart.js';
import { debounce, formatDuration, formatTime, h, since, stateBadge, tickSince, topOf } from './util.js';
import { diffValues, showValue } from './valuesDiff.js';

const TRANSITIONS_SHOWN = 500;
const NOTIFICATIONS_SHOWN = 20;
const MARK_LABELS = { 'drift-repair': 'drift repair', teardown: 'teardown', superseded: 'superseded', rollback: 'rollback' };

const markPills = (marks) => marks.map((mark) => h('span', { class: `mark mark-${mark}`, dataset: { mark } }, MARK_LABELS[mark] ?? mark));
const shortSha = (sha) => (sha ? sha.slice(0, 12) : null);
const shortHash = (hash) => (hash ? hash.replace(/^sha256:/, '').slice(0, 12) : null);

/** A command to copy: selectable text plus a copy button (the clipboard needs a secure origin). */
function copyable(text, attrs = {}) {
  const code = h('code', { class: 'copy-text', ...attrs }, text);
  const button = h('button', { type: 'button', class: 'copy', title: 'copy to the clipboard' }, 'copy');
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'copied';
    } catch {
      // no clipboard (plain http): select the text for ⌘C / Ctrl+C
      const range = document.createRange();
      range.selectNodeContents(code);
      window.getSelection()?.removeAllRanges();
      window.getSelection()?.addRange(range);
      button.textContent = 'selected';
    }
  });
  return h('span', { class: 'copyable' }, code, button);
}
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

/** The canary in flight (the detail's snapshot.canary): its steps, where it is, the split last asked for. */
export function canaryLine(canary) {
  if (!canary) return null;
  const split = canary.split ? canary.split.map((e) => `${e.revision} ${e.weight_bps / 100} %`).join(' · ') : 'no split yet';
  const where = canary.phase === 'steps' ? (canary.paused ? 'paused' : null) : canary.phase;
  return h('span', { id: 'canary' },
    h('span', { class: 'mono' }, `${canary.revision}${canary.stable ? ` from ${canary.stable}` : ''}: ${split}`),
    where ? h('span', { class: 'muted' }, ` (${where}${canary.abort_reason ? `: ${canary.abort_reason}` : ''})`) : null,
    ' ',
    canary.steps.map((s) => h('span', { class: `pill canary-step canary-${s.status}`, dataset: { status: s.status } }, s.step)));
}

/** where a release was rendered from (migration 0013): its manifest path and ops repo */
function releaseSource(item) {
  if (item.manifest_path === null || item.manifest_path === undefined) return 'not recorded (before migration 0013)';
  return item.ops_repo_id ? `${item.manifest_path} · ops repo ${item.ops_repo_id.slice(0, 8)}` : 'built-in template';
}

function historyCard(item, options = {}) {
  const marks = historyMarks(item);
  const command = options.project ? rollbackCommand(options.project, options.env, item) : null;
  const starts = item.phases.map((p) => Date.parse(p.started_at));
  const ends = item.phases.map((p, i) => (p.finished_at ? Date.parse(p.finished_at) : starts[i] + (p.duration_ms ?? 0)));
  const total = item.phases.length ? Math.max(...ends) - Math.min(...starts) : null;
  return h('article', { class: `action status-${item.status}${marks.map((m) => ` marked-${m}`).join('')}`, dataset: { historyId: item.id, action: item.action, actionId: item.action_id, marks: marks.join(' ') } },
    h('header', {},
      h('strong', {}, item.action), ' ', h('span', { class: `pill ${item.status}` }, item.status), ' ', markPills(marks),
      h('span', { class: 'mono' }, ` ${item.image_ref}`),
      item.sha ? h('span', { class: 'mono muted', title: item.sha }, ` @ ${shortSha(item.sha)}`) : null,
      h('span', { class: 'muted' }, ` · #${item.id} · gen ${item.generation} · ${formatTime(item.created_at)} · ${total === null ? '' : formatDuration(total)}`)),
    item.triggered_by && item.triggered_by !== 'keelson' ? h('div', { class: 'muted trigger' }, `triggered by ${item.triggered_by}`) : null,
    phaseBars(item, options),
    item.error ? h('p', { class: 'error' }, item.error) : null,
    command ? h('div', { class: 'rollback' }, h('span', { class: 'muted' }, 'roll back to this release: '), copyable(command, { class: 'copy-text rollback-command' })) : null);
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

  const releaseBox = h('section', { class: 'panel release', id: 'release' });
  const inventoryBox = h('section', { class: 'panel', id: 'inventory' });
  const notificationsBox = h('section', { class: 'panel', id: 'notifications' });
  const timelineBody = h('tbody');
  const historyBox = h('div', { class: 'history', id: 'history' });
  const snapshotPre = h('pre', { class: 'json', id: 'snapshot' });
  const snapshotMeta = h('span', { class: 'muted' });
  view.replaceChildren(
    failure,
    summary,
    h('div', { class: 'columns' }, releaseBox, inventoryBox),
    h('section', { class: 'panel' }, chartTools, chartBox),
    travel,
    h('div', { class: 'columns' },
      h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'Transitions'), h('span', { class: 'muted' }, 'deployment_transitions, newest first; click one to travel there')),
        h('div', { class: 'scroll' }, h('table', { class: 'timeline', id: 'timeline' },
          h('thead', {}, h('tr', {}, ['seq', 'time', 'event', 'from', 'to', 'gen'].map((c) => h('th', {}, c)))), timelineBody))),
      h('section', { class: 'panel' }, h('div', { class: 'toolbar' }, h('h2', {}, 'History'), h('span', { class: 'muted' }, 'completed actions with per-phase timings')), historyBox)),
    notificationsBox,
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
  let notificationItems = [];
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
        h('dt', {}, 'last error'), h('dd', { class: d.last_error ? 'error' : 'muted', id: 'last-error' }, d.last_error ?? 'none'),
        snapshot?.canary ? [h('dt', {}, 'canary'), h('dd', {}, canaryLine(snapshot.canary))] : null),
    );
    renderFailure();
  };

  const selectedSeq = () => (cursor === null ? null : steps()[cursor]?.seq ?? null);

  const renderTimeline = () => {
    const selected = selectedSeq();
    const byAction = new Map(historyItems.map((item) => [item.action_id, item]));
    timelineBody.replaceChildren(...transitions.map((t) => {
      const marks = transitionMarks(t, byAction);
      return h('tr', { dataset: { seq: t.seq, to: t.to_state, marks: marks.join(' ') }, class: [t.seq === selected ? 'selected' : '', ...marks.map((m) => `marked-${m}`)].join(' ').trim() || null, onclick: () => go(steps().findIndex((x) => x.seq === t.seq)) },
        h('td', { class: 'num' }, t.seq),
        h('td', { class: 'mono' }, formatTime(t.at)),
        h('td', { class: 'mono' }, t.event, marks.length ? ' ' : null, markPills(marks)),
        h('td', {}, t.from_state ? stateBadge(t.from_state) : h('span', { class: 'muted' }, '–')),
        h('td', {}, stateBadge(t.to_state)),
        h('td', { class: 'num' }, t.generation));
    }));
    if (transitions.length === 0) timelineBody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No transitions journaled yet.')));
  };

  /** what each panel was last drawn from: a refresh that changes nothing leaves its DOM alone, so
   * a rollback command or a delivery error being selected is not lost to the next event */
  const drawnFrom = {};
  const unchanged = (panel, ...inputs) => {
    const key = JSON.stringify(inputs);
    if (drawnFrom[panel] === key) return true;
    drawnFrom[panel] = key;
    return false;
  };

  const renderHistory = () => {
    if (unchanged('history', historyItems.slice(0, 20))) return;
    if (historyItems.length === 0) {
      historyBox.replaceChildren(h('p', { class: 'muted' }, 'No completed actions yet.'));
      return;
    }
    historyBox.replaceChildren(...historyItems.slice(0, 20).map((item) => historyCard(item, { project, env })));
  };

  /** the newest succeeded release, what it changed in the values since the one before, its objects */
  const renderRelease = () => {
    const { current, previous } = currentAndPrevious(historyItems);
    if (unchanged('release', current, previous)) return;
    document.body.dataset.releaseId = current ? String(current.id) : '';
    if (!current) {
      releaseBox.replaceChildren(h('div', { class: 'toolbar' }, h('h2', {}, 'Current release')), h('p', { class: 'muted' }, 'No release has succeeded yet.'));
      inventoryBox.replaceChildren(h('div', { class: 'toolbar' }, h('h2', {}, 'Inventory')), h('p', { class: 'muted' }, 'Nothing applied by a succeeded release yet.'));
      return;
    }
    const recorded = (item) => item.values_redacted !== null && item.values_redacted !== undefined;
    let diffBody;
    if (!previous) {
      diffBody = h('p', { class: 'muted', id: 'values-diff-note' }, 'The first release: nothing to compare with.');
    } else if (!recorded(current) || !recorded(previous)) {
      diffBody = h('p', { class: 'muted', id: 'values-diff-note' }, `Values not recorded for release #${recorded(current) ? previous.id : current.id} (written before migration 0007).`);
    } else {
      const changes = diffValues(previous.values_redacted, current.values_redacted);
      const hashesDiffer = current.values_hash && previous.values_hash && current.values_hash !== previous.values_hash;
      diffBody = [
        changes.length === 0
          ? h('p', { class: 'muted', id: 'values-diff-note' }, hashesDiffer
            ? 'No visible change, but the values hashes differ: a redacted (secret) value changed.'
            : 'Same values as the previous release.')
          : h('table', { class: 'values-diff', id: 'values-diff' },
            h('thead', {}, h('tr', {}, ['', 'path', 'previous', 'current'].map((c) => h('th', {}, c)))),
            h('tbody', {}, changes.map((c) => h('tr', { class: `change-${c.change}`, dataset: { path: c.path, change: c.change } },
              h('td', { class: 'change-sign', title: c.change }, c.change === 'added' ? '+' : c.change === 'removed' ? '−' : '~'),
              h('td', { class: 'mono' }, c.path),
              h('td', { class: 'mono old' }, c.change === 'added' ? '' : showValue(c.before)),
              h('td', { class: 'mono new' }, c.change === 'removed' ? '' : showValue(c.after)))))),
      ];
    }
    releaseBox.replaceChildren(
      h('div', { class: 'toolbar' }, h('h2', {}, 'Current release'), h('span', { class: 'muted' }, `#${current.id} · ${current.action} · ${formatTime(current.created_at)}`), markPills(historyMarks(current))),
      h('dl', { class: 'release-facts' },
        h('dt', {}, 'image'), h('dd', { class: 'mono', id: 'release-image' }, current.image_ref),
        h('dt', {}, 'commit'), h('dd', { class: 'mono', id: 'release-sha', title: current.sha ?? '' }, shortSha(current.sha) ?? 'built-in template'),
        h('dt', {}, 'source'), h('dd', { class: 'mono', id: 'release-source', title: current.ops_repo_id ?? '' }, releaseSource(current)),
        h('dt', {}, 'values hash'), h('dd', { class: 'mono', id: 'release-values-hash', title: current.values_hash ?? '' }, shortHash(current.values_hash) ?? '–'),
        h('dt', {}, 'previous'), h('dd', { class: 'mono' }, previous ? `#${previous.id} · ${previous.image_ref}${previous.sha ? ` @ ${shortSha(previous.sha)}` : ''}` : '–')),
      h('h3', {}, 'Values changed since the previous release ', h('span', { class: 'muted' }, '(secrets redacted)')),
      ...[diffBody].flat());

    const groups = groupInventory(current.inventory);
    const count = (current.inventory ?? []).length;
    inventoryBox.replaceChildren(
      h('div', { class: 'toolbar' }, h('h2', {}, 'Inventory'), h('span', { class: 'muted' }, current.inventory ? `${count} object${count === 1 ? '' : 's'} applied by release #${current.id}` : `not recorded for release #${current.id}`)),
      groups.length === 0 ? '' : h('div', { class: 'scroll' }, h('table', { class: 'inventory', id: 'inventory-table' },
        h('thead', {}, h('tr', {}, ['apiVersion', 'kind', 'namespace', 'name'].map((c) => h('th', {}, c)))),
        groups.map((group) => h('tbody', { dataset: { namespace: group.namespace ?? '' } },
          h('tr', { class: 'group' }, h('th', { colspan: 4 }, group.namespace === null ? 'cluster-scoped' : `namespace ${group.namespace}`)),
          group.objects.map((o) => h('tr', { dataset: { kind: o.kind, name: o.name } },
            h('td', { class: 'mono' }, o.apiVersion), h('td', {}, o.kind),
            h('td', { class: group.namespace === null ? 'muted' : 'mono' }, group.namespace ?? 'cluster-scoped'),
            h('td', { class: 'mono' }, o.name))))))));
  };

  /** the newest outbox events with each delivery's status; a dead one shows its last error */
  const renderNotifications = () => {
    const events = notificationItems.slice(0, NOTIFICATIONS_SHOWN);
    if (unchanged('notifications', events)) return;
    const dead = events.reduce((n, e) => n + e.deliveries.filter((d) => d.status === 'dead').length, 0);
    notificationsBox.replaceChildren(
      h('div', { class: 'toolbar' }, h('h2', {}, 'Notifications'), h('span', { class: 'muted' }, 'the newest action events and their deliveries'),
        dead > 0 ? h('span', { class: 'pill dead', id: 'notifications-dead' }, `${dead} dead`) : null),
      events.length === 0 ? h('p', { class: 'muted' }, 'No events yet.')
        : h('div', { class: 'scroll' }, h('table', { class: 'notifications' },
          h('thead', {}, h('tr', {}, ['time', 'event', 'deliveries'].map((c) => h('th', {}, c)))),
          h('tbody', {}, events.map((e) => h('tr', { dataset: { eventId: e.id, type: e.type } },
            h('td', { class: 'mono' }, formatTime(e.occurred_at)),
            h('td', {}, h('span', { class: 'mono' }, e.type), h('span', { class: 'muted' }, ` · seq ${e.seq}`)),
            h('td', {}, e.deliveries.length === 0 ? h('span', { class: 'muted' }, 'no sink matched')
              : e.deliveries.map((d) => h('div', { class: `delivery delivery-${d.status}`, dataset: { sink: d.sink, status: d.status } },
                h('span', { class: `pill ${d.status}` }, d.status), ' ', h('span', {}, d.sink), h('span', { class: 'muted' }, ` (${d.kind}) · ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`),
                d.status !== 'delivered' && d.last_error ? h('div', { class: d.status === 'dead' ? 'error delivery-error' : 'muted delivery-error' }, d.last_error) : null)))))))));
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
      item ? historyCard(item, { at: row.at, project, env })
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
    const [fresh, history, persisted, notifications] = await guard(Promise.all([
      api(base, { signal }),
      api(`${base}/history?limit=100`, { signal }),
      api(`${base}/snapshot`, { signal }),
      api(`${base}/notifications?limit=${NOTIFICATIONS_SHOWN}`, { signal }),
    ]));
    deployment = fresh.deployment;
    historyItems = history.items;
    notificationItems = notifications.items;
    renderSummary(fresh.snapshot);
    renderHistory();
    renderRelease();
    renderNotifications();
    renderTimeline();
    renderSnapshot(persisted);
    renderStep();
  };
  const refreshSoon = debounce(refresh, 120);

  renderTimeline();
  renderSummary(detail.snapshot);
  renderHistory();
  renderRelease();
  renderNotifications();
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
