// keelson's simulated Kubernetes cluster: a real HTTP API server (kubectl 1.32 and
// @kubernetes/client-node 2.x accept it) over an in-memory store, with simulated controllers and
// kubelet, simulated time and fault injection. See docs/simulator.md.
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pino from 'pino';
import type { Logger } from '../logger.ts';
import { ApiServer } from './apiserver.ts';
import { SimClock } from './clock.ts';
import { ControllerContext } from './controllers/context.ts';
import { ControllerManager } from './controllers/manager.ts';
import { DEFAULT_ERROR_CODES, initialFaults } from './faults.ts';
import { typeOf } from './resources.ts';
import { Router } from './server.ts';
import { Store } from './store.ts';

export interface SimulatorOptions {
  port?: number; // 0 or undefined = a free port; always listen on 127.0.0.1
  timeScale?: number; // simulated seconds per real second; default 1
  podStartupDelayMs?: number; // simulated ms from pod creation to Ready; default 1000
  pullFailurePatterns?: RegExp[]; // default [/doesnotexist|fail-pull|unpullable/]
  crashLoopPatterns?: RegExp[]; // default [/crashloop|crash-loop/]
  log?: Logger; // pino Logger from src/logger.ts; default silent
}

export interface Simulator {
  readonly url: string; // http://127.0.0.1:PORT
  readonly port: number;
  kubeconfigYaml(options?: { namespace?: string }): string;
  writeKubeconfig(file: string): Promise<void>;
  readonly faults: {
    setLatency(ms: number): void;
    setErrorRate(rate: number, codes?: number[]): void; // codes default [500, 503, 429]
    dropWatches(): void; // ends every open watch stream now
    pause(): Promise<void>; // server unreachable until resume()
    resume(): Promise<void>;
    reset(): void; // latency 0, error rate 0
  };
  setTimeScale(scale: number): void;
  close(): Promise<void>; // stops controllers, closes every connection
  /** In-process access for tests' own inspection: never subject to fault injection. */
  readonly store: Store;
}

const HOST = '127.0.0.1';

export function kubeconfigFor(url: string, namespace = 'default'): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: keelson-sim',
    '  cluster:',
    `    server: ${url}`,
    '    insecure-skip-tls-verify: true',
    'users:',
    '- name: keelson-sim',
    '  user:',
    '    token: keelson-sim',
    'contexts:',
    '- name: keelson-sim',
    '  context:',
    '    cluster: keelson-sim',
    '    user: keelson-sim',
    `    namespace: ${namespace}`,
    'current-context: keelson-sim',
    'preferences: {}',
    '',
  ].join('\n');
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      for (const s of sockets) s.destroy();
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
    for (const s of sockets) s.destroy();
  });
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const log = options.log ?? pino({ level: 'silent' });
  const clock = new SimClock(options.timeScale ?? 1);
  const store = new Store();
  const api = new ApiServer(store, clock);
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    api.create(typeOf('Namespace'), undefined, { metadata: { name } }, { manager: 'kube-apiserver' });
  }
  const faults = initialFaults();
  let port = options.port ?? 0;
  const router = new Router({ api, faults, log, address: () => `${HOST}:${port}` });
  const sockets = new Set<Socket>();
  const server = createServer({ keepAliveTimeout: 5_000 }, router.handle);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  port = await listen(server, port);
  const ctx = new ControllerContext(api, clock, log, {
    podStartupDelayMs: options.podStartupDelayMs ?? 1000,
    pullFailurePatterns: options.pullFailurePatterns ?? [/doesnotexist|fail-pull|unpullable/],
    crashLoopPatterns: options.crashLoopPatterns ?? [/crashloop|crash-loop/],
  });
  const controllers = new ControllerManager(ctx);
  controllers.start();
  const url = `http://${HOST}:${port}`;
  let paused = false;
  let closed = false;
  log.info({ url }, 'kubernetes simulator listening');

  return {
    url,
    port,
    store,
    kubeconfigYaml: (o) => kubeconfigFor(url, o?.namespace),
    writeKubeconfig: (file) => writeFile(file, kubeconfigFor(url), { mode: 0o600 }),
    faults: {
      setLatency: (ms) => {
        faults.latencyMs = Math.max(0, ms);
      },
      setErrorRate: (rate, codes) => {
        faults.errorRate = Math.min(1, Math.max(0, rate));
        faults.errorCodes = codes && codes.length > 0 ? [...codes] : [...DEFAULT_ERROR_CODES];
      },
      dropWatches: () => router.dropWatches(),
      pause: async () => {
        if (paused || closed) return;
        paused = true;
        router.dropWatches();
        await closeServer(server, sockets);
      },
      resume: async () => {
        if (!paused || closed) return;
        await listen(server, port);
        paused = false;
      },
      reset: () => {
        faults.latencyMs = 0;
        faults.errorRate = 0;
        faults.errorCodes = [...DEFAULT_ERROR_CODES];
      },
    },
    setTimeScale: (scale) => clock.setScale(scale),
    close: async () => {
      if (closed) return;
      closed = true;
      controllers.stop();
      router.close();
      await closeServer(server, sockets);
    },
  };
}

export type { Store };
