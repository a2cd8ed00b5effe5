// An API server on a real PostgreSQL database, in the test process, with every log line and
// response body captured for the secret-leak scan.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Server } from 'node:http';
import pg from 'pg';
import { createApp, type ApiApp, type ApiDeps } from '../../src/api/app.ts';
import { answerClientError } from '../../src/api/httpErrors.ts';
import { createToken, type Permission } from '../../src/api/tokens.ts';
import { createLogger } from '../../src/logger.ts';
import { createMetrics } from '../../src/metrics.ts';
import { createTestDatabase, type TestDatabase } from '../helpers.ts';

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

export interface RequestOptions {
  readonly token?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface Harness {
  readonly t: TestDatabase;
  readonly api: ApiApp;
  readonly baseUrl: string;
  readonly logLines: string[];
  readonly responses: string[];
  readonly pg: pg.Client;
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  token(permissions: Permission[], project?: string | null, name?: string): Promise<string>;
  /** Inserts a deployment row as a pipeline would; returns its id. */
  insertDeployment(project: string, environment: string, extra?: Record<string, unknown>): Promise<string>;
  /** Journals a transition as the runtime does: row + pg_notify in one transaction. */
  journal(deploymentId: string, seq: number, toState: string, fromState?: string | null): Promise<void>;
  /** Every captured log line and response body: none may contain any of `secrets`. */
  leaks(secrets: readonly string[]): string[];
  close(): Promise<void>;
}

let tokenCounter = 0;

export async function startHarness(deps: Partial<Omit<ApiDeps, 'db' | 'databaseUrl' | 'log' | 'metrics'>> = {}): Promise<Harness> {
  const t = await createTestDatabase();
  const logLines: string[] = [];
  const responses: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  });
  const log = createLogger({ level: 'debug', format: 'json', destination });
  const api = createApp({ db: t.db, databaseUrl: t.url, log, metrics: createMetrics(), ...deps });
  const server: Server = api.app.listen(0, '127.0.0.1');
  server.on('clientError', answerClientError);
  await once(server, 'listening');
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new pg.Client({ connectionString: t.url });
  await client.connect();

  return {
    t,
    api,
    baseUrl,
    logLines,
    responses,
    pg: client,
    request: async (method, path, options = {}) => {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      let body: string | undefined;
      if (options.body !== undefined) {
        headers['content-type'] ??= 'application/json';
        body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
      }
      const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
      const text = await response.text();
      responses.push(`${[...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n${text}`);
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
      return { status: response.status, headers: response.headers, text, body: parsed };
    },
    token: async (permissions, project = null, name) => {
      const { token } = await createToken(t.db, { name: name ?? `test-${++tokenCounter}`, permissions, project });
      return token;
    },
    insertDeployment: async (project, environment, extra = {}) => {
      const columns = ['project', 'environment', 'image_ref', ...Object.keys(extra)];
      const values = [project, environment, 'registry.example/shop:1.0.0', ...Object.values(extra)];
      const placeholders = values.map((_, i) => `$${i + 1}`).join(', ');
      const { rows } = await client.query(`insert into deployments (${columns.join(', ')}) values (${placeholders}) returning id`, values);
      return (rows[0] as { id: string }).id;
    },
    journal: async (deploymentId, seq, toState, fromState = null) => {
      await client.query('begin');
      try {
        await client.query(
          `insert into deployment_transitions (deployment_id, from_state, to_state, event, generation, seq)
           values ($1, $2, $3, 'deploy.requested', 1, $4)`,
          [deploymentId, fromState, toState, seq],
        );
        await client.query(
          `select pg_notify('keelson_transitions', json_build_object('deployment_id', $1::uuid, 'seq', $2::bigint)::text)`,
          [deploymentId, seq],
        );
        await client.query('commit');
      } catch (error) {
        await client.query('rollback');
        throw error;
      }
    },
    leaks: (secrets) => {
      const found: string[] = [];
      for (const secret of secrets) {
        for (const line of [...logLines, ...responses]) {
          if (line.includes(secret)) found.push(`${secret.slice(0, 6)}… in: ${line.slice(0, 200)}`);
        }
      }
      return found;
    },
    close: async () => {
      await api.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await client.end();
      await t.drop();
    },
  };
}

export interface SseEvent {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: string;
  readonly receivedAt: number;
}

export interface SseStream {
  readonly status: number;
  readonly events: SseEvent[];
  /** Raw text received, comments included. */
  readonly raw: () => string;
  readonly closed: () => boolean;
  close(): void;
}

/** Opens an SSE stream and collects its events as they arrive. */
export async function openSse(baseUrl: string, path: string, token: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const controller = new AbortController();
  const response = await fetch(`${baseUrl}${path}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  let raw = '';
  let closed = false;
  if (response.ok && response.body) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          raw += value;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            let id: string | undefined;
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('id:')) id = line.slice(3).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
            }
            if (data.length > 0) events.push({ event, id, data: data.join('\n'), receivedAt: Date.now() });
          }
        }
      } catch {
        // aborted
      } finally {
        closed = true;
      }
    })();
  } else {
    raw = await response.text();
    closed = true;
  }
  return { status: response.status, events, raw: () => raw, closed: () => closed, close: () => controller.abort() };
}
