/* global TextDecoderStream, clearTimeout, console, fetch, sessionStorage, setTimeout */
// The browser's only way to data: /api with the bearer token kept in sessionStorage. SSE is read
// with fetch() streaming, because EventSource cannot send an Authorization header.
const TOKEN_KEY = 'keelson.token';

export class AuthError extends Error {}

export const getToken = () => sessionStorage.getItem(TOKEN_KEY);
export const setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token.trim());
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  return response.status === 401 ? new AuthError(message) : new Error(message);
}

/** GET a JSON resource under /api. Throws AuthError on 401. */
export async function api(path, { signal } = {}) {
  const response = await fetch(path, {
    headers: { authorization: `Bearer ${getToken() ?? ''}`, accept: 'application/json' },
    signal,
    cache: 'no-store',
  });
  if (!response.ok) throw await failure(response);
  return await response.json();
}

function parseBlock(block) {
  let event = 'message';
  let id;
  let retry;
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id') id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
  }
  return { event, id, retry, data: data.length > 0 ? data.join('\n') : null };
}

/**
 * Follows an SSE stream until `signal` aborts, reconnecting with backoff. `lastEventId()` is
 * sent as Last-Event-ID on every (re)connect; `onOpen` runs after each connect so the page can
 * re-read state it may have missed; `onStatus` gets 'live' | 'reconnecting' | 'unauthorized'.
 */
export function followEvents(path, { onEvent, onOpen, onStatus, lastEventId, signal }) {
  let delay = 1000;
  const wait = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  (async () => {
    while (!signal.aborted) {
      try {
        const headers = { authorization: `Bearer ${getToken() ?? ''}`, accept: 'text/event-stream' };
        const last = lastEventId?.();
        if (last !== undefined && last !== null) headers['last-event-id'] = String(last);
        const response = await fetch(path, { headers, signal, cache: 'no-store' });
        if (response.status === 401) {
          onStatus?.('unauthorized');
          return;
        }
        if (!response.ok || !response.body) throw await failure(response);
        onStatus?.('live');
        delay = 1000;
        await onOpen?.();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let match;
          while ((match = /\r?\n\r?\n/.exec(buffer))) {
            const block = buffer.slice(0, match.index);
            buffer = buffer.slice(match.index + match[0].length);
            const parsed = parseBlock(block);
            if (parsed.retry !== undefined) delay = parsed.retry;
            if (parsed.data !== null) {
              try {
                onEvent(parsed.event, JSON.parse(parsed.data), parsed.id);
              } catch (error) {
                console.error('keelson: handling an event failed', error);
              }
            }
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        console.warn('keelson: event stream interrupted', error);
      }
      if (signal.aborted) return;
      onStatus?.('reconnecting');
      await wait(delay);
      delay = Math.min(delay * 2, 30_000);
    }
  })();
}
