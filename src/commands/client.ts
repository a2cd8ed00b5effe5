// The people CLI: `keelson deploy|rollback|stop|delete|status` against a running keelson server. A
// change is followed live over SSE (with a slow poll as the safety net) until the deployment
// settles at or beyond the generation the change produced; the exit code says whether it ended
// in the wanted state.
import { parseArgs } from 'node:util';
import type { Command } from '../cli.ts';
import { parseDuration } from '../config.ts';
import { ConfigError, TerminalError } from '../errors.ts';

const SETTLED = new Set(['healthy', 'failed', 'stopped']);
const COMMON_USAGE = '[--url <url>] [--token <token>] [--timeout 15m] [--no-wait]  (or KEELSON_URL, KEELSON_TOKEN)';

export class ClientError extends TerminalError {
  /** the HTTP status of a refused request; undefined when the server could not be reached */
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message, { code: 'client_error' });
    this.status = status;
  }
}

interface Deployment {
  id: string;
  project: string;
  environment: string;
  image_ref: string;
  desired_status: string;
  current_status: string;
  current_image_ref: string | null;
  generation: number;
  observed_generation: number;
  last_error: string | null;
  deployed_at: string | null;
}

export interface Transition {
  seq: number;
  from_state: string | null;
  to_state: string;
  event: string;
  at: string;
}

export interface Api {
  readonly url: string;
  call<T>(method: string, path: string, options?: { body?: unknown; headers?: Record<string, string>; allow?: number[] }): Promise<{ status: number; body: T; headers: Headers }>;
  readonly token: string;
}

export function connect(values: { url?: string | undefined; token?: string | undefined }): Api {
  const url = (values.url ?? process.env.KEELSON_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = values.token ?? process.env.KEELSON_TOKEN;
  if (!/^https?:\/\/\S+$/.test(url)) throw new ConfigError(`--url / KEELSON_URL: expected an http(s) URL such as http://127.0.0.1:8080; got "${url}"`);
  if (!token) throw new ConfigError('--token / KEELSON_TOKEN: an API token is required (create one with `keelson token create`)');
  return {
    url,
    token,
    call: async (method, path, options = {}) => {
      let response: Response;
      try {
        response = await fetch(`${url}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            accept: 'application/json',
            ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...options.headers,
          },
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
        });
      } catch (error) {
        throw new ClientError(`cannot reach ${url}: ${(error as Error).message}`);
      }
      const text = await response.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      if (!response.ok && !(options.allow ?? []).includes(response.status)) {
        const error = (body as { error?: { message?: string; details?: Array<{ field: string; message: string }> } })?.error;
        const details = error?.details?.map((d) => `\n  ${d.field}: ${d.message}`).join('') ?? '';
        throw new ClientError(`${method} ${path} → ${response.status}: ${error?.message ?? text.slice(0, 200)}${details}`, response.status);
      }
      return { status: response.status, body: body as never, headers: response.headers };
    },
  };
}

export const base = (project: string, env: string) =>
  `/api/projects/${encodeURIComponent(project)}/deployments/${encodeURIComponent(env)}`;

async function latestSeq(api: Api, project: string, env: string): Promise<number> {
  const page = await api.call<{ items: Transition[] }>('GET', `${base(project, env)}/transitions?limit=1`, { allow: [404] });
  return page.status === 404 ? 0 : (page.body.items[0]?.seq ?? 0);
}

function describe(row: Deployment): string {
  const image = row.current_image_ref ?? row.image_ref;
  return `${row.project}/${row.environment} is ${row.current_status} (image ${image}, generation ${row.observed_generation}/${row.generation})${row.last_error ? `: ${row.last_error}` : ''}`;
}

/**
 * Reads an SSE stream, calling onEvent per `event: transition`; without lastSeq it starts with
 * the next transition. Resolves when the stream ends.
 */
export async function readEvents(api: Api, path: string, lastSeq: number | undefined, signal: AbortSignal, onEvent: (t: Transition) => void): Promise<void> {
  const response = await fetch(`${api.url}${path}`, {
    headers: { authorization: `Bearer ${api.token}`, accept: 'text/event-stream', ...(lastSeq === undefined ? {} : { 'last-event-id': String(lastSeq) }) },
    signal,
  });
  if (!response.ok || !response.body) throw new ClientError(`event stream ${path} → ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (event === 'transition' && data.length > 0) onEvent(JSON.parse(data.join('\n')) as Transition);
    }
  }
}

/** Follows the deployment until it settles at `generation` or later; true when it ends in `wanted`. */
async function follow(api: Api, project: string, env: string, generation: number, lastSeq: number, wanted: string, timeoutMs: number): Promise<boolean> {
  const controller = new AbortController();
  let settled: Deployment | undefined;
  let checking: Promise<void> | undefined;
  const check = async () => {
    const { body } = await api.call<{ deployment: Deployment }>('GET', base(project, env));
    const row = body.deployment;
    if (SETTLED.has(row.current_status) && row.observed_generation >= generation) {
      settled = row;
      controller.abort();
    }
  };
  const checkSoon = () => {
    checking ??= check().finally(() => {
      checking = undefined;
    });
    return checking;
  };
  const seen = new Set<number>();
  const print = (t: Transition) => {
    if (t.seq <= lastSeq || seen.has(t.seq)) return;
    seen.add(t.seq);
    console.log(`  ${t.at}  ${t.from_state ?? '(start)'} → ${t.to_state}  (${t.event})`);
  };
  const stream = readEvents(api, `${base(project, env)}/events`, lastSeq, controller.signal, (t) => {
    print(t);
    void checkSoon().catch(() => undefined);
  }).catch((error: unknown) => {
    if (!controller.signal.aborted) console.error(`keelson: event stream interrupted (${(error as Error).message}); polling instead`);
  });
  const deadline = Date.now() + timeoutMs;
  try {
    await checkSoon();
    while (!settled && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(2000, Math.max(0, deadline - Date.now()))));
      if (!settled) await checkSoon();
    }
  } finally {
    controller.abort();
    await stream;
  }
  if (!settled) {
    console.error(`keelson: ${project}/${env} did not settle within ${Math.round(timeoutMs / 1000)} s`);
    return false;
  }
  // the poll can see the settled row before the stream delivered the last transitions
  const { body } = await api.call<{ items: Transition[] }>('GET', `${base(project, env)}/transitions?limit=50`);
  for (const t of [...body.items].reverse()) print(t);
  console.log(describe(settled));
  return settled.current_status === wanted;
}

const OPTIONS = {
  url: { type: 'string' },
  token: { type: 'string' },
  timeout: { type: 'string' },
  'no-wait': { type: 'boolean' },
} as const;

export function timeoutOf(text: string | undefined): number {
  if (text === undefined) return 15 * 60_000;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0) throw new ConfigError(`--timeout: expected a duration such as 90s or 15m; got "${text}"`);
  return ms;
}

function target(positionals: string[], usage: string): [string, string] {
  const [project, env, ...extra] = positionals;
  if (!project || !env || extra.length > 0) throw new ConfigError(`expected <project> <env>\nUsage: ${usage}`);
  return [project, env];
}

/** PATCH with If-Match, retried when someone else changed the row in between. */
async function patch(api: Api, project: string, env: string, body: Record<string, unknown>): Promise<Deployment> {
  for (let attempt = 0; ; attempt++) {
    const current = await api.call<{ deployment: Deployment }>('GET', base(project, env));
    const etag = current.headers.get('etag') ?? '*';
    const result = await api.call<Deployment>('PATCH', base(project, env), { body, headers: { 'if-match': etag }, allow: attempt < 3 ? [412] : [] });
    if (result.status !== 412) return result.body;
  }
}

const DEPLOY_USAGE = `keelson deploy <project> <env> --image <ref> ${COMMON_USAGE}`;
export const deployCommand: Command = {
  summary: 'Deploy an image to an environment and follow the rollout.',
  usage: DEPLOY_USAGE,
  run: async (argv) => {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...OPTIONS, image: { type: 'string' } } });
    const [project, env] = target(positionals, DEPLOY_USAGE);
    if (!values.image) throw new ConfigError(`--image is required\nUsage: ${DEPLOY_USAGE}`);
    const timeoutMs = timeoutOf(values.timeout);
    const api = connect(values);
    const lastSeq = await latestSeq(api, project, env);
    const existing = await api.call('GET', base(project, env), { allow: [404] });
    const row =
      existing.status === 404
        ? (await api.call<Deployment>('POST', `/api/projects/${encodeURIComponent(project)}/deployments`, { body: { environment: env, image_ref: values.image } })).body
        : await patch(api, project, env, { image_ref: values.image, desired_status: 'active' });
    console.log(`${existing.status === 404 ? 'Created' : 'Updated'} ${project}/${env}: image ${row.image_ref} (generation ${row.generation})`);
    if (values['no-wait']) return 0;
    return (await follow(api, project, env, row.generation, lastSeq, 'healthy', timeoutMs)) ? 0 : 1;
  },
};

const ROLLBACK_USAGE = `keelson rollback <project> <env> [--release <history id>] ${COMMON_USAGE}`;
export const rollbackCommand: Command = {
  summary: 'Roll an environment back to its previous healthy release (or the one named by --release) and follow it.',
  usage: ROLLBACK_USAGE,
  run: async (argv) => {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { ...OPTIONS, release: { type: 'string' } } });
    const [project, env] = target(positionals, ROLLBACK_USAGE);
    const timeoutMs = timeoutOf(values.timeout);
    const release = values.release === undefined ? undefined : Number(values.release);
    if (release !== undefined && (!Number.isSafeInteger(release) || release <= 0)) {
      throw new ConfigError(`--release: expected a history id (a positive integer, see GET …/history); got "${values.release}"`);
    }
    const api = connect(values);
    const lastSeq = await latestSeq(api, project, env);
    const { body } = await api.call<{ deployment: Deployment; target: { image_ref: string; history_id: number } }>('POST', `${base(project, env)}/rollback`, release === undefined ? {} : { body: { release } });
    console.log(`Rolling back ${project}/${env} to ${body.target.image_ref}, release ${body.target.history_id} (generation ${body.deployment.generation})`);
    if (values['no-wait']) return 0;
    return (await follow(api, project, env, body.deployment.generation, lastSeq, 'healthy', timeoutMs)) ? 0 : 1;
  },
};

const STOP_USAGE = `keelson stop <project> <env> ${COMMON_USAGE}`;
export const stopCommand: Command = {
  summary: 'Scale an environment to zero and keep it there; follow until stopped.',
  usage: STOP_USAGE,
  run: async (argv) => {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
    const [project, env] = target(positionals, STOP_USAGE);
    const timeoutMs = timeoutOf(values.timeout);
    const api = connect(values);
    const lastSeq = await latestSeq(api, project, env);
    const row = await patch(api, project, env, { desired_status: 'stopped' });
    console.log(`Stopping ${project}/${env} (generation ${row.generation})`);
    if (values['no-wait']) return 0;
    return (await follow(api, project, env, row.generation, lastSeq, 'stopped', timeoutMs)) ? 0 : 1;
  },
};

const DELETE_USAGE = `keelson delete <project> <env> ${COMMON_USAGE}`;
export const deleteCommand: Command = {
  summary: 'Tear an environment down (every object of it leaves the cluster, the row goes); follow until it is gone.',
  usage: DELETE_USAGE,
  run: async (argv) => {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
    const [project, env] = target(positionals, DELETE_USAGE);
    const timeoutMs = timeoutOf(values.timeout);
    const api = connect(values);
    const { body } = await api.call<{ deployment: Deployment; generation: number }>('DELETE', base(project, env));
    console.log(`Tearing down ${project}/${env} (generation ${body.generation})`);
    if (values['no-wait']) return 0;
    return (await followTeardown(api, project, env, body.generation, timeoutMs)) ? 0 : 1;
  },
};

/**
 * Polls until the row is gone (the teardown succeeded: GET answers 404) or the teardown failed
 * (settled at its generation in `failed`). Not over SSE: the stream ends with the row.
 */
async function followTeardown(api: Api, project: string, env: string, generation: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const { status, body } = await api.call<{ deployment: Deployment }>('GET', base(project, env), { allow: [404] });
    if (status === 404) {
      console.log(`${project}/${env} is gone: its objects were deleted (its history stays readable by SQL)`);
      return true;
    }
    const row = body.deployment;
    if (row.current_status !== last) console.log(`  ${new Date().toISOString()}  ${row.current_status}`);
    last = row.current_status;
    if (row.observed_generation >= generation && row.current_status === 'failed') {
      console.error(`keelson: the teardown of ${project}/${env} failed: ${row.last_error ?? 'see its history'}`);
      return false;
    }
    if (Date.now() >= deadline) {
      console.error(`keelson: ${project}/${env} was not torn down within ${Math.round(timeoutMs / 1000)} s`);
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(0, deadline - Date.now()))));
  }
}

const STATUS_USAGE = `keelson status [project] [--url <url>] [--token <token>]`;
export const statusCommand: Command = {
  summary: 'Show the deployments the token can see (optionally of one project).',
  usage: STATUS_USAGE,
  run: async (argv) => {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { url: OPTIONS.url, token: OPTIONS.token } });
    if (positionals.length > 1) throw new ConfigError(`expected at most one project\nUsage: ${STATUS_USAGE}`);
    const api = connect(values);
    const project = positionals[0];
    const query = project ? `?project=${encodeURIComponent(project)}` : '';
    const { body } = await api.call<{ items: Deployment[] }>('GET', `/api/deployments${query}`);
    if (body.items.length === 0) {
      console.log(project ? `No deployments in project "${project}".` : 'No deployments.');
      return 0;
    }
    const header = ['PROJECT', 'ENV', 'DESIRED', 'STATUS', 'IMAGE', 'GEN', 'DEPLOYED'];
    const rows = body.items.map((d) => [
      d.project,
      d.environment,
      d.desired_status,
      d.current_status,
      d.current_image_ref ?? d.image_ref,
      `${d.observed_generation}/${d.generation}`,
      d.deployed_at ?? '-',
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
    for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
    return 0;
  },
};
