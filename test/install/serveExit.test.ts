// How `keelson serve` ends, as a real process: within KEELSON_SHUTDOWN_TIMEOUT after SIGTERM even
// with its database gone (and without losing the history it had written); as PID 1 of a PID
// namespace, as in a container, where Node has no default SIGTERM handler; and never leaving its
// embedded PostgreSQL behind, not even when SIGKILLed.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/pool.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { isAlive, postmasterPid } from '../../src/db/postmaster.ts';
import { createLogger } from '../../src/logger.ts';
import { history, insertRow, waitStatus } from '../e2e/support.ts';
import { sleepUntil } from '../helpers.ts';
import { processesWith, startServe, type ServeProcess } from './support.ts';

const log = createLogger({ level: 'warn', format: 'json' });
const started: ServeProcess[] = [];
const servers: EmbeddedDatabase[] = [];
const dirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

afterAll(async () => {
  for (const s of started) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  for (const server of servers) await server.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('keelson serve shutting down', () => {
  it('exits within the shutdown timeout after SIGTERM with its database stopped, and keeps the history it wrote', async () => {
    // a PostgreSQL of this test's own, so that the test can stop it
    const pgDir = await tempDir('keelson-exit-pg-');
    const pg = await startEmbeddedPostgres({ dataDir: path.join(pgDir, 'data'), log });
    servers.push(pg);
    const url = pg.url('postgres');
    const dataDir = await tempDir('keelson-exit-data-');
    const shutdownTimeoutMs = 4000;
    const serve = await startServe({
      DATABASE_URL: url,
      KEELSON_DATA_DIR: dataDir,
      KEELSON_TICK_INTERVAL: '500ms',
      KEELSON_SHUTDOWN_TIMEOUT: `${shutdownTimeoutMs}ms`,
    });
    started.push(serve);

    // what it runs against, as a probe and a metric say it: kinds, never the database's address
    const ready = await sleepUntil(async () => {
      const response = await fetch(`${serve.url}/readyz`);
      return response.status === 200 ? await response.text() : undefined;
    }, { message: 'ready' });
    expect(JSON.parse(ready)).toMatchObject({ status: 'ready', mode: { cluster: 'sim', database: 'external' } });
    expect(ready).not.toContain(String(pg.port));
    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    expect(metrics).toMatch(/^keelson_info\{version="\d+\.\d+\.\d+[^"]*",cluster="sim",database="external",postgres="\d+"\} 1$/m);

    const db = await createDb(url);
    const id = await insertRow(db, { project: 'shop', image: 'registry.example/shop:1' });
    await waitStatus(db, id, 'healthy', 60_000);
    await db.query((await import('slonik')).sql.unsafe`update deployments set image_ref = 'registry.example/shop:2' where id = ${id}`);
    await waitStatus(db, id, 'healthy', 60_000);
    const before = await history(db, id);
    expect(before.map((h) => `${h.action}:${h.status}:${h.image_ref}`)).toEqual([
      'deploy:succeeded:registry.example/shop:1',
      'deploy:succeeded:registry.example/shop:2',
    ]);
    await db.end();

    await pg.stop();
    const sentAt = Date.now();
    serve.child.kill('SIGTERM');
    // generous against a loaded machine; without the watchdog the process does not end at all
    const boundMs = shutdownTimeoutMs + 10_000;
    const exit = await Promise.race([serve.exit, new Promise<undefined>((resolve) => setTimeout(resolve, boundMs))]);
    expect(exit, `still running ${boundMs} ms after SIGTERM:\n${serve.output().slice(-3000)}`).toBeDefined();
    expect(exit?.signal).toBeNull();
    expect([0, 1]).toContain(exit?.code);
    expect((exit?.at ?? Infinity) - sentAt).toBeLessThan(boundMs);

    // the same data directory again: nothing written before the outage is lost
    const again = await startEmbeddedPostgres({ dataDir: path.join(pgDir, 'data'), log });
    servers.push(again);
    const db2 = await createDb(again.url('postgres'));
    try {
      const after = await history(db2, id);
      expect(after.map((h) => `${h.id}:${h.action}:${h.status}:${h.image_ref}`)).toEqual(before.map((h) => `${h.id}:${h.action}:${h.status}:${h.image_ref}`));
    } finally {
      await db2.end();
    }
  });
});

describe('keelson serve with its embedded PostgreSQL', () => {
  let dataDir: string;

  it('handles SIGTERM as PID 1 of its PID namespace (as in a container) and stops its PostgreSQL', async () => {
    dataDir = await tempDir('keelson-exit-embedded-');
    // --kill-child: should the test end unshare, its child goes with it
    const serve = await startServe({ KEELSON_DATA_DIR: dataDir }, ['unshare', '--pid', '--fork', '--kill-child']);
    started.push(serve);
    const unsharePid = serve.child.pid as number;
    const keelsonPid = Number((await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8')).trim().split(/\s+/)[0]);
    // NSpid: its pid here, then in its own namespace
    const nspid = /NSpid:\s+([\d\s]+)/.exec(await readFile(`/proc/${keelsonPid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
    expect(nspid?.at(-1)).toBe('1');
    // (its pid file holds the pid inside the namespace, which means nothing out here)
    expect(await postmasterPid(path.join(dataDir, 'postgres'))).toBeDefined();

    process.kill(keelsonPid, 'SIGTERM');
    const exit = await serve.exit;
    expect(exit, serve.output().slice(-3000)).toMatchObject({ code: 0, signal: null });
    // PostgreSQL removes its pid file only on a clean stop; the kernel's SIGKILL of whatever is
    // left in the namespace when its PID 1 ends would leave it behind
    expect(await postmasterPid(path.join(dataDir, 'postgres'))).toBeUndefined();
    await sleepUntil(() => processesWith('reaper.ts', dataDir).length === 0, { message: 'the reaper left after a clean stop' });
  });

  it('leaves no PostgreSQL running when SIGKILLed: the reaper stops it', async () => {
    const serve = await startServe({ KEELSON_DATA_DIR: dataDir });
    started.push(serve);
    const pgPid = await postmasterPid(path.join(dataDir, 'postgres'));
    expect(pgPid && isAlive(pgPid)).toBe(true);
    expect(processesWith('reaper.ts', dataDir)).toHaveLength(1);

    serve.child.kill('SIGKILL');
    await serve.exit;
    await sleepUntil(() => !isAlive(pgPid as number), { timeoutMs: 40_000, message: `PostgreSQL ${pgPid} stopped after keelson was killed` });
    await sleepUntil(() => processesWith('reaper.ts', dataDir).length === 0, { message: 'the reaper left' });
  });
});
