// Helpers of the install tests: a real `keelson serve` process (optionally wrapped, e.g. by
// `unshare` to run it as PID 1), its output, and its exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { sleepUntil } from '../helpers.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  output(): string;
  /** the exit code (null when ended by a signal) and when it came */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** A `KEY=value` environment with keelson's own and the test runner's database variables removed. */
export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base: NodeJS.ProcessEnv = { ...process.env, KEELSON_LOG_FORMAT: 'json', PORT: '0' };
  for (const key of Object.keys(base)) {
    if (key.startsWith('KEELSON_') && key !== 'KEELSON_LOG_FORMAT') delete base[key];
  }
  for (const key of ['DATABASE_URL', 'KUBECONFIG', 'TEST_DATABASE_URL', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT']) delete base[key];
  return { ...base, ...env };
}

/** Starts `[...wrapper] node src/main.ts serve` and waits for its banner. */
export async function startServe(env: Record<string, string>, wrapper: string[] = []): Promise<ServeProcess> {
  const command = [...wrapper, process.execPath, path.join(REPO_ROOT, 'src', 'main.ts'), 'serve'];
  const child = spawn(command[0] as string, command.slice(1), { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  await sleepUntil(() => /keelson is running at/.test(output) || child.exitCode !== null, {
    timeoutMs: 90_000,
    message: 'keelson serve printed its banner',
  });
  if (child.exitCode !== null) throw new Error(`keelson serve exited early:\n${output}`);
  const url = /keelson is running at (http:\/\/\S+)/.exec(output)?.[1] ?? '';
  return { child, url, output: () => output, exit };
}

/** The pids of the running processes whose command line contains every one of `parts`. */
export function processesWith(...parts: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      continue; // ended meanwhile
    }
    if (parts.every((part) => cmdline.includes(part))) pids.push(Number(entry));
  }
  return pids;
}
