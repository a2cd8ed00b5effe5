/* global Node, clearTimeout, console, document, setInterval, setTimeout */
// Small DOM and formatting helpers shared by the pages.
export const STATES = ['idle', 'syncing', 'applying', 'verifying', 'healthy', 'failed', 'rolling-back', 'stopped', 'tearing-down'];

/** h('div', { class: 'x', dataset: { a: 1 } }, child, 'text') */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const topOf = (path) => (path ?? 'idle').split('.')[0];

export function stateBadge(path) {
  const top = topOf(path);
  return h('span', { class: `badge state-${top}`, dataset: { state: top }, title: path ?? '' }, path ?? top);
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${m % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export const since = (iso) => (iso ? formatDuration(Date.now() - Date.parse(iso)) : '–');

export function formatTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Runs `fn` once after calls stop for `ms`; concurrent runs are chained, never overlapped. */
export function debounce(fn, ms) {
  let timer;
  let running = Promise.resolve();
  return () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(fn).catch((error) => console.error('keelson:', error));
    }, ms);
  };
}

/** Re-renders every `[data-since]` element once a second (time in state). */
export function tickSince(root) {
  const update = () => {
    for (const el of root.querySelectorAll('[data-since]')) el.textContent = since(el.dataset.since);
  };
  update();
  return setInterval(update, 1000);
}
