// A plain HTTP proxy in front of the simulator that records every request keelson's client sends
// (method, path, query, headers) and can answer the next matching requests itself (a 429 with
// Retry-After). It counts requests on the wire, not in keelson's own metrics, so a test of
// "requests per rollout" or "X-Keelson-Client on every request" cannot be fooled by the client.
// It can also hold matching requests (before they reach the server, or their answers after), so a
// test kills a process exactly while one of its cluster requests is in flight.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** Kubernetes' verb, as the API server would log it. */
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection' | 'discovery';
}

export interface Injection {
  match: (request: RecordedRequest) => boolean;
  status: number;
  headers?: Record<string, string>;
  body: unknown;
  /** How many matching requests to answer; 1 by default. */
  times?: number;
}

/**
 * Matching requests held until their client goes away (a killed process): `request` holds them
 * before they reach the server (the write never happens), `response` forwards them and holds the
 * answer (the write happened; the client never learns it).
 */
export interface HoldRule {
  match: (request: RecordedRequest) => boolean;
  at: 'request' | 'response';
}

export interface Hold {
  /** The requests held so far, in arrival order. */
  readonly held: RecordedRequest[];
  /** Matching requests pass again from now on (those held stay held). */
  stop(): void;
}

export interface RecordingProxy {
  url: string;
  requests: RecordedRequest[];
  inject(injection: Injection): void;
  hold(rule: HoldRule): Hold;
  /** Holds back every chunk of watch streams by `ms` (a lagging cache), 0 to stop. */
  delayWatches(ms: number): void;
  /** A kubeconfig (YAML) for the proxy, from the simulator's. */
  kubeconfig(simKubeconfig: string): string;
  close(): Promise<void>;
}

function verbOf(method: string, path: string, query: URLSearchParams): RecordedRequest['verb'] {
  const segments = path.split('/').filter(Boolean);
  const resourcePath = (segments[0] === 'api' && segments.length > 2) || (segments[0] === 'apis' && segments.length > 3);
  if (!resourcePath) return 'discovery';
  const rest = segments.slice(segments[0] === 'api' ? 2 : 3);
  const named = rest[0] === 'namespaces' ? rest.length >= 4 || rest.length === 2 : rest.length >= 2;
  switch (method) {
    case 'GET':
      if (query.get('watch') === 'true' || query.get('watch') === '1') return 'watch';
      return named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return 'get';
  }
}

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const requests: RecordedRequest[] = [];
  const injections: Injection[] = [];
  const holds: Array<HoldRule & { held: RecordedRequest[] }> = [];
  let watchDelayMs = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      verb: verbOf(req.method ?? 'GET', url.pathname, url.searchParams),
    };
    requests.push(recorded);
    const injection = injections.find((i) => i.match(recorded));
    if (injection) {
      injection.times = (injection.times ?? 1) - 1;
      if (injection.times <= 0) injections.splice(injections.indexOf(injection), 1);
      req.resume();
      res.writeHead(injection.status, { 'Content-Type': 'application/json', ...injection.headers });
      res.end(JSON.stringify(injection.body));
      return;
    }
    const hold = holds.find((h) => h.match(recorded));
    hold?.held.push(recorded);
    // held before the server: nothing is forwarded, the socket stays open until the client goes
    if (hold?.at === 'request') return;
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (response) => {
        if (hold) {
          // the server acted; its answer never reaches the client
          response.resume();
          return;
        }
        res.writeHead(response.statusCode ?? 502, response.headers);
        if (recorded.verb !== 'watch') return void response.pipe(res);
        // Chunk by chunk, in order, each held back by the delay in force when it arrived.
        let chain = Promise.resolve();
        response.on('data', (chunk: Buffer) => {
          const delay = watchDelayMs;
          chain = chain.then(() => new Promise((resolve) => setTimeout(resolve, delay))).then(() => void res.write(chunk));
        });
        response.on('end', () => void chain.then(() => res.end()));
      },
    );
    forward.on('error', () => res.destroy());
    res.on('close', () => forward.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    inject: (injection) => injections.push(injection),
    hold: (rule) => {
      const entry = { ...rule, held: [] as RecordedRequest[] };
      holds.push(entry);
      return {
        held: entry.held,
        stop: () => {
          const at = holds.indexOf(entry);
          if (at >= 0) holds.splice(at, 1);
        },
      };
    },
    delayWatches: (ms) => {
      watchDelayMs = ms;
    },
    kubeconfig: (simKubeconfig) => simKubeconfig.replaceAll(target, url),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
