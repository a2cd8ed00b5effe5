// Helpers shared by the runtime tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
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
): Promise<RuntimeProcess> {
  const instanceId = randomUUID();
  const child = spawn(process.execPath, [script], {
    env: { ...process.env, DATABASE_URL: databaseUrl, INSTANCE_ID: instanceId, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await sleepUntil(() => output.includes('"ready"') || child.exitCode !== null, { timeoutMs: 20_000, message: 'runtime process ready' });
  if (child.exitCode !== null) throw new Error(`runtime process exited early:\n${output}`);
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
