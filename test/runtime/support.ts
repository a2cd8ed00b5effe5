// Helpers shared by the runtime tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import path from 'node:path';
import { sql } from 'slonik';
import { z } from 'zod';
import type { Db } from '../../src/db/pool.ts';
import { DeploymentRow, HistoryRow, TransitionRow } from '../../src/db/rows.ts';
import { sleepUntil } from '../helpers.ts';

export async function insertDeployment(db: Db, project: string, environment = 'prod', image = `registry.example/${project}:1`): Promise<string> {
  // exactly what a pipeline does
  return await db.oneFirst(sql.type(z.object({ id: z.string() }))`
    insert into deployments (project, environment, image_ref) values (${project}, ${environment}, ${image})
    on conflict (project, environment) do update set image_ref = excluded.image_ref
    returning id`);
}

export async function row(db: Db, id: string): Promise<DeploymentRow> {
  return await db.one(sql.type(DeploymentRow)`select * from deployments where id = ${id}`);
}

export async function waitFor(db: Db, id: string, check: (r: DeploymentRow) => boolean, message: string, timeoutMs = 15_000): Promise<DeploymentRow> {
  return await sleepUntil(async () => {
    const r = await row(db, id);
    return check(r) ? r : undefined;
  }, { timeoutMs, message });
}

export async function waitStatus(db: Db, id: string, status: string, timeoutMs = 15_000): Promise<DeploymentRow> {
  return await waitFor(db, id, (r) => r.current_status === status && r.observed_generation === r.generation, `deployment ${id} ${status}`, timeoutMs);
}

export async function transitions(db: Db, id: string): Promise<TransitionRow[]> {
  return [...(await db.any(sql.type(TransitionRow)`select * from deployment_transitions where deployment_id = ${id} order by seq`))];
}

export async function history(db: Db, id: string): Promise<HistoryRow[]> {
  return [...(await db.any(sql.type(HistoryRow)`select * from deployment_history where deployment_id = ${id} order by id`))];
}

export async function effectRuns(db: Db, id: string, effect: string) {
  return await db.any(sql.type(z.object({ instance_id: z.string(), outcome: z.string().nullable(), finished_at: z.string().nullable() }))`
    select instance_id, outcome, finished_at from test_effect_runs where deployment_id = ${id} and effect = ${effect} order by id`);
}

export interface RuntimeProcess {
  readonly instanceId: string;
  readonly child: ChildProcess;
  readonly output: () => string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * A runtime in a child process (Node 24 from this test's own executable): by default the gated
 * test effects of fixtures/runtimeProcess.ts; `script` runs another fixture.
 */
export async function spawnRuntime(
  databaseUrl: string,
  env: Record<string, string> = {},
  script = path.join(import.meta.dirname, 'fixtures', 'runtimeProcess.ts'),
  options: { readyTimeoutMs?: number } = {},
): Promise<RuntimeProcess> {
  const instanceId = env.INSTANCE_ID ?? randomUUID();
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, DATABASE_URL: databaseUrl, INSTANCE_ID: instanceId, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await sleepUntil(() => output.includes('"ready"') || child.exitCode !== null, { timeoutMs: options.readyTimeoutMs ?? 20_000, message: 'runtime process ready' });
  } catch (error) {
    // not ready in time: it must not outlive the test as an orphan holding leases
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  if (child.exitCode !== null) throw new Error(`runtime process exited early with status ${child.exitCode}:\n${output}`);
  return {
    instanceId,
    child,
    output: () => output,
    kill: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * A TCP proxy in front of PostgreSQL the test can cut and heal: cut destroys every connection
 * and refuses new ones (an outage as the runtime sees it), heal lets connections through again.
 */
export interface CutProxy {
  readonly url: string;
  cut(): void;
  /** connections stay open but nothing passes (a frozen server, a silent partition) until heal() */
  freeze(): void;
  heal(): void;
  close(): Promise<void>;
}

export async function startCutProxy(databaseUrl: string): Promise<CutProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let open = true;
  let frozen = false;
  const held: Array<() => void> = [];
  const server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (frozen) held.push(() => to.write(chunk));
        else to.write(chunk);
      });
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as AddressInfo;
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  return {
    url: url.toString(),
    cut: () => {
      open = false;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    freeze: () => {
      frozen = true;
    },
    heal: () => {
      open = true;
      frozen = false;
      for (const write of held.splice(0)) write();
    },
    close: async () => {
      open = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
