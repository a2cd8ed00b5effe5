/* global AbortController, document, location */
// Entry point: asks for a token when none is kept, then shows the list (/ui) or one deployment
// (/ui/deployments/:project/:env).
import { AuthError, clearToken, getToken, setToken } from './api.js';
import { showDeployment } from './deployment.js';
import { showList } from './list.js';

const view = document.getElementById('view');
const form = document.getElementById('token-form');
const signout = document.getElementById('signout');
const live = document.getElementById('live');
let controller;

export function setLive(status) {
  live.dataset.live = status;
  live.textContent = { live: 'live', reconnecting: 'reconnecting…', unauthorized: 'token refused', off: 'offline' }[status] ?? status;
}

function askForToken(message = '') {
  controller?.abort();
  view.replaceChildren();
  form.hidden = false;
  signout.hidden = true;
  document.getElementById('token-error').textContent = message;
  document.getElementById('token-input').focus();
}

async function route() {
  controller?.abort();
  controller = new AbortController();
  if (!getToken()) {
    askForToken();
    return;
  }
  form.hidden = true;
  signout.hidden = false;
  const match = /^\/ui\/deployments\/([^/]+)\/([^/]+)\/?$/.exec(location.pathname);
  const context = {
    view,
    signal: controller.signal,
    setLive,
    onAuthError: (error) => {
      clearToken();
      askForToken(`The token was refused: ${error.message}`);
    },
  };
  try {
    if (match) await showDeployment({ ...context, project: decodeURIComponent(match[1]), env: decodeURIComponent(match[2]) });
    else await showList(context);
  } catch (error) {
    if (error instanceof AuthError) context.onAuthError(error);
    else if (!controller.signal.aborted) view.replaceChildren(Object.assign(document.createElement('p'), { className: 'error', textContent: String(error.message ?? error) }));
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  setToken(document.getElementById('token-input').value);
  document.getElementById('token-input').value = '';
  void route();
});
signout.addEventListener('click', () => {
  clearToken();
  setLive('off');
  askForToken();
});

void route();
